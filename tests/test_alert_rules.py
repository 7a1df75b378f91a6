"""Alert rules on crafted sequences, through the real ingest path (POST /api/ingest/*)."""

from __future__ import annotations

import numpy as np
import pytest

from ingest_api.ops.worker import run_worker
from tests.conftest import q
from tests.plugins.alert_data import alert_keys, open_alerts, paired_outcomes, post, post_examples

pytestmark = pytest.mark.usefixtures("alerts_inline")

M = "k2"
DATASETS = ["gsm8k", "mmlu", "bbh", "aime"]


def _baseline_steps(client, h, steps=(1000, 2000), values=None):
    values = values or {"gsm8k": 0.70, "mmlu": 0.60, "bbh": 0.50, "aime": 0.30}
    for s in steps:
        for d in DATASETS:
            post(client, h, M, s, d, values[d])


def test_real_regression_fires_once_and_repost_does_not_duplicate(client, db, ingest_headers):
    _baseline_steps(client, ingest_headers)
    for d, v in {"gsm8k": 0.58, "mmlu": 0.60, "bbh": 0.505, "aime": 0.30}.items():
        post(client, ingest_headers, M, 3000, d, v)
    got = open_alerts(client, type="regression")
    assert [(a["checkpoint_id"], a["dataset_name"]) for a in got] == [(f"{M}__step-3000", "gsm8k")]
    a = got[0]
    assert a["severity"] == "critical"  # 12 points, q far below 0.01
    assert a["detail"]["method"] == "curve_z" and a["detail"]["q_value"] < 0.01  # vs the level of steps 1000-2000
    assert a["detail"]["previous"]["step"] == 2000 and a["acknowledged"] is False
    # Re-posting the same results (and the regressed one again) adds nothing.
    for d, v in {"gsm8k": 0.58, "mmlu": 0.60}.items():
        post(client, ingest_headers, M, 3000, d, v)
    assert q(db, "select count(*) n from alerts where alert_type = 'regression'")[0]["n"] == 1
    assert len(q(db, "select * from activity where event_type = 'alert' and detail->>'alert_type' = 'regression'")) == 1


def test_noise_within_the_interval_does_not_alert(client, db, ingest_headers):
    _baseline_steps(client, ingest_headers)
    # 2-point moves with n = 1000: well inside the noise.
    for d, v in {"gsm8k": 0.68, "mmlu": 0.62, "bbh": 0.48, "aime": 0.315}.items():
        post(client, ingest_headers, M, 3000, d, v)
    assert open_alerts(client) == []
    # The earlier dashboard's rule (interval separation of the step-to-step difference) is not what fires:
    # a 3-point dip below the level of the curve (0.70, 0.70, 0.68) on n = 1000 stays quiet after correction.
    post(client, ingest_headers, M, 4000, "gsm8k", 0.665)
    assert open_alerts(client, type="regression") == []


def test_improvement_and_new_best(client, db, ingest_headers):
    _baseline_steps(client, ingest_headers)
    post(client, ingest_headers, M, 3000, "gsm8k", 0.80)
    types = {(a["alert_type"], a["dataset_name"]) for a in open_alerts(client)}
    assert types == {("improvement", "gsm8k"), ("new_best", "gsm8k")}
    assert {a["severity"] for a in open_alerts(client)} == {"info"}
    # A rebound after a real dip is an improvement (against the level after the dip) but not a new best.
    post(client, ingest_headers, M, 4000, "gsm8k", 0.60)
    post(client, ingest_headers, M, 5000, "gsm8k", 0.80)
    at5 = {a["alert_type"] for a in open_alerts(client, checkpoint_id=f"{M}__step-5000")}
    assert at5 == {"improvement"}
    assert {a["alert_type"] for a in open_alerts(client, checkpoint_id=f"{M}__step-4000")} == {"regression"}


