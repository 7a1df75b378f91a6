"""Values that cannot be true are refused; what is accepted is readable; re-posting changes nothing.

Issue 12 §3 (example_idx cost bounded, integers past 64 bits), §4 (proportions in [0, 1], intervals
hold their value, booleans are booleans, an empty example batch writes nothing, duplicate keys) and
§5 (an identical re-post records no activity). README, "Validation rules" states each rule.
"""

from __future__ import annotations

import json
import random

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_api.core.settings import Settings
from tests.conftest import ADMIN, INGEST, q
from tests.helpers import minimal_payload, scheduler_payload
from tests.plugins.backfill import run_backfill, write_scores

READS = ["/api/models", "/api/models/k2-think-v2", "/api/models/k2-think-v2/scores",
         "/api/checkpoints/k2-think-v2__step-5000", "/api/eval-runs/run-1", "/api/activity",
         "/api/heatmap"]


def _raw(client, path: str, body: str, h: dict):
    return client.post(path, content=body, headers={**h, "Content-Type": "application/json"})


def _nothing_stored(db: str) -> bool:
    return q(db, "select (select count(*) from models) + (select count(*) from eval_runs) "
                 "+ (select count(*) from activity) as n")[0]["n"] == 0


# ------------------------------------------------------------------ §3 integers past 64 bits


@pytest.mark.parametrize(("where", "field"), [
    ("metadata", "metadata.x"),
    ("eval_config", "eval_config.nested.list[1]"),
    ("inference_config", "inference_config.x"),
    ("batch", "results[0].metadata.x"),
    ("metric", "metrics.accuracy"),
])
def test_integers_past_64_bits_anywhere_are_refused_naming_the_field(client, db, ingest_headers, where, field):
    big = "18446744073709551616"
    p = json.dumps(scheduler_payload(eval_run_id="run-1"))[:-1]
    if where == "metadata":
        body = p.replace('"metadata": {"cluster": "weka"}', f'"metadata": {{"x": {big}}}') + "}"
    elif where == "eval_config":
        body = p.replace('"eval_config": {"temperature": 0.6, "n": 32}',
                         f'"eval_config": {{"nested": {{"list": [1, {big}]}}}}') + "}"
    elif where == "inference_config":
        body = p.replace('"inference_config": {"max_tokens": 32768}', f'"inference_config": {{"x": -{big}}}') + "}"
    elif where == "batch":
        body = '{"results": [' + p.replace('"metadata": {"cluster": "weka"}', f'"metadata": {{"x": {big}}}') + "}]}"
    else:
        body = json.dumps(minimal_payload(metrics={"accuracy": 0})).replace('"accuracy": 0', f'"accuracy": {big}')
    path = "/api/ingest/eval-results" if where == "batch" else "/api/ingest/eval-result"
    r = _raw(client, path, body, ingest_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert "64-bit" in r.json()["error"]["message"]
    assert _nothing_stored(db)


def test_what_is_accepted_is_readable_by_every_read_endpoint(client, db, ingest_headers):
    big = 2**64
    r = client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="run-1", metadata={"x": big}),
                    headers=ingest_headers)
    assert r.status_code == 422
    # a float of 2^63 or more comes back from jsonb as an integer past 64 bits: refused too
    r = client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="run-1",
                                                                      eval_config={"a": [{"x": 1e300}]}),
                    headers=ingest_headers)
    assert r.status_code == 422 and "eval_config.a[0].x" in r.json()["error"]["message"], r.text
    assert _nothing_stored(db)
    edge = {"max": 2**63 - 1, "min": -(2**63), "float": 9.2e18, "neg_float": -9.2e18, "tiny": 5e-324,
            "nested": [[[{"deep": [1, 2.5, None, True, "é ✓ 𝔘"]}]]], "nan": float("nan"), "e": 1e18}
    body = json.dumps(scheduler_payload(eval_run_id="run-1", metadata=edge, eval_config=edge,
                                        inference_config={"list": [2**63 - 1] * 3}))
    r = _raw(client, "/api/ingest/eval-result", body, ingest_headers)
    assert r.status_code == 200, r.text
    for path in READS:
        got = client.get(path)
        assert got.status_code == 200, (path, got.text)
    run = client.get("/api/eval-runs/run-1").json()
    assert json.dumps(run).count(str(2**63 - 1)) >= 1
    # example rows' metadata too
    ex = {"example_idx": 0, "correct": True, "metadata": {"big": 2**64}}
    r = client.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": [ex]}, headers=ingest_headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "examples[0].metadata.big"
    ex["metadata"] = {k: v for k, v in edge.items() if k != "nan"}
    r = client.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": [ex]}, headers=ingest_headers)
    assert r.status_code == 200, r.text
    got = client.get("/api/eval-runs/run-1/examples")
    assert got.status_code == 200 and got.json()["examples"][0]["metadata"]["max"] == 2**63 - 1


