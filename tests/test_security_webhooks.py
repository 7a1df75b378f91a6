"""Webhooks cannot be aimed inside the network, and the credentials in their URLs stay hidden
(issue 12 §5): refused at registration (422) and again at delivery after resolving the name (failed,
nothing sent), unless EVAL360_WEBHOOK_ALLOW_PRIVATE allows it; user:password@ and secret-looking
query values are *** in the admin replies, the delivery log and the worker's log."""

from __future__ import annotations

import base64
import logging

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest_api.core import netguard
from ingest_api.ops.delivery import deliver_due
from ingest_api.ops.worker import run_worker
from tests.conftest import q
from tests.plugins.webhooks import FAST, Receiver, register, regression

ALLOW = "EVAL360_WEBHOOK_ALLOW_PRIVATE"
pytestmark = pytest.mark.usefixtures("alerts_inline", "notify_at_once")


@pytest.fixture
def guarded(monkeypatch):
    """Production's default: only public addresses."""
    monkeypatch.delenv(ALLOW, raising=False)


@pytest.mark.parametrize("url, kind", [
    ("http://127.0.0.1:5432/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://api.localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://10.0.0.5/hook", "private"),
    ("http://172.16.3.4/hook", "private"),
    ("https://192.168.1.10/hook", "private"),
    ("http://[fd00::5]/hook", "private"),
    ("http://0.0.0.0:8000/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://100.64.0.1/", "not public"),
    ("http://2130706433/", "loopback"),  # 127.0.0.1 written as one number
])
def test_registration_refuses_internal_addresses(client, db, admin_headers, guarded, url, kind):
    r = client.post("/api/admin/webhooks", json={"url": url, "events": ["regression"]}, headers=admin_headers)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "url" and f"{kind} address" in err["message"] and ALLOW in err["message"], err
    assert q(db, "select count(*) n from webhooks")[0]["n"] == 0


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "https://[2606:4700:4700::1111]/hook",
                                 "https://hooks.example.com/x"])  # the last does not resolve here: checked at delivery
def test_registration_accepts_public_addresses(client, admin_headers, guarded, url):
    r = client.post("/api/admin/webhooks", json={"url": url, "events": ["regression"]}, headers=admin_headers)
    assert r.status_code == 200, r.text


def test_the_setting_allows_private_receivers(client, admin_headers, monkeypatch):
    monkeypatch.setenv(ALLOW, "1")
    r = client.post("/api/admin/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["regression"]},
                    headers=admin_headers)
    assert r.status_code == 200, r.text


def test_delivery_checks_the_resolved_address_and_sends_nothing(client, db, ingest_headers, admin_headers, monkeypatch):
    """A name accepted at registration that resolves to loopback when delivering (DNS rebinding, or a
    name that changed): the delivery is refused after resolution, recorded as failed, never sent."""
    with Receiver() as rx:
        port = rx.server.server_address[1]
        register(client, admin_headers, f"http://localhost:{port}/hook")  # allowed here (the test setting)
        regression(client, ingest_headers)
        monkeypatch.delenv(ALLOW)
        with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
            assert deliver_due(conn, FAST) == {"attempted": 1, "delivered": 0, "retrying": 0, "failed": 1}
        assert rx.requests == []
    d = q(db, "select status, n_attempts, last_error from webhook_deliveries")[0]
    assert d["status"] == "failed" and d["n_attempts"] == 1
    assert "localhost" in d["last_error"] and "loopback" in d["last_error"]
    att = q(db, "select status_code, error from webhook_delivery_attempts")
    assert len(att) == 1 and att[0]["status_code"] is None and "refused" in att[0]["error"]


def test_delivery_goes_to_the_checked_address_with_the_name_as_host(client, db, ingest_headers, admin_headers):
    with Receiver() as rx:
        port = rx.server.server_address[1]
        register(client, admin_headers, f"http://localhost:{port}/hook?x=1")
        regression(client, ingest_headers)
        assert run_worker(db, once=True, cfg=FAST) == 0
        assert len(rx.requests) == 1
        assert rx.requests[0]["headers"]["Host"] == f"localhost:{port}"
        assert rx.requests[0]["path"] == "/hook?x=1"
    assert q(db, "select status from webhook_deliveries")[0]["status"] == "delivered"


def test_credentials_in_the_url_are_redacted_in_replies_and_logs(client, db, ingest_headers, admin_headers, caplog):
    caplog.set_level(logging.INFO)
    with Receiver(script=[500]) as rx:
        port = rx.server.server_address[1]
        url = f"http://hookuser:pa55-w0rd-xyz@127.0.0.1:{port}/hook?token=tok-abc-123&team=a"
        reg = client.post("/api/admin/webhooks", json={"url": url, "events": ["regression"]}, headers=admin_headers)
        assert reg.status_code == 200, reg.text
        listed = client.get("/api/admin/webhooks", headers=admin_headers)
        for body in (reg.text, listed.text):
            assert "pa55-w0rd-xyz" not in body and "hookuser" not in body and "tok-abc-123" not in body
        shown = listed.json()["webhooks"][0]["url"]
        assert shown == f"http://***@127.0.0.1:{port}/hook?token=***&team=a"
        regression(client, ingest_headers)
        # One failed attempt (500), then no time left: failed for good, logged as a warning.
        assert run_worker(db, once=True, cfg=type(FAST)(timeout_s=5.0, backoff_base_s=0.0, backoff_cap_s=0.0,
                                                        max_age_s=0.0)) == 0
        assert len(rx.requests) == 1
        # the receiver still gets the credentials (as basic auth) and the whole query
        auth = rx.requests[0]["headers"]["Authorization"]
        assert base64.b64decode(auth.split()[1]).decode() == "hookuser:pa55-w0rd-xyz"
        assert rx.requests[0]["path"] == "/hook?token=tok-abc-123&team=a"
        wid = reg.json()["id"]
        deliveries = client.get(f"/api/admin/webhooks/{wid}/deliveries", headers=admin_headers).text
    assert "failed for good" in caplog.text and "HTTP Request" in caplog.text  # the lines are there …
    for secret in ("pa55-w0rd-xyz", "tok-abc-123"):  # … without the credentials
        assert secret not in caplog.text and secret not in deliveries


def test_redaction_of_connection_errors():
    url = "http://u:supersecret@host.invalid/x"
    msg = "ConnectError: cannot reach http://u:supersecret@host.invalid/x (supersecret)"
    out = netguard.scrub(msg, url)
    assert "supersecret" not in out and "***@host.invalid" in out


@pytest.mark.parametrize("addr, kind", [("127.0.0.1", "loopback"), ("::ffff:10.1.2.3", "private"),
                                        ("64:ff9b::a9fe:a9fe", "link-local"), ("2002:7f00:1::", "loopback"),
                                        ("8.8.8.8", None), ("2606:4700::1111", None), ("fe80::1%eth0", "link-local")])
def test_addresses_embedding_ipv4_are_judged_by_it(addr, kind):
    assert netguard.classify(addr) == kind
