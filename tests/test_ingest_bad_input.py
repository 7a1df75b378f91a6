"""Bad input: a clear 4xx naming the field, and nothing half-written."""

from __future__ import annotations

import json

import pytest

from tests.conftest import q
from tests.helpers import minimal_payload, scheduler_payload

TABLES = ["models", "checkpoints", "checkpoint_aliases", "eval_runs", "eval_results", "activity",
          "benchmark_metadata"]


def _counts(db):
    return {t: q(db, f"select count(*) n from {t}")[0]["n"] for t in TABLES}


@pytest.mark.parametrize("change, field", [
    ({"model_type": "teacher"}, "model_type"),
    ({"status": "done"}, "status"),
    ({"training_step": -5}, "training_step"),
    ({"metrics": {}}, "metrics"),
    ({"metrics": {"acc": "high"}}, "metrics.acc"),
    ({"metrics": {"acc": True}}, "metrics.acc"),
    ({"metrics": [0.5]}, "metrics"),
    ({"sample_count": "many"}, "sample_count"),
    ({"sample_count": 2**40}, "sample_count"),
    ({"training_step": 2**70}, "training_step"),
    ({"model_id": ""}, "model_id"),
    ({"model_id": "has/slash"}, "model_id"),
    ({"dataset_name": "two words"}, "dataset_name"),
    ({"primary_metric": "not-posted"}, "primary_metric"),
    ({"recipe_tags": "rl"}, "recipe_tags"),
    ({"eval_config": [1, 2]}, "eval_config"),
    ({"display_name": "nul\u0000byte"}, "display_name"),
    ({"ci_lower": 0.9, "ci_upper": 0.1}, "ci_lower"),
])
def test_invalid_fields_are_422_naming_the_field(client, db, ingest_headers, change, field):
    r = client.post("/api/ingest/eval-result", json=scheduler_payload(**change), headers=ingest_headers)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_request"
    assert field.split(".")[0] in err["message"], err
    assert all(v == 0 for v in _counts(db).values())


@pytest.mark.parametrize("missing", ["model_id", "display_name", "owner", "checkpoint_id", "dataset_name",
                                     "metrics"])
def test_missing_required_field(client, db, ingest_headers, missing):
    p = minimal_payload()
    del p[missing]
    r = client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
    assert r.status_code == 422 and missing in r.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"[]", b"null", b"\xff\xfe\x00garbage",
                                  b'{"model_id": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_malformed_bodies(client, db, ingest_headers, body):
    r = client.post("/api/ingest/eval-result", content=body,
                    headers={**ingest_headers, "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["ok"] is False
    assert all(v == 0 for v in _counts(db).values())


def test_oversized_body_is_413(client, db, ingest_headers, settings):
    big = {"x": "a" * (settings.max_body_bytes + 10)}
    r = client.post("/api/ingest/eval-result", content=json.dumps(big),
                    headers={**ingest_headers, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_conflicting_checkpoint_owner_is_409_and_rolled_back(client, db, ingest_headers):
    # "shared-ckpt" has no step: it stays the canonical id of model A
    a = minimal_payload(model_id="a", checkpoint_id="shared-ckpt")
    assert client.post("/api/ingest/eval-result", json=a, headers=ingest_headers).status_code == 200
    before = _counts(db)
    b = minimal_payload(model_id="b", checkpoint_id="shared-ckpt", dataset_name="other")
    r = client.post("/api/ingest/eval-result", json=b, headers=ingest_headers)
    assert r.status_code == 409 and "shared-ckpt" in r.json()["error"]["message"]
    # model b was inserted before the conflict surfaced: the transaction took it back
    assert _counts(db) == before
    assert q(db, "select model_id from models") == [{"model_id": "a"}]


def test_run_id_reused_for_another_dataset_is_409(client, db, ingest_headers):
    client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="r1"), headers=ingest_headers)
    before = _counts(db)
    r = client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id="r1", dataset_name="other"),
                    headers=ingest_headers)
    assert r.status_code == 409 and "eval_run_id" in r.json()["error"]["message"]
    assert _counts(db) == before


def test_batch_is_all_or_nothing(client, db, ingest_headers):
    good = [minimal_payload(dataset_name=f"d{i}") for i in range(5)]
    bad = minimal_payload(model_id="zzz", checkpoint_id="k2-think-v2__step-5000", training_step=None,
                          model_type="baseline")
    # a later conflict (run id owned by another dataset) fails the whole batch
    good[2]["eval_run_id"] = "dup"
    good[4]["eval_run_id"] = "dup"
    r = client.post("/api/ingest/eval-results", json={"results": good + [bad]}, headers=ingest_headers)
    assert r.status_code == 409, r.text
    assert "results[4]" in r.json()["error"]["message"]
    assert all(v == 0 for v in _counts(db).values())


def test_database_failure_mid_call_leaves_nothing(make_client, db, ingest_headers, monkeypatch):
    """Make a late statement of the call fail (the inline alert judgement, the last step of the ingest
    transaction): nothing of the call may remain."""
    from ingest_api.ops import alerts

    def boom(conn, stored):
        conn.execute("select 1/0")

    monkeypatch.setattr(alerts, "judge_stored", boom)
    with make_client(alerts_inline=True) as client:
        r = client.post("/api/ingest/eval-result", json=scheduler_payload(), headers=ingest_headers)
    assert r.status_code in (409, 422, 500)
    assert all(v == 0 for v in _counts(db).values())


def test_unknown_fields_are_ignored(client, db, ingest_headers):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(new_field_from_future_scheduler=1),
                    headers=ingest_headers)
    assert r.status_code == 200


def test_unknown_route_is_404_in_the_error_shape(client):
    r = client.get("/api/nope")
    assert r.status_code == 404 and r.json()["ok"] is False
