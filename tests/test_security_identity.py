"""Checkpoint identity cannot cross models (issue 12, §2; sql/functions/50_store_results.sql).

- A posted checkpoint id that is another model's checkpoint id, or names another model
  (`{other}__…`), is a 409 naming the owner; it never becomes an alias, so DELETE/GET by that id
  reach the owner's checkpoint and nothing else.
- Aliases belong to one model: two models may both post `step-1000`; a lookup by an alias several
  models share is a 409 listing the candidates (the checkpoint id is always looked up first).
- A checkpoint id whose step disagrees with training_step is a 422 saying both numbers.
- Ingest never changes a model's type: a result stating another type is a 409 (PATCH changes it);
  a baseline given a training_step is a 409 instead of a silently dropped step.
Every rule holds for the batch endpoint as for single posts.
"""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.helpers import minimal_payload


def _p(model: str, checkpoint_id: str, **over) -> dict:
    return minimal_payload(model_id=model, display_name=model.title(), checkpoint_id=checkpoint_id, **over)


def _post(client, h, path: str, payloads: list[dict]) -> list:
    """Post payloads one by one (path "single") or as one batch (path "batch"): the replies' codes/bodies."""
    if path == "single":
        return [client.post("/api/ingest/eval-result", json=p, headers=h) for p in payloads]
    return [client.post("/api/ingest/eval-results", json={"results": payloads}, headers=h)]


@pytest.mark.parametrize("path", ["single", "batch"])
def test_another_models_checkpoint_id_is_a_conflict_naming_the_owner(client, db, ingest_headers, path):
    assert client.post("/api/ingest/eval-result", json=_p("alpha", "alpha__step-100", dataset_name="a"),
                       headers=ingest_headers).status_code == 200
    replies = _post(client, ingest_headers, path, [_p("beta", "beta__step-5", dataset_name="b"),
                                                    _p("beta", "alpha__step-100", dataset_name="c")])
    bad = replies[-1]
    assert bad.status_code == 409, bad.text
    err = bad.json()["error"]
    assert err["field"] == ("checkpoint_id" if path == "single" else "results[1].checkpoint_id")
    assert "'alpha'" in err["message"] and "'alpha__step-100'" in err["message"]
    assert q(db, "select count(*) n from checkpoint_aliases where alias = 'alpha__step-100'")[0]["n"] == 0


def test_deleting_by_a_checkpoint_id_never_reaches_another_models_checkpoint(client, db, ingest_headers,
                                                                             admin_headers):
    client.post("/api/ingest/eval-result", json=_p("alpha", "alpha__step-100", dataset_name="a"),
                headers=ingest_headers)
    r = client.post("/api/ingest/eval-result", json=_p("beta", "alpha__step-100", dataset_name="b"),
                    headers=ingest_headers)
    assert r.status_code == 409
    client.post("/api/ingest/eval-result", json=_p("beta", "beta__step-100", dataset_name="b"),
                headers=ingest_headers)
    got = client.get("/api/checkpoints/alpha__step-100")
    assert got.status_code == 200 and got.json()["checkpoint"]["model_id"] == "alpha"
    d = client.delete("/api/checkpoints/alpha__step-100", headers=admin_headers)
    assert d.status_code == 200, d.text
    assert d.json()["model_id"] == "alpha"
    assert q(db, "select checkpoint_id from checkpoints order by 1") == [{"checkpoint_id": "beta__step-100"}]


@pytest.mark.parametrize("path", ["single", "batch"])
def test_a_spelling_naming_another_model_is_refused(client, db, ingest_headers, path):
    # alpha's own alias `alpha__final` (of alpha__step-5) is alpha's: beta cannot post it
    assert client.post("/api/ingest/eval-result", json=_p("alpha", "alpha__final", training_step=5),
                       headers=ingest_headers).status_code == 200
    replies = _post(client, ingest_headers, path, [_p("beta", "alpha__final", training_step=5)])
    assert replies[-1].status_code == 409, replies[-1].text
    assert "'alpha'" in replies[-1].json()["error"]["message"]
    assert q(db, "select model_id, alias, checkpoint_id from checkpoint_aliases") == [
        {"model_id": "alpha", "alias": "alpha__final", "checkpoint_id": "alpha__step-5"}]


@pytest.mark.parametrize("path", ["single", "batch"])
def test_aliases_resolve_within_the_posting_model(client, db, ingest_headers, path):
    replies = _post(client, ingest_headers, path, [_p("alpha", "step-1000", training_step=1000, dataset_name="a"),
                                                    _p("beta", "step-1000", training_step=1000, dataset_name="a"),
                                                    _p("beta", "step-1000", dataset_name="b")])
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert q(db, "select model_id, alias, checkpoint_id from checkpoint_aliases order by 1") == [
        {"model_id": "alpha", "alias": "step-1000", "checkpoint_id": "alpha__step-1000"},
        {"model_id": "beta", "alias": "step-1000", "checkpoint_id": "beta__step-1000"}]
    assert q(db, "select checkpoint_id, dataset_name from eval_runs order by 1, 2") == [
        {"checkpoint_id": "alpha__step-1000", "dataset_name": "a"},
        {"checkpoint_id": "beta__step-1000", "dataset_name": "a"},
        {"checkpoint_id": "beta__step-1000", "dataset_name": "b"}]


