"""Webhook delivery: the worker drains the outbox (ops/webhooks.py).

The ingest path never does network I/O: `enqueue` only inserts rows into webhook_deliveries.
`eval360 worker` (and `eval360 serve`, which runs it) claims due rows, POSTs them and records
every attempt in webhook_delivery_attempts:

* body: JSON (the stored payload, serialised once, compactly, keys sorted), with a
  Slack-compatible `text` field;
* header `X-Eval360-Signature`: hex HMAC-SHA256 of the exact body bytes with the webhook's secret
  (also `X-Eval360-Event`, `X-Eval360-Delivery`);
* a 2xx reply delivers; anything else (status, timeout, refused connection) is retried with
  exponential backoff (EVAL360_WEBHOOK_BACKOFF_S, default 30 s, doubling, capped at 1 h) until
  EVAL360_WEBHOOK_MAX_AGE_H (default 24) hours after the event, then the delivery is `failed`;
* per-request timeout EVAL360_WEBHOOK_TIMEOUT_S (default 10 s).

A row is claimed by pushing its next_attempt_at forward by a lease before the request is made
(committed), so two workers never send the same delivery at once and a worker that dies mid-way
leaves the row to be retried when the lease ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
import psycopg

from ..core import netguard
from ..core.settings import Settings, get_settings
from .webhooks import SIGNATURE_HEADER, body_bytes, quiet_period_s, sign

log = logging.getLogger("eval360.webhooks")


class _RedactUrls(logging.Filter):
    """httpx logs each request's URL: show it without the credentials it may carry."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(netguard.redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True



def redact_request_logs() -> None:
    """Make httpx log webhook URLs without their credentials (idempotent; the worker calls it at start)."""
    if not any(isinstance(f, _RedactUrls) for f in logging.getLogger("httpx").filters):
        logging.getLogger("httpx").addFilter(_RedactUrls())

LEASE_S = 300


@dataclass(frozen=True)
class DeliveryConfig:
    timeout_s: float = 10.0
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 3600.0
    max_age_s: float = 24 * 3600.0

    @classmethod
    def from_settings(cls, s: Settings) -> DeliveryConfig:
        return cls(timeout_s=s.webhook_timeout_s, backoff_base_s=s.webhook_backoff_s,
                   backoff_cap_s=s.webhook_backoff_cap_s, max_age_s=s.webhook_max_age_h * 3600.0)


def backoff_delay(n_attempts: int, cfg: DeliveryConfig) -> float:
    """Seconds to wait after the n-th failed attempt: base, 2 base, 4 base, … capped."""
    return min(cfg.backoff_cap_s, cfg.backoff_base_s * (2 ** max(0, n_attempts - 1)))


# A first attempt at a regression event waits until its alert has held through the quiet period: the
# alert is still open and unchanged for quiet seconds, its model has had no new run for quiet seconds,
# and (with a quiet period) no check of that model is queued for judging.
_SETTLED = """
  (d.event_type <> 'regression' or d.n_attempts > 0 or exists (
     select 1 from alerts a
      where a.id = (d.payload->>'alert_id')::bigint and a.resolved_at is null
        and a.updated_at <= now() - make_interval(secs => %(q)s)
        and not exists (select 1 from eval_runs r where r.model_id = a.model_id
                          and r.updated_at > now() - make_interval(secs => %(q)s))
        and (%(q)s = 0 or not exists (select 1 from alert_recheck x join checkpoints c using (checkpoint_id)
                                        where c.model_id = a.model_id))))
"""


def withdraw_unsettled(conn: psycopg.Connection) -> int:
    """Withdraw regression events never attempted whose alert is resolved (or gone): they are not sent."""
    cur = conn.execute(
        """update webhook_deliveries d set status = 'withdrawn',
                  last_error = 'alert resolved before its quiet period ended'
            where d.status = 'pending' and d.event_type = 'regression' and d.n_attempts = 0
              and not exists (select 1 from alerts a where a.id = (d.payload->>'alert_id')::bigint
                                and a.resolved_at is null)""")
    return cur.rowcount or 0


