"""Where a webhook may be sent, and what of its URL may be shown.

Webhooks are posted by the worker from inside the deployment's network, so an address an admin
types could reach what the internet cannot: the database (`http://127.0.0.1:5432/`), the cloud
metadata service (`http://169.254.169.254/`), anything on the private network. Webhook addresses
must therefore be public unicast addresses; loopback, link-local, private (RFC 1918, fc00::/7,
100.64.0.0/10), unspecified, multicast, reserved and documentation ranges are refused unless
EVAL360_WEBHOOK_ALLOW_PRIVATE=1 (a receiver on the same host or network, tests).

The check runs when a webhook is registered (a literal address, a `localhost` name, or a name
that resolves to such addresses: 422) and again at every delivery, after resolving the name; the
request then goes to the address that was checked (the name kept for the Host header and TLS), so
a name that resolves differently a moment later (DNS rebinding) cannot redirect it.

Credentials in a webhook URL (`https://user:password@host/…`, or a query parameter named like a
secret) are shown as `***` in API replies and logs (`redact_url`, `scrub`).
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .settings import get_settings

ALLOW_ENV = "EVAL360_WEBHOOK_ALLOW_PRIVATE"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SECRET_KEYS = ("token", "secret", "password", "passwd", "pass", "key", "sig", "signature", "auth", "code",
                "credential", "apikey", "api_key", "access_token")


class BlockedAddress(ValueError):
    """A webhook address that is not a public unicast address (and the setting does not allow it)."""


def allow_private() -> bool:
    """EVAL360_WEBHOOK_ALLOW_PRIVATE: send to loopback and private addresses too (default: no)."""
    return get_settings().webhook_allow_private


def classify(address: str) -> str | None:
    """Why an IP address may not receive webhooks ("loopback", "private", …), or None if it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return classify(str(embedded))
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "not public"
    return None


def _refusal(host: str, address: str, kind: str) -> BlockedAddress:
    shown = host if host == address else f"{host} ({address})"
    return BlockedAddress(f"refused: {shown} is a {kind} address; webhooks go to public addresses only "
                          f"(set {ALLOW_ENV}=1 to allow private and loopback receivers)")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        return False


def _addresses(host: str, port: int | None) -> list[str]:
    infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_addresses(host: str, addresses: list[str]) -> None:
    """Raise BlockedAddress when any of the host's addresses may not receive webhooks."""
    if allow_private():
        return
    for a in addresses:
        kind = classify(a)
        if kind:
            raise _refusal(host, a, kind)


def check_registration(url: str, *, resolve_timeout_s: float = 2.0) -> None:
    """At registration: refuse a literal non-public address, a `localhost` name, or a name that
    resolves (within the timeout) to a non-public address. A name that does not resolve yet is
    accepted: the delivery checks it again."""
    if allow_private():
        return
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return
    if _is_ip(host):
        check_addresses(host, [host])
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise _refusal(host, host, "loopback")
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        addresses = pool.submit(_addresses, host, urlsplit(url).port).result(timeout=resolve_timeout_s)
    except (OSError, UnicodeError, FutureTimeout):
        return
    finally:
        pool.shutdown(wait=False)
    check_addresses(host, addresses)


def resolve_for_delivery(host: str, port: int | None) -> str:
    """At delivery: the address to connect to, after checking every address the name resolves to.
    Raises BlockedAddress (do not send), or OSError when the name does not resolve (retry later)."""
    addresses = [host.strip("[]")] if _is_ip(host.strip("[]")) else _addresses(host, port)
    check_addresses(host, addresses)
    return addresses[0]


def _sensitive(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return any(k == s or k.endswith("_" + s) or k.startswith(s + "_") for s in _SECRET_KEYS)


def redact_url(url: str) -> str:
    """The URL with its credentials shown as ***: the user:password part, and query values of
    parameters named like a secret (token, key, secret, signature, …)."""
    try:
        p = urlsplit(str(url))
        netloc = p.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = p.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_sensitive(k) for k, _ in pairs):
                query = urlencode([(k, "***" if _sensitive(k) else v) for k, v in pairs], safe="*", quote_via=quote)
        return urlunsplit((p.scheme, netloc, p.path, query, p.fragment))
    except ValueError:
        return "<unparseable url>"


def scrub(text: str, url: str) -> str:
    """Text (an error message) with the URL's credentials replaced by ***."""
    try:
        p = urlsplit(url)
    except ValueError:
        return text
    out = text.replace(url, redact_url(url))
    userinfo = p.netloc.rsplit("@", 1)[0] if "@" in p.netloc else ""
    for secret in (userinfo, p.password if p.password and len(p.password) >= 4 else None):
        if secret:
            out = out.replace(secret, "***")
    return out