def test_an_alias_shared_by_several_models_is_ambiguous_and_names_the_candidates(client, db, ingest_headers,
                                                                                  admin_headers):
    for m in ("alpha", "beta"):
        assert client.post("/api/ingest/eval-result", json=_p(m, "step-1000", training_step=1000),
                           headers=ingest_headers).status_code == 200
    for r in (client.get("/api/checkpoints/step-1000"),
              client.delete("/api/checkpoints/step-1000", headers=admin_headers),
              client.get("/api/diff", params={"checkpoint_a": "step-1000", "checkpoint_b": "alpha__step-1000"})):
        assert r.status_code == 409, r.text
        assert "alpha__step-1000" in r.json()["error"]["message"]
        assert "beta__step-1000" in r.json()["error"]["message"]
    assert q(db, "select count(*) n from checkpoints")[0]["n"] == 2  # nothing deleted
    # the checkpoint id is unambiguous; the model's own alias too, within that model
    assert client.get("/api/checkpoints/beta__step-1000").json()["checkpoint"]["model_id"] == "beta"
    r = client.get("/api/models/beta/promotion-status", params={"checkpoint_id": "step-1000"})
    assert r.status_code == 200 and r.json()["checkpoint_id"] == "beta__step-1000"


@pytest.mark.parametrize("path", ["single", "batch"])
def test_an_alias_never_shadows_a_checkpoint_id(client, db, ingest_headers, path):
    # a stepless training checkpoint keeps its posted id as its checkpoint id
    r = client.post("/api/ingest/eval-result", json=_p("alpha", "alpha__final", dataset_name="a"),
                    headers=ingest_headers)
    assert r.json()["checkpoint_id"] == "alpha__final"
    # the same spelling for step 7 would make it an alias of alpha__step-7, shadowing that id: refused
    replies = _post(client, ingest_headers, path, [_p("alpha", "alpha__final", training_step=7, dataset_name="b")])
    assert replies[-1].status_code == 409, replies[-1].text
    assert "another checkpoint of model 'alpha'" in replies[-1].json()["error"]["message"]
    got = client.get("/api/checkpoints/alpha__final").json()["checkpoint"]
    assert (got["checkpoint_id"], got["training_step"]) == ("alpha__final", None)
    assert q(db, "select count(*) n from checkpoint_aliases")[0]["n"] == 0


@pytest.mark.parametrize("path", ["single", "batch"])
def test_a_step_in_the_id_disagreeing_with_training_step_is_refused(client, db, ingest_headers, path):
    replies = _post(client, ingest_headers, path, [_p("m", "m__step-1000", training_step=2000)])
    r = replies[-1]
    assert r.status_code == 422, r.text
    assert "1000" in r.json()["error"]["message"] and "2000" in r.json()["error"]["message"]
    assert r.json()["error"]["field"].endswith("training_step")
    assert q(db, "select count(*) n from checkpoints")[0]["n"] == 0


@pytest.mark.parametrize("path", ["single", "batch"])
def test_ingest_never_changes_a_models_type(client, db, ingest_headers, admin_headers, path):
    assert client.post("/api/ingest/eval-result", json=_p("m", "m__step-5", dataset_name="a"),
                       headers=ingest_headers).status_code == 200
    replies = _post(client, ingest_headers, path, [_p("m", "m", model_type="baseline", dataset_name="b")])
    assert replies[-1].status_code == 409, replies[-1].text
    assert replies[-1].json()["error"]["field"].endswith("model_type")
    assert "PATCH" in replies[-1].json()["error"]["message"]
    assert q(db, "select model_type from models") == [{"model_type": "training"}]
    # a later training post keeps its step
    r = client.post("/api/ingest/eval-result", json=_p("m", "m__step-6", training_step=6, dataset_name="c"),
                    headers=ingest_headers)
    assert r.status_code == 200 and r.json()["checkpoint_id"] == "m__step-6" and r.json()["training_step"] == 6
    # the admin PATCH is the way to change it; then a training step for the baseline is a 409, not dropped
    assert client.patch("/api/models/m", json={"model_type": "baseline"}, headers=admin_headers).status_code == 200
    replies = _post(client, ingest_headers, path, [_p("m", "m__step-7", training_step=7, dataset_name="d")])
    assert replies[-1].status_code == 409, replies[-1].text
    assert replies[-1].json()["error"]["field"].endswith("training_step")
    assert q(db, "select count(*) n from eval_runs where dataset_name = 'd'")[0]["n"] == 0


def test_a_type_stated_by_the_first_result_of_a_new_model_holds_for_the_batch(client, db, ingest_headers):
    r = client.post("/api/ingest/eval-results", json={"results": [
        _p("newb", "newb", model_type="baseline", dataset_name="a"),
        _p("newb", "newb", dataset_name="b"),  # no type stated: the model's
        _p("newb", "newb", model_type="training", dataset_name="c")]}, headers=ingest_headers)
    assert r.status_code == 409 and r.json()["error"]["field"] == "results[2].model_type"
    r = client.post("/api/ingest/eval-results", json={"results": [
        _p("newb", "newb", model_type="baseline", dataset_name="a"),
        _p("newb", "newb", dataset_name="b")]}, headers=ingest_headers)
    assert r.status_code == 200
    assert {x["checkpoint_id"] for x in r.json()["results"]} == {"newb__baseline"}