# ------------------------------------------------------------------ §3 example_idx bounded


def _run(client, h) -> None:
    r = client.post("/api/ingest/eval-result", json=minimal_payload(eval_run_id="run-1"), headers=h)
    assert r.status_code == 200


def test_example_idx_past_the_setting_is_refused_naming_the_row(client, db, ingest_headers):
    _run(client, ingest_headers)
    limit = Settings().max_example_idx
    rows = [{"example_idx": 0, "correct": True}, {"example_idx": limit + 1, "correct": False}]
    r = client.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": rows}, headers=ingest_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "examples[1].example_idx"
    assert "EVAL360_MAX_EXAMPLE_IDX" in r.json()["error"]["message"]
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0
    # at the bound it is stored, and its outcome bits are right (one set bit, at the end)
    r = client.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": [
        {"example_idx": limit, "correct": True}]}, headers=ingest_headers)
    assert r.status_code == 200, r.text
    bits = q(db, "select length(present_bits) n, bit_count(present_bits) c, bit_count(outcome_bits) o, "
                 "position(B'1' in present_bits) p from example_run_stats")[0]
    assert bits == {"n": limit + 1, "c": 1, "o": 1, "p": limit + 1}


def test_the_example_idx_bound_is_a_setting(db, tmp_path):
    from ingest_api.api.app import create_app

    s = Settings(database_url=None, data_dir=tmp_path, ingest_token=INGEST, admin_token=ADMIN, max_example_idx=10)
    h = {"Authorization": f"Bearer {INGEST}"}
    with TestClient(create_app(s, database_url=db), raise_server_exceptions=False) as c:
        _run(c, h)
        ok = c.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": [
            {"example_idx": 10, "correct": True}]}, headers=h)
        bad = c.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": [
            {"example_idx": 11, "correct": True}]}, headers=h)
    assert ok.status_code == 200 and bad.status_code == 422


def test_example_bits_match_the_rows_whatever_the_indexes(db):
    """eval360_bits (redefined in 0010, built from the set indexes) against the definition: bit i set
    exactly for the i in idx below len."""
    rng = random.Random(5)
    with psycopg.connect(db) as c:
        for _ in range(40):
            n = rng.choice([0, 1, 5, 64, 300])
            length = rng.choice([0, 1, 7, 64, 1000])
            idx = [rng.randrange(0, 1100) for _ in range(n)] + ([] if rng.random() < 0.5 else [-1])
            got = c.execute("select eval360_bits(%s::int[], %s)::text", (idx, length)).fetchone()[0]
            want = "".join("1" if i in set(idx) else "0" for i in range(length))
            assert got == want, (idx, length)


# ------------------------------------------------------------------ §4 values that cannot be true


@pytest.mark.parametrize("metrics", [
    {"accuracy": 1.5}, {"accuracy": -0.5}, {"accuracy (pass@1)": 1.0001}, {"f1": 2},
    {"exact_match": 3}, {"acc_norm": -1}, {"recall": 1.2}, {"bootstrap_std": 0.1, "strict_prompt_accuracy": 80},
])
def test_a_proportion_outside_0_1_is_refused_naming_the_metric(client, db, ingest_headers, metrics):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(metrics=metrics), headers=ingest_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "metrics"
    assert repr(list(metrics)[-1]) in r.json()["error"]["message"]
    assert _nothing_stored(db)


