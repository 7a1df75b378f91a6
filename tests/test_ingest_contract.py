"""POST /api/ingest/eval-result: the scheduler's payload, stored exactly, idempotently."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from tests.conftest import q
from tests.helpers import minimal_payload, scheduler_payload


def test_full_scheduler_payload_is_stored(client, db, ingest_headers):
    r = client.post("/api/ingest/eval-result", json=scheduler_payload(), headers=ingest_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    assert body["checkpoint_id"] == "k2-think-v2__step-5000"
    assert body["dataset_name"] == "aime-2026"
    assert body["eval_run_id"] == "run-aime-5000-a"

    m = q(db, "select * from models")[0]
    assert (m["model_id"], m["display_name"], m["owner"], m["model_type"], m["param_count"]) == (
        "k2-think-v2", "K2 Think v2", "varad", "training", 32_000_000_000)
    c = q(db, "select * from checkpoints")[0]
    assert c["training_step"] == 5000 and c["recipe_tags"] == ["rl", "math"]
    assert c["checkpoint_path"] == "/mnt/weka/ckpt/k2-think-v2/step-5000" and c["training_run"] == "k2-think-v2-rl"
    run = q(db, "select * from eval_runs")[0]
    assert run["harness_commit"] == "abc1234" and run["grader_type"] == "math_verify"
    assert run["inference_config"] == {"max_tokens": 32768} and run["eval_config"] == {"temperature": 0.6, "n": 32}
    assert run["sample_count"] == 30 and run["seed"] == 1234 and run["dataset_version"] == "2026.1"
    assert run["prompt_template"] == "Solve: {problem}" and run["status"] == "completed" and run["is_current"]
    res = {x["metric_name"]: x for x in q(db, "select * from eval_results order by metric_order")}
    assert list(res) == ["accuracy (avg over 32)", "bootstrap_std (avg over 32)", "accuracy (pass@1)",
                         "accuracy (pass@2)"]
    assert res["accuracy (avg over 32)"]["is_primary"] and not res["accuracy (pass@1)"]["is_primary"]
    assert res["bootstrap_std (avg over 32)"]["is_score"] is False
    assert res["accuracy (pass@2)"]["metric_value"] == pytest.approx(0.8666666666666667, abs=0)
    bm = q(db, "select * from benchmark_metadata")[0]
    assert (bm["category"], bm["subcategory"]) == ("math", "competition")
    assert q(db, "select count(*) n from activity")[0]["n"] == 1


def test_minimal_payload_gets_defaults(client, db, ingest_headers):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(), headers=ingest_headers)
    assert r.status_code == 200, r.text
    run = q(db, "select * from eval_runs")[0]
    assert run["status"] == "completed" and run["dataset_split"] == "test"
    assert run["eval_run_id"] == r.json()["eval_run_id"] and run["eval_run_id"].startswith("run-")
    assert q(db, "select model_type from models")[0]["model_type"] == "training"
    # step taken from the checkpoint id when training_step is absent
    assert q(db, "select training_step from checkpoints")[0]["training_step"] == 5000
    primary = q(db, "select metric_name from eval_results where is_primary")
    assert [p["metric_name"] for p in primary] == ["accuracy (avg over 8)"]


def test_primary_defaults_to_first_score_not_spread(client, db, ingest_headers):
    p = minimal_payload(metrics={"bootstrap_std (avg over 4)": 0.02, "accuracy (avg over 4)": 0.5})
    assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
    assert q(db, "select metric_name from eval_results where is_primary")[0]["metric_name"] == "accuracy (avg over 4)"


def test_same_run_posted_twice_leaves_one_copy(client, db, ingest_headers):
    for value in (0.5, 0.55):
        p = scheduler_payload(metrics={"accuracy (avg over 32)": value})
        assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == 1
    rows = q(db, "select metric_name, metric_value from eval_results")
    assert rows == [{"metric_name": "accuracy (avg over 32)", "metric_value": 0.55}]  # dropped metrics go too


def test_no_run_id_same_content_is_idempotent(client, db, ingest_headers):
    p = minimal_payload()
    ids = {client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).json()["eval_run_id"]
           for _ in range(3)}
    assert len(ids) == 1
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == 1


def test_new_run_becomes_current_old_kept(client, db, ingest_headers):
    a = client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="r1"), headers=ingest_headers)
    b = client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="r2"), headers=ingest_headers)
    assert a.status_code == b.status_code == 200
    rows = q(db, "select eval_run_id, is_current from eval_runs order by eval_run_id")
    assert rows == [{"eval_run_id": "r1", "is_current": False}, {"eval_run_id": "r2", "is_current": True}]
    # re-posting the older run (a retry) does not make it current again
    client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="r1"), headers=ingest_headers)
    rows = q(db, "select eval_run_id from eval_runs where is_current")
    assert rows == [{"eval_run_id": "r2"}]


@pytest.mark.parametrize("posted, step, expected", [
    ("k2-think-v2__step-5000", None, "k2-think-v2__step-5000"),
    ("k2-think-v2__k2moe375b-mid1-checkpoint_0005000", None, "k2-think-v2__step-5000"),
    ("k2-think-v2__global_step_5000", None, "k2-think-v2__step-5000"),
    ("whatever-name", 5000, "k2-think-v2__step-5000"),
])
def test_checkpoint_aliases_land_on_one_checkpoint(client, db, ingest_headers, posted, step, expected):
    first = minimal_payload(checkpoint_id="k2-think-v2__step-5000", dataset_name="a")
    client.post("/api/ingest/eval-result", json=first, headers=ingest_headers)
    p = minimal_payload(checkpoint_id=posted, dataset_name="b")
    if step is not None:
        p["training_step"] = step
    r = client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
    assert r.status_code == 200, r.text
    assert r.json()["checkpoint_id"] == expected
    assert q(db, "select checkpoint_id from checkpoints") == [{"checkpoint_id": expected}]
    if posted != expected:
        assert q(db, "select alias, checkpoint_id from checkpoint_aliases") == [
            {"alias": posted, "checkpoint_id": expected}]


def test_baseline_is_canonical_and_has_no_step(client, db, ingest_headers):
    p = minimal_payload(model_id="deepseek-v3-0324", checkpoint_id="deepseek-v3-0324", model_type="baseline")
    r = client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
    assert r.json()["checkpoint_id"] == "deepseek-v3-0324__baseline"
    assert q(db, "select training_step from checkpoints") == [{"training_step": None}]


def test_nan_and_inf_are_stored_as_no_value(client, db, ingest_headers):
    body = ('{"model_id": "m", "display_name": "M", "owner": "o", "checkpoint_id": "m__step-1", '
            '"dataset_name": "d", "sample_count": 10, '
            '"metrics": {"accuracy (avg over 4)": NaN, "accuracy (pass@1)": Infinity, "x": -Infinity, "y": 0.5}}')
    r = client.post("/api/ingest/eval-result", content=body,
                    headers={**ingest_headers, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["metrics_without_value"]) == ["accuracy (avg over 4)", "accuracy (pass@1)", "x"]
    rows = {x["metric_name"]: x for x in q(db, "select * from eval_results")}
    assert len(rows) == 4
    assert rows["accuracy (avg over 4)"]["metric_value"] is None and rows["accuracy (avg over 4)"]["value_note"] == "nan"
    assert rows["accuracy (pass@1)"]["value_note"] == "inf" and rows["x"]["value_note"] == "-inf"
    assert rows["accuracy (avg over 4)"]["ci_lower"] is None


def test_sample_count_gives_wilson_interval(client, db, ingest_headers):
    p = minimal_payload(metrics={"accuracy (avg over 1)": 0.6, "bootstrap_std (avg over 1)": 0.1}, sample_count=200)
    client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
    row = q(db, "select * from eval_results where is_primary")[0]
    # reference: scipy's Wilson interval for 120 of 200
    ref = binomtest(120, 200).proportion_ci(confidence_level=0.95, method="wilson")
    assert row["ci_lower"] == pytest.approx(ref.low, abs=1e-9)
    assert row["ci_upper"] == pytest.approx(ref.high, abs=1e-9)
    assert row["stderr"] == pytest.approx(math.sqrt(0.6 * 0.4 / 200))
    spread = q(db, "select * from eval_results where metric_name like 'bootstrap%%'")[0]
    assert spread["ci_lower"] is None


def test_callers_own_interval_is_kept(client, db, ingest_headers):
    p = minimal_payload(ci_lower=0.5, ci_upper=0.7, stderr=0.05, sample_count=100)
    client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
    row = q(db, "select ci_lower, ci_upper, stderr from eval_results where is_primary")[0]
    assert row == {"ci_lower": 0.5, "ci_upper": 0.7, "stderr": 0.05}


def test_reply_shape(client, ingest_headers):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(), headers=ingest_headers)
    assert {"ok", "checkpoint_id", "dataset_name", "eval_run_id"} <= set(r.json())
