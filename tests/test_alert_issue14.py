"""Issue 14 and issue 13 item 1, through the real API and a real PostgreSQL: the alert backlog in
/api/health, no webhook for an alert that does not last, not_testable in leaderboard and diff,
severity under a large vs a small drop, and one p-value for one pair of runs from /api/diff, the
alert and the promotion verdict."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from ingest_api.ops.delivery import DeliveryConfig, deliver_due
from ingest_api.ops.worker import run_worker
from tests.conftest import q
from tests.plugins.alert_data import open_alerts, paired_outcomes, post, post_examples
from tests.plugins.webhooks import Receiver, register

M = "k14"
FAST = DeliveryConfig(timeout_s=5.0, backoff_base_s=0.0, backoff_cap_s=0.0)


@pytest.mark.usefixtures("alerts_deferred")  # the default: the worker judges
def test_health_reports_the_alert_backlog(client, db, ingest_headers):
    h = client.get("/api/health").json()
    assert (h["alerts_pending"], h["alerts_lag_s"]) == (0, 0)
    for s in (1000, 2000):
        for d in ("gsm8k", "mmlu"):
            post(client, ingest_headers, M, s, d, 0.6)
    h = client.get("/api/health").json()
    assert h["alerts_pending"] == 4 and h["alerts_lag_s"] >= 0
    assert run_worker(db, once=True) == 0
    h = client.get("/api/health").json()
    assert (h["alerts_pending"], h["alerts_lag_s"]) == (0, 0)


@pytest.mark.usefixtures("alerts_inline")
def test_no_webhook_for_an_alert_resolved_before_delivery(client, db, ingest_headers, admin_headers, monkeypatch):
    """Out-of-order posting raises an alert at step 3000 that step 2000, arriving late, resolves: the
    webhook of the transient alert is withdrawn, only the lasting one (step 2000) goes out."""
    monkeypatch.setenv("EVAL360_ALERT_QUIET_S", "0")
    with Receiver() as rx:
        register(client, admin_headers, rx.url, events=["regression"])
        post(client, ingest_headers, M, 1000, "gsm8k", 0.70)
        post(client, ingest_headers, M, 3000, "gsm8k", 0.58)
        assert [a["checkpoint_id"] for a in open_alerts(client, type="regression")] == [f"{M}__step-3000"]
        post(client, ingest_headers, M, 2000, "gsm8k", 0.58)
        assert [a["checkpoint_id"] for a in open_alerts(client, type="regression")] == [f"{M}__step-2000"]
        with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
            assert deliver_due(conn, FAST)["delivered"] == 1
        sent = [r["body"] for r in rx.requests]
    assert len(sent) == 1 and f"{M}__step-2000".encode() in sent[0]
    rows = {r["payload"]["checkpoint_id"]: r["status"] for r in q(db, "select payload, status from webhook_deliveries")}
    assert rows == {f"{M}__step-3000": "withdrawn", f"{M}__step-2000": "delivered"}


@pytest.mark.usefixtures("alerts_inline")
def test_a_regression_waits_for_its_quiet_period(client, db, ingest_headers, admin_headers, monkeypatch):
    monkeypatch.setenv("EVAL360_ALERT_QUIET_S", "3600")
    with Receiver() as rx:
        register(client, admin_headers, rx.url, events=["regression"])
        post(client, ingest_headers, M, 1000, "gsm8k", 0.70)
        post(client, ingest_headers, M, 2000, "gsm8k", 0.55)
        assert len(open_alerts(client, type="regression")) == 1
        with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
            assert deliver_due(conn, FAST)["attempted"] == 0  # held: the alert has not lasted an hour
        assert rx.requests == []
    assert [r["status"] for r in q(db, "select status from webhook_deliveries")] == ["pending"]


@pytest.mark.usefixtures("alerts_inline")
def test_not_testable_in_leaderboard_and_diff(client, db, ingest_headers, monkeypatch):
    # No sample count, no examples, no stderr: 0.612 vs 0.586 cannot be separated.
    post(client, ingest_headers, "ma", 1000, "nodata", 0.612, n=None)
    post(client, ingest_headers, "mb", 1000, "nodata", 0.586, n=None)
    board = client.get("/api/datasets/nodata/leaderboard").json()["leaderboard"]
    assert [b["is_tied"] for b in board] == [None, None]
    assert all(b["tie_status"] == "not_testable" and "sample count" in b["not_testable"] for b in board)
    d = client.get("/api/diff", params={"checkpoint_a": "ma__step-1000", "checkpoint_b": "mb__step-1000"}).json()
    row = d["datasets"][0]
    assert row["direction"] == "not_testable" and row["significance"] == "insufficient_data"
    assert row["p_value"] is None and "sample count" in row["not_testable"]
    assert d["summary"]["not_testable"] == 1 and d["summary"]["unchanged"] == 0
    # With a sample count the same pair is testable again.
    post(client, ingest_headers, "mb", 1000, "withn", 0.586, n=1000)
    post(client, ingest_headers, "ma", 1000, "withn", 0.612, n=1000)
    board = client.get("/api/datasets/withn/leaderboard").json()["leaderboard"]
    assert [b["is_tied"] for b in board] == [True, True] and "not_testable" not in board[0]


@pytest.mark.usefixtures("alerts_inline")
def test_severity_large_drop_critical_small_drop_warning(client, db, ingest_headers, admin_headers, monkeypatch):
    for s in (1000, 2000):
        post(client, ingest_headers, M, s, "big", 0.70, n=1000)
        post(client, ingest_headers, M, s, "small", 0.60, n=50_000)
    post(client, ingest_headers, M, 3000, "big", 0.55, n=1000)  # 15 points, q tiny
    post(client, ingest_headers, M, 3000, "small", 0.575, n=50_000)  # 2.5 points, q tiny too
    sev = {a["dataset_name"]: a["severity"] for a in open_alerts(client, type="regression")}
    assert sev == {"big": "critical", "small": "warning"}
    # A per-dataset override in benchmark metadata makes 2 points critical on "small".
    r = client.post("/api/admin/benchmark-metadata", headers=admin_headers,
                    json={"benchmarks": [{"dataset_name": "small", "critical_drop_points": 2}]})
    assert r.status_code == 200, r.text
    sev = {a["dataset_name"]: a["severity"] for a in open_alerts(client, type="regression")}
    assert sev == {"big": "critical", "small": "critical"}
    assert client.post("/api/admin/benchmark-metadata", headers=admin_headers,
                       json={"benchmarks": [{"dataset_name": "small", "critical_drop_points": -1}]}).status_code == 422


@pytest.mark.usefixtures("alerts_inline")
@pytest.mark.parametrize("with_examples", [True, False])
def test_diff_alert_and_promotion_report_one_p_value(client, db, ingest_headers, admin_headers, monkeypatch,
                                                    with_examples):
    rng = np.random.default_rng(13)
    x, y = paired_outcomes(rng, 500, 0.6, drop=0.06 if with_examples else 0.12, agreement=0.85)
    a = post(client, ingest_headers, M, 1000, "gsm8k", float(x.mean()), n=500)
    r = client.post("/api/admin/promotion-rules", headers=admin_headers,
                    json={"rule_name": "gate", "model_id": M, "dataset_names": ["gsm8k"], "no_regressions": True})
    assert r.status_code == 200, r.text
    b = post(client, ingest_headers, M, 2000, "gsm8k", float(y.mean()), n=500)
    if with_examples:
        post_examples(client, ingest_headers, a["eval_run_id"], x)
        post_examples(client, ingest_headers, b["eval_run_id"], y)
        assert run_worker(db, once=True) == 0
    d = client.get("/api/diff", params={"checkpoint_a": f"{M}__step-1000", "checkpoint_b": f"{M}__step-2000"}).json()
    p_diff = d["datasets"][0]["p_value"]
    alert = open_alerts(client, type="regression")
    assert len(alert) == 1
    p_alert = alert[0]["detail"]["p_value"]
    status = client.get(f"/api/models/{M}/promotion-status", params={"checkpoint_id": f"{M}__step-2000"}).json()
    cond = [c for r in status["rules"] for c in r["conditions"] if c["kind"] == "no_regressions"]
    p_prom = cond[0]["p_value"]
    method = "mcnemar_midp" if with_examples else "two_proportion_z"
    assert d["datasets"][0]["test"] == alert[0]["detail"]["method"] == cond[0]["method"] == method
    assert p_diff == pytest.approx(p_alert, rel=1e-12) and p_diff == pytest.approx(p_prom, rel=1e-12)


@pytest.mark.usefixtures("alerts_inline")
def test_the_shuffled_noise_load_sends_no_webhook_for_an_alert_later_resolved(client, db, ingest_headers,
                                                                             admin_headers, monkeypatch):
    """Issue 14 §3 on a whole load, not a constructed pair: pure noise (3 models x 12 checkpoints x 8
    datasets, n = 500) posted in shuffled order raises regression alerts that later checkpoints resolve.
    Delivery runs after the load (as the quiet period makes it do in production): every regression
    webhook sent is of an alert still open, and the transient ones were withdrawn, not sent."""
    monkeypatch.setenv("EVAL360_ALERT_QUIET_S", "0")
    rng = np.random.default_rng(1414)
    rows = []
    for m in ("n1", "n2", "n3"):
        acc = rng.uniform(0.3, 0.8, 8)
        for c in range(12):
            vals = rng.binomial(500, acc) / 500
            rows += [(m, (c + 1) * 1000, f"ds{d}", float(vals[d])) for d in range(8)]
    with Receiver() as rx:
        register(client, admin_headers, rx.url, events=["regression"])
        for i in rng.permutation(len(rows)):
            m, step, d, v = rows[i]
            post(client, ingest_headers, m, step, d, v, n=500)
        with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
            report = deliver_due(conn, FAST)
        sent = list(rx.requests)
    deliveries = q(db, "select d.status, d.payload from webhook_deliveries d")
    withdrawn = [r for r in deliveries if r["status"] == "withdrawn"]
    assert withdrawn, "the shuffled noise load raised no transient regression, so this test shows nothing"
    still_open = {(a["checkpoint_id"], a["dataset_name"]) for a in open_alerts(client, type="regression")}
    delivered = [(r["payload"]["checkpoint_id"], r["payload"]["dataset_name"])
                 for r in deliveries if r["status"] == "delivered"]
    assert len(sent) == len(delivered) == report["delivered"]
    assert set(delivered) <= still_open, "a webhook went out for an alert that did not last"
    resolved = q(db, "select checkpoint_id, dataset_name from alerts where alert_type = 'regression' "
                     "and resolved_at is not null")
    assert resolved, "no regression alert was resolved by a late checkpoint"
    assert not {(r["checkpoint_id"], r["dataset_name"]) for r in resolved} & set(delivered)