@pytest.mark.parametrize("metrics", [
    {"accuracy": 1, "loss": 5.3, "rougeL": 45.2, "accuracy_pct": 81.4, "n_correct": 25},
    {"accuracy (avg over 4)": "nan", "accuracy (pass@1)": "inf"},  # kept as no value, with a note
])
def test_other_metrics_and_non_finite_values_are_kept(client, db, ingest_headers, metrics):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(metrics=metrics), headers=ingest_headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("over", "field"), [
    ({"ci_lower": 5, "ci_upper": 6}, "ci_lower"),
    ({"ci_lower": 0.1, "ci_upper": 0.2}, "ci_upper"),
    ({"ci_lower": 0.7, "ci_upper": 0.3}, "ci_lower"),
    ({"ci_upper": 0.4}, "ci_upper"),
    ({"stderr": -0.01}, "stderr"),
])
def test_an_interval_must_hold_its_value(client, db, ingest_headers, over, field):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(metrics={"accuracy": 0.5}, **over),
                    headers=ingest_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert _nothing_stored(db)
    ok = client.post("/api/ingest/eval-result", json=minimal_payload(metrics={"accuracy": 0.5}, ci_lower=0.4,
                                                                     ci_upper=0.6, stderr=0.05),
                     headers=ingest_headers)
    assert ok.status_code == 200


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "1", 1.0])
def test_correct_must_be_a_boolean(client, db, ingest_headers, value):
    _run(client, ingest_headers)
    r = client.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": [
        {"example_idx": 0, "correct": True}, {"example_idx": 1, "correct": value}]}, headers=ingest_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "examples[1].correct"
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0


def test_an_empty_example_batch_writes_nothing(client, db, ingest_headers):
    _run(client, ingest_headers)
    before = q(db, "select count(*) n from activity")[0]["n"]
    r = client.post("/api/ingest/examples", json={"eval_run_id": "run-1", "examples": []}, headers=ingest_headers)
    assert r.status_code == 200 and r.json()["count"] == 0
    assert q(db, "select count(*) n from activity")[0]["n"] == before
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0
    # an unknown run is still a 404
    r = client.post("/api/ingest/examples", json={"eval_run_id": "nope", "examples": []}, headers=ingest_headers)
    assert r.status_code == 404


@pytest.mark.parametrize(("path", "body", "field", "auth"), [
    ("/api/ingest/eval-result",
     ('{"model_id": "a", "model_id": "b", "display_name": "A", "owner": "o", "checkpoint_id": "a__step-1", '
     '"dataset_name": "d", "metrics": {"accuracy": 0.5}}'), "model_id", "ingest"),
    ("/api/ingest/eval-result",
     ('{"model_id": "a", "display_name": "A", "owner": "o", "checkpoint_id": "a__step-1", '
     '"dataset_name": "d", "metrics": {"accuracy": 0.5, "accuracy": 0.9}}'), "metrics.accuracy", "ingest"),
    ("/api/ingest/eval-results",
     ('{"results": [{"model_id": "a", "display_name": "A", "owner": "o", "checkpoint_id": "a__step-1", '
     '"dataset_name": "d", "metrics": {"accuracy": 0.5}, "metadata": {"k": 1, "k": NaN}}]}'),
     "results[0].metadata.k", "ingest"),
    ("/api/ingest/examples", '{"eval_run_id": "x", "examples": [], "eval_run_id": "y"}', "eval_run_id", "ingest"),
    ("/api/admin/suites", '{"suite_id": "s", "suite_id": "t", "display_name": "S", "dataset_names": ["d"]}',
     "suite_id", "admin"),
])
def test_duplicate_keys_are_refused_on_every_post(client, db, ingest_headers, admin_headers, path, body, field,
                                                  auth):
    r = _raw(client, path, body, ingest_headers if auth == "ingest" else admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert "more than once" in r.json()["error"]["message"]
    assert _nothing_stored(db)


def test_json_without_duplicates_still_parses_nan_and_infinity(client, db, ingest_headers):
    body = ('{"model_id": "m", "display_name": "M", "owner": "o", "checkpoint_id": "m__step-1", '
            '"dataset_name": "d", "metrics": {"accuracy": NaN, "x": Infinity, "y": 0.5}, '
            '"metadata": {"a": {"k": 1}, "b": {"k": 2}}}')
    r = _raw(client, "/api/ingest/eval-result", body, ingest_headers)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["metrics_without_value"]) == ["accuracy", "x"]