def test_late_earlier_step_rejudges_neighbours(client, db, ingest_headers):
    post(client, ingest_headers, M, 1000, "gsm8k", 0.70)
    post(client, ingest_headers, M, 3000, "gsm8k", 0.60)
    assert {a["alert_type"] for a in open_alerts(client)} == {"regression"}
    # Step 2000 arrives late and is as low as step 3000: the drop happened at 2000, not at 3000.
    post(client, ingest_headers, M, 2000, "gsm8k", 0.60)
    got = open_alerts(client)
    assert [(a["alert_type"], a["checkpoint_id"]) for a in got] == [("regression", f"{M}__step-2000")]
    resolved = open_alerts(client, status="resolved")
    assert [(a["alert_type"], a["checkpoint_id"]) for a in resolved] == [("regression", f"{M}__step-3000")]


def test_lower_is_better_benchmark(client, db, ingest_headers, admin_headers):
    r = client.post("/api/admin/benchmark-metadata", headers=admin_headers,
                    json={"benchmarks": [{"dataset_name": "toxicity", "category": "safety", "is_higher_better": False}]})
    assert r.status_code == 200, r.text
    post(client, ingest_headers, M, 1000, "toxicity", 0.10, metrics={"accuracy (avg over 1)": 0.10})
    post(client, ingest_headers, M, 2000, "toxicity", 0.20, metrics={"accuracy (avg over 1)": 0.20})
    assert [a["alert_type"] for a in open_alerts(client)] == ["regression"]


def test_paired_test_after_examples_arrive(client, db, ingest_headers):
    """A 4-point drop on n = 1000 is not significant unpaired; with example rows (90% agreement) it is."""
    rng = np.random.default_rng(7)
    x, y = paired_outcomes(rng, 1000, 0.7, drop=0.04, agreement=0.9)
    assert 0.03 < x.mean() - y.mean() < 0.05
    a = post(client, ingest_headers, M, 1000, "gsm8k", float(x.mean()))
    for d in ("mmlu", "bbh", "aime"):
        post(client, ingest_headers, M, 1000, d, 0.5)
    b = post(client, ingest_headers, M, 2000, "gsm8k", float(y.mean()))
    for d in ("mmlu", "bbh", "aime"):
        post(client, ingest_headers, M, 2000, d, 0.5)
    assert open_alerts(client, type="regression") == []
    post_examples(client, ingest_headers, a["eval_run_id"], x, batch=100)
    post_examples(client, ingest_headers, b["eval_run_id"], y, batch=100)
    assert q(db, "select count(*) n from alert_recheck")[0]["n"] >= 2  # queued in the examples transaction
    assert run_worker(db, once=True) == 0
    got = open_alerts(client, type="regression")
    assert [(g["checkpoint_id"], g["dataset_name"]) for g in got] == [(f"{M}__step-2000", "gsm8k")]
    assert got[0]["detail"]["method"] == "mcnemar_midp"
    assert q(db, "select count(*) n from alert_recheck")[0]["n"] == 0


def test_baseline_models_get_no_step_alerts(client, db, ingest_headers):
    post(client, ingest_headers, "gpt-4o", 0, "gsm8k", 0.9, model_type="baseline", checkpoint_id="gpt-4o",
         training_step=None)
    assert open_alerts(client) == []


def test_worker_rejudge_is_idempotent(client, db, ingest_headers):
    _baseline_steps(client, ingest_headers)
    post(client, ingest_headers, M, 3000, "gsm8k", 0.55)
    before = alert_keys(open_alerts(client))
    n_activity = q(db, "select count(*) n from activity")[0]["n"]
    assert run_worker(db, once=True) == 0
    assert alert_keys(open_alerts(client)) == before
    assert q(db, "select count(*) n from activity")[0]["n"] == n_activity


def test_backfill_batch_raises_alerts_in_its_transaction(client, db, ingest_headers):
    from tests.plugins.alert_data import result

    batch = [result(M, s, d, v) for s, v in ((1000, 0.7), (2000, 0.7), (3000, 0.5)) for d in ("gsm8k",)]
    batch += [result(M, s, "mmlu", 0.6) for s in (1000, 2000, 3000)]
    r = client.post("/api/ingest/eval-results", json={"results": batch, "source": "backfill"}, headers=ingest_headers)
    assert r.status_code == 200, r.text
    assert alert_keys(open_alerts(client)) == {("regression", f"{M}__step-3000", "gsm8k", "critical")}
    # A batch that fails as a whole leaves no alert behind (same transaction).
    bad = [result("m2", 1000, "gsm8k", 0.7), result("m2", 2000, "gsm8k", 0.4),
           result("m2", 3000, "gsm8k", 0.4, eval_run_id=f"run-{M}-1000-gsm8k")]  # run id of another checkpoint
    r = client.post("/api/ingest/eval-results", json={"results": bad}, headers=ingest_headers)
    assert r.status_code == 409, r.text
    assert open_alerts(client, model_id="m2") == []
    assert q(db, "select count(*) n from webhook_deliveries")[0]["n"] == 0


