"""Webhooks: registration, the outbox written by ingest, delivery by the worker to a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket

import psycopg
import pytest
from psycopg.rows import dict_row

from ingest_api.ops.delivery import DeliveryConfig, backoff_delay, deliver_due
from ingest_api.ops.webhooks import SIGNATURE_HEADER
from ingest_api.ops.worker import run_worker
from tests.conftest import q
from tests.plugins.alert_data import post
from tests.plugins.webhooks import FAST, SECRET, Receiver, register, regression

pytestmark = pytest.mark.usefixtures("alerts_inline", "notify_at_once")

def _drain(db, cfg=FAST, rounds=10) -> None:
    with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
        for _ in range(rounds):
            if deliver_due(conn, cfg)["attempted"] == 0:
                break


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)",
                                 "example.com/hook", "http://", "gopher://h/"])
def test_non_http_url_is_refused(client, db, admin_headers, url):
    r = client.post("/api/admin/webhooks", json={"url": url, "events": ["regression"], "active": True},
                    headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "url"
    assert q(db, "select count(*) n from webhooks")[0]["n"] == 0


def test_unknown_event_is_refused(client, db, admin_headers):
    r = client.post("/api/admin/webhooks", json={"url": "https://hooks.example.com/x", "events": ["everything"],
                                                 "active": True}, headers=admin_headers)
    assert r.status_code == 422


def test_register_list_deactivate(client, db, admin_headers):
    got = client.post("/api/admin/webhooks", json={"url": "https://hooks.slack.com/services/T/B/X",
                                                   "events": ["regression"], "active": True}, headers=admin_headers)
    assert got.status_code == 200
    body = got.json()
    assert body["ok"] and isinstance(body["id"], int) and len(body["secret"]) >= 32  # generated, shown once
    listed = client.get("/api/admin/webhooks", headers=admin_headers).json()["webhooks"]
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]
    assert listed[0]["active"] is True and listed[0]["events"] == ["regression"]
    for _ in range(2):  # idempotent
        r = client.post(f"/api/admin/webhooks/{body['id']}/deactivate", headers=admin_headers)
        assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/admin/webhooks", headers=admin_headers).json()["webhooks"][0]["active"] is False
    assert client.post("/api/admin/webhooks/999/deactivate", headers=admin_headers).status_code == 404
    assert q(db, "select count(*) n from activity where event_type = 'admin' and detail->>'action' like 'webhook%%'"
             )[0]["n"] == 2


def test_delivery_is_signed_json_with_slack_text(client, db, ingest_headers, admin_headers):
    with Receiver() as rx:
        register(client, admin_headers, rx.url)
        regression(client, ingest_headers)
        assert rx.requests == []  # ingest wrote the outbox only
        assert run_worker(db, once=True, cfg=FAST) == 0
        assert len(rx.requests) == 1
        req = rx.requests[0]
        expected = hmac.new(SECRET.encode(), req["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(req["headers"][SIGNATURE_HEADER], expected)
        assert req["headers"]["Content-Type"] == "application/json"
        payload = json.loads(req["body"])
        assert payload["event"] == "regression" and payload["alert_type"] == "regression"
        assert payload["checkpoint_id"] == "k2__step-3000" and payload["dataset_name"] == "gsm8k"
        assert payload["severity"] == "critical" and "gsm8k" in payload["text"] and "regression" in payload["text"]
        # A tampered body does not verify.
        assert hmac.new(SECRET.encode(), req["body"] + b" ", hashlib.sha256).hexdigest() != expected
    d = q(db, "select * from webhook_deliveries")[0]
    assert d["status"] == "delivered" and d["n_attempts"] == 1 and d["last_status_code"] == 200


def test_failing_twice_then_ok_gets_exactly_one_successful_delivery(client, db, ingest_headers, admin_headers):
    with Receiver(script=[500, 503]) as rx:
        hook = register(client, admin_headers, rx.url)
        regression(client, ingest_headers)
        _drain(db)
        _drain(db)  # nothing left to send
        assert rx.replies == [500, 503, 200]
        assert rx.replies.count(200) == 1
        # All three were the same delivery, byte for byte (same signature).
        assert len({r["body"] for r in rx.requests}) == 1
        assert len({r["headers"]["X-Eval360-Delivery"] for r in rx.requests}) == 1
    log = client.get(f"/api/admin/webhooks/{hook['id']}/deliveries", headers=admin_headers).json()["deliveries"]
    assert len(log) == 1 and log[0]["status"] == "delivered" and log[0]["n_attempts"] == 3
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 503, 200]
    assert [a["error"] for a in log[0]["attempts"]] == ["HTTP 500", "HTTP 503", None]


def test_backoff_doubles_and_gives_up_after_24h(client, db, ingest_headers, admin_headers):
    cfg = DeliveryConfig(timeout_s=5.0, backoff_base_s=30.0, backoff_cap_s=3600.0)
    assert [backoff_delay(n, cfg) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    with Receiver(script=[500] * 10) as rx:
        register(client, admin_headers, rx.url, events=["regression"])
        regression(client, ingest_headers)
        with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
            assert deliver_due(conn, cfg)["retrying"] == 1
            d = conn.execute("select *, extract(epoch from next_attempt_at - now()) wait from webhook_deliveries"
                             ).fetchone()
            assert d["status"] == "pending" and d["n_attempts"] == 1 and 20 < d["wait"] <= 30
            assert deliver_due(conn, cfg)["attempted"] == 0  # not due yet
            conn.execute("update webhook_deliveries set next_attempt_at = now()")
            deliver_due(conn, cfg)
            d = conn.execute("select *, extract(epoch from next_attempt_at - now()) wait from webhook_deliveries"
                             ).fetchone()
            assert d["n_attempts"] == 2 and 50 < d["wait"] <= 60
            # An event 24 h old is not retried again: failed for good.
            conn.execute("update webhook_deliveries set next_attempt_at = now(), "
                         "created_at = now() - interval '24 hours'")
            assert deliver_due(conn, cfg)["failed"] == 1
            assert conn.execute("select status from webhook_deliveries").fetchone()["status"] == "failed"
            assert deliver_due(conn, cfg)["attempted"] == 0
        assert len(rx.requests) == 3


def test_dead_receiver_never_slows_ingest(client, db, ingest_headers, admin_headers, monkeypatch):
    # A port that refuses connections, and one that accepts but never answers (a hung receiver).
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        register(client, admin_headers, f"http://127.0.0.1:{dead_port}/x")
        register(client, admin_headers, f"http://127.0.0.1:{hung.getsockname()[1]}/x")
        connects = []
        real_connect = socket.socket.connect

        def spy(self, addr):
            connects.append(addr)
            return real_connect(self, addr)

        monkeypatch.setattr(socket.socket, "connect", spy)
        regression(client, ingest_headers)
        assert connects == []  # the ingest path opened no connection at all
        monkeypatch.undo()
        monkeypatch.setenv("EVAL360_ALERT_QUIET_S", "0")  # undo() dropped it too
        rows = q(db, "select status, n_attempts from webhook_deliveries")
        assert len(rows) == 2 and all(r == {"status": "pending", "n_attempts": 0} for r in rows)
        assert q(db, "select count(*) n from alerts where alert_type = 'regression'")[0]["n"] == 1
        # The worker meets the dead and the hung receiver: both logged as failed attempts, retried later.
        with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
            res = deliver_due(conn, DeliveryConfig(timeout_s=0.5, backoff_base_s=30.0))
        assert res == {"attempted": 2, "delivered": 0, "retrying": 2, "failed": 0}
        errors = sorted(r["error"].split(":")[0] for r in q(db, "select error from webhook_delivery_attempts"))
        assert errors == ["ConnectError", "ReadTimeout"]
    finally:
        hung.close()


def test_subscriptions_and_deactivation(client, db, ingest_headers, admin_headers):
    with Receiver() as rx:
        only_best = register(client, admin_headers, rx.url + "/best", events=["new_best"])
        off = register(client, admin_headers, rx.url + "/off", events=["regression"])
        client.post(f"/api/admin/webhooks/{off['id']}/deactivate", headers=admin_headers)
        post(client, ingest_headers, "k2", 1000, "gsm8k", 0.60)
        post(client, ingest_headers, "k2", 2000, "gsm8k", 0.75)  # improvement + new_best
        post(client, ingest_headers, "k2", 3000, "gsm8k", 0.60)  # regression
        _drain(db)
        assert [json.loads(r["body"])["event"] for r in rx.requests] == ["new_best"]
        assert rx.requests[0]["path"] == "/hook/best"
        assert q(db, "select count(*) n from webhook_deliveries where webhook_id = %s", (off["id"],))[0]["n"] == 0
        # A webhook deactivated with deliveries still pending: they end as failed, unsent.
        post(client, ingest_headers, "k2", 4000, "gsm8k", 0.80)  # new_best again
        client.post(f"/api/admin/webhooks/{only_best['id']}/deactivate", headers=admin_headers)
        _drain(db)
        assert len(rx.requests) == 1
        assert q(db, "select status, last_error from webhook_deliveries order by id desc limit 1")[0] == {
            "status": "failed", "last_error": "webhook deactivated"}


def test_worker_once_with_database_unreachable_returns_1(db):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert run_worker(f"postgresql://postgres@127.0.0.1:{port}/none?connect_timeout=2", once=True) == 1


def test_eval360_worker_command_drains_the_outbox(client, db, ingest_headers, admin_headers, tmp_path):
    import os
    import subprocess
    import sys

    with Receiver(script=[500]) as rx:
        register(client, admin_headers, rx.url)
        regression(client, ingest_headers)
        env = {**os.environ, "DATABASE_URL": db, "EVAL360_DATA_DIR": str(tmp_path), "EVAL360_WEBHOOK_BACKOFF_S": "0"}
        done = subprocess.run([sys.executable, "-m", "ingest_api.cli", "worker", "--once"], env=env, check=False,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert rx.replies == [500, 200]
    assert q(db, "select status, n_attempts from webhook_deliveries") == [{"status": "delivered", "n_attempts": 2}]


def test_long_running_worker_sweeps_then_delivers(client, make_client, db, ingest_headers, admin_headers, tmp_path):
    """`eval360 worker` (no --once): its start-up sweep judges data written without the hook, and the webhook
    goes out while it keeps running."""
    import os
    import subprocess
    import sys
    import time

    with Receiver() as rx:
        register(client, admin_headers, rx.url)
        with make_client(alerts_inline=False) as plain:  # no judgement in the ingest transaction
            regression(plain, ingest_headers)
        assert q(db, "select count(*) n from webhook_deliveries")[0]["n"] == 0
        env = {**os.environ, "DATABASE_URL": db, "EVAL360_DATA_DIR": str(tmp_path)}
        proc = subprocess.Popen([sys.executable, "-m", "ingest_api.cli", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90  # a bound on the wait, not a timing assertion
            while not rx.requests and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
        assert [json.loads(r["body"])["event"] for r in rx.requests] == ["regression"], err.decode()[-2000:]