# ------------------------------------------------------------------ §5 an identical re-post records nothing


def _activity(db: str) -> int:
    return q(db, "select count(*) n from activity")[0]["n"]


def test_reposting_an_identical_result_records_no_activity(client, db, ingest_headers):
    for p in (scheduler_payload(), minimal_payload(dataset_name="derived")):  # explicit and derived run ids
        assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
        n = _activity(db)
        for _ in range(3):
            assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
        assert _activity(db) == n
    # a change records one: a new value under the same run id, or a new display name
    changed = scheduler_payload(metrics={"accuracy (avg over 32)": 0.9})
    assert client.post("/api/ingest/eval-result", json=changed, headers=ingest_headers).status_code == 200
    assert _activity(db) == n + 1
    renamed = {**changed, "display_name": "K2 Think v2 (renamed)"}
    assert client.post("/api/ingest/eval-result", json=renamed, headers=ingest_headers).status_code == 200
    assert _activity(db) == n + 2


def test_an_identical_result_twice_in_one_batch_records_one_event(client, db, ingest_headers):
    p = scheduler_payload()
    r = client.post("/api/ingest/eval-results", json={"results": [p, p, minimal_payload(dataset_name="x"), p]},
                    headers=ingest_headers)
    assert r.status_code == 200, r.text
    assert _activity(db) == 2
    r = client.post("/api/ingest/eval-results", json={"results": [p, minimal_payload(dataset_name="x")]},
                    headers=ingest_headers)
    assert _activity(db) == 2


@pytest.mark.usefixtures("no_ambient_target")
def test_a_backfill_run_twice_records_the_activity_of_one_run(server, db, tmp_path):
    out = tmp_path / "output"
    rng = random.Random(7)
    for step in (1000, 2000, 3000):
        for i in range(4):
            write_scores(out / f"step-{step}", f"ds-{i}", {"accuracy (avg over 1)": rng.random()})
    assert run_backfill(server, "--output-dir", str(out), "--model-id", "bf", "--recursive") == 0
    once = _activity(db)
    assert once == 12
    assert run_backfill(server, "--output-dir", str(out), "--model-id", "bf", "--recursive") == 0
    assert _activity(db) == once
    write_scores(out / "step-3000", "ds-0", {"accuracy (avg over 1)": 0.123})  # one result changed
    assert run_backfill(server, "--output-dir", str(out), "--model-id", "bf", "--recursive") == 0
    assert _activity(db) == once + 1


def test_metrics_per_result_limit_is_the_setting(make_client, db, ingest_headers):
    """EVAL360_MAX_METRICS: a result with more metrics is a 422 naming the field; nothing is stored."""
    many = {f"accuracy (avg over {k})": 0.5 for k in range(1, 5)}
    with make_client(max_metrics_per_result=3) as client:
        r = client.post("/api/ingest/eval-result", json=minimal_payload(metrics=many), headers=ingest_headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == "metrics", r.text
        r = client.post("/api/ingest/eval-results", json={"results": [minimal_payload(), minimal_payload(
            metrics=many, dataset_name="other")]}, headers=ingest_headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == "results[1].metrics", r.text
        assert q(db, "select count(*) n from eval_runs")[0]["n"] == 0
        ok = client.post("/api/ingest/eval-result", json=minimal_payload(metrics=dict(list(many.items())[:3])),
                         headers=ingest_headers)
        assert ok.status_code == 200, ok.text