def _claim(conn: psycopg.Connection, limit: int) -> list[dict]:
    with conn.transaction():
        withdraw_unsettled(conn)
        return conn.execute(
            """update webhook_deliveries d set next_attempt_at = now() + make_interval(secs => %(lease)s)
                 from webhooks w
                where d.webhook_id = w.id and d.id in (
                      select id from webhook_deliveries d
                       where status = 'pending' and next_attempt_at <= now() and """ + _SETTLED + """
                       order by next_attempt_at, id limit %(limit)s for update skip locked)
               returning d.id, d.webhook_id, d.event_type, d.payload, d.n_attempts, d.created_at,
                         w.url, w.secret, w.is_active""",
            {"lease": LEASE_S, "limit": limit, "q": quiet_period_s()}).fetchall()


def _send(client: httpx.Client, d: dict) -> tuple[int | None, str | None, float]:
    """POST one delivery. Raises netguard.BlockedAddress (nothing sent) when the URL's host resolves
    to an address webhooks may not reach; the request goes to the address that was checked."""
    body = body_bytes(d["payload"])
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(d["secret"], body),
               "X-Eval360-Event": d["event_type"], "X-Eval360-Delivery": str(d["id"]),
               "User-Agent": "eval360-webhooks/1"}
    t0 = time.perf_counter()
    try:
        url = httpx.URL(d["url"])
        address = netguard.resolve_for_delivery(url.host, url.port)
        auth = (url.username, url.password) if url.username or url.password else None
        headers["Host"] = url.netloc.decode("ascii")
        r = client.post(url.copy_with(host=address, username=None, password=None), content=body, headers=headers,
                        auth=auth, extensions={"sni_hostname": url.host} if url.scheme == "https" else {})
        code, err = r.status_code, None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"
    except (httpx.HTTPError, httpx.InvalidURL, OSError, UnicodeError) as exc:  # OSError: the name does not resolve (retried)
        code, err = None, netguard.scrub(f"{type(exc).__name__}: {exc}", d["url"])[:500]
    return code, err, (time.perf_counter() - t0) * 1000.0


def deliver_due(conn: psycopg.Connection, cfg: DeliveryConfig | None = None, *, limit: int = 50,
                client: httpx.Client | None = None) -> dict:
    """Send what is due once. Returns counts {attempted, delivered, retrying, failed}."""
    cfg = cfg or DeliveryConfig.from_settings(get_settings())
    redact_request_logs()
    counts = {"attempted": 0, "delivered": 0, "retrying": 0, "failed": 0}
    rows = _claim(conn, limit)
    if not rows:
        return counts
    own = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), follow_redirects=False)
    try:
        for d in rows:
            if not d["is_active"]:
                code, err, ms = None, "webhook deactivated", 0.0
                final = "failed"
            else:
                try:
                    code, err, ms = _send(client, d)
                    final = None
                except netguard.BlockedAddress as exc:  # checked after resolving the name: never sent
                    code, err, ms, final = None, str(exc)[:500], 0.0, "failed"
            n = d["n_attempts"] + 1
            counts["attempted"] += 1
            with conn.transaction():
                conn.execute("""insert into webhook_delivery_attempts (delivery_id, status_code, error, duration_ms)
                                values (%s, %s, %s, %s)""", (d["id"], code, err, ms))
                if final is None and err is None:
                    conn.execute("""update webhook_deliveries set status = 'delivered', n_attempts = %s,
                                           last_status_code = %s, last_error = null, delivered_at = now()
                                     where id = %s""", (n, code, d["id"]))
                    counts["delivered"] += 1
                    continue
                delay = backoff_delay(n, cfg)
                age = conn.execute("select extract(epoch from now() - %s::timestamptz) as s",
                                   (d["created_at"],)).fetchone()["s"]
                if final == "failed" or float(age) + delay > cfg.max_age_s:
                    conn.execute("""update webhook_deliveries set status = 'failed', n_attempts = %s,
                                           last_status_code = %s, last_error = %s where id = %s""",
                                 (n, code, err, d["id"]))
                    counts["failed"] += 1
                    log.warning("webhook delivery %s to %s failed for good: %s", d["id"],
                                netguard.redact_url(d["url"]), err)
                else:
                    conn.execute("""update webhook_deliveries set n_attempts = %s, last_status_code = %s,
                                           last_error = %s, next_attempt_at = now() + make_interval(secs => %s)
                                     where id = %s""", (n, code, err, delay, d["id"]))
                    counts["retrying"] += 1
    finally:
        if own:
            client.close()
    return counts