def test_invalidated_run_resolves_its_alert_and_ack_survives(client, db, ingest_headers, admin_headers):
    _baseline_steps(client, ingest_headers)
    post(client, ingest_headers, M, 3000, "gsm8k", 0.55)
    alert = open_alerts(client, type="regression")[0]
    client.post(f"/api/alerts/{alert['id']}/acknowledge", json={"by": "alice"}, headers=admin_headers)
    # The run turns out broken: a new run of the same cell with status invalidated becomes current.
    post(client, ingest_headers, M, 3000, "gsm8k", 0.55, status="invalidated", eval_run_id="run-k2-3000-gsm8k-inv")
    assert open_alerts(client, type="regression") == []
    # A clean re-run shows the same drop: the same alert row comes back, still acknowledged.
    post(client, ingest_headers, M, 3000, "gsm8k", 0.56, eval_run_id="run-k2-3000-gsm8k-rerun")
    back = open_alerts(client, type="regression")
    assert [a["id"] for a in back] == [alert["id"]] and back[0]["acknowledged_by"] == "alice"
    kinds = [r["event_type"] for r in q(db, "select event_type from activity where event_type like 'alert%%' "
                                           "and detail->>'alert_id' = %s order by id", (str(alert["id"]),))]
    assert kinds == ["alert", "alert_resolved", "alert_reopened"]


def test_paired_on_fractional_example_scores(client, db, ingest_headers):
    """Example scores that are means over generations (avg over 8): a paired t-test on the rows."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 0.9, 500)
    a_scores = np.clip(np.round(base * 8) / 8, 0, 1)
    b_scores = np.clip(np.round((base - 0.04 + rng.normal(0, 0.05, 500)) * 8) / 8, 0, 1)
    a = post(client, ingest_headers, M, 1000, "gsm8k", float(a_scores.mean()), n=500)
    b = post(client, ingest_headers, M, 2000, "gsm8k", float(b_scores.mean()), n=500)
    assert open_alerts(client, type="regression") == []  # unpaired, n = 500: not significant
    for run, sc in ((a["eval_run_id"], a_scores), (b["eval_run_id"], b_scores)):
        r = client.post("/api/ingest/examples", headers=ingest_headers, json={"eval_run_id": run, "examples": [
            {"example_idx": i, "score": float(v)} for i, v in enumerate(sc)]})
        assert r.status_code == 200, r.text
    run_worker(db, once=True)
    got = open_alerts(client, type="regression")
    assert len(got) == 1 and got[0]["detail"]["method"] == "paired_t"


def test_data_written_without_the_hook_is_judged_by_the_worker_sweep(client, make_client, db, ingest_headers):
    """The demo loader (or plain SQL) writes without the ingest hook; the worker's start-up sweep judges it."""
    import psycopg
    from psycopg.rows import dict_row

    from ingest_api.ops import alerts

    with make_client(alerts_inline=False) as plain:  # no judgement in the ingest transaction
        _baseline_steps(plain, ingest_headers)
        post(plain, ingest_headers, M, 3000, "gsm8k", 0.55)
    assert open_alerts(client) == []
    with psycopg.connect(db, row_factory=dict_row, autocommit=True) as conn:
        assert alerts.rejudge_all(conn) == 1
        assert alerts.rejudge_all(conn) == 1  # idempotent
    assert alert_keys(open_alerts(client)) == {("regression", f"{M}__step-3000", "gsm8k", "critical")}
    assert q(db, "select count(*) n from activity where event_type = 'alert'")[0]["n"] == 1
