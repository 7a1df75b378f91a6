"""Every read endpoint: 200 with the §6 keys on data, 404 on unknown ids, 422 on bad query values,
empty-but-valid on an empty database, and never a 500."""

from __future__ import annotations

import pytest

from tests.plugins.read_data import build_small, post, score

MODEL_KEYS = {"model_id", "display_name", "model_type", "owner", "param_count", "is_pinned", "created_at"}
CHECKPOINT_KEYS = {"checkpoint_id", "model_id", "training_step", "checkpoint_path", "metadata", "training_run",
                   "recipe_tags", "created_at"}
RESULT_KEYS = {"checkpoint_id", "dataset_name", "metric_name", "metric_value", "is_primary", "eval_config",
               "eval_run_id", "sample_count", "ci_lower", "ci_upper", "stderr", "ingested_at"}
EXAMPLE_KEYS = {"id", "eval_run_id", "example_idx", "correct", "input_preview", "output_preview", "ground_truth",
                "error_tag", "difficulty", "topic", "subtask", "metadata"}


@pytest.fixture
def data(client, ingest_headers):
    return build_small(client, ingest_headers)


def get(client, url, status=200):
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.text[:500])
    return r.json()


def test_models_list_and_filters(client, data):
    body = get(client, "/api/models?sort=name")
    assert [m["model_id"] for m in body["models"]] == ["alpha", "beta", "gpt-4o", "llama"]
    assert all(MODEL_KEYS <= set(m) for m in body["models"])
    # The default order is the earlier dashboard's: newest first.
    newest = get(client, "/api/models")["models"]
    assert [m["created_at"] for m in newest] == sorted((m["created_at"] for m in newest), reverse=True)
    assert [m["model_id"] for m in newest] == ["llama", "gpt-4o", "beta", "alpha"]
    # The earlier dashboard's counts beside the new names.
    by = {m["model_id"]: m for m in newest}
    assert (by["alpha"]["checkpoint_count"], by["alpha"]["n_checkpoints"], by["alpha"]["dataset_count"]) == (3, 3, 3)
    assert by["beta"]["dataset_count"] == 2
    assert [m["model_id"] for m in get(client, "/api/models?model_type=baseline&sort=name")["models"]] == ["gpt-4o", "llama"]
    assert [m["model_id"] for m in get(client, "/api/models?owner=team-b")["models"]] == ["beta"]
    assert get(client, "/api/models?owner=nobody") == {"models": []}


def test_model_detail(client, data):
    body = get(client, "/api/models/alpha")
    assert MODEL_KEYS <= set(body["model"])
    assert [c["training_step"] for c in body["checkpoints"]] == [1000, 2000, 3000]
    assert all(CHECKPOINT_KEYS <= set(c) for c in body["checkpoints"])


def test_model_scores_compact_by_default(client, data):
    body = get(client, "/api/models/alpha/scores")
    assert body["model_id"] == "alpha"
    assert all(RESULT_KEYS | {"training_step"} <= set(s) for s in body["scores"])
    assert all(s["is_primary"] for s in body["scores"])
    assert len(body["scores"]) == 7
    full = get(client, "/api/models/alpha/scores?metrics=all")["scores"]
    assert len(full) == 13 and any(s["metric_name"].startswith("bootstrap_std") for s in full)
    only = get(client, "/api/models/alpha/scores?dataset=mmlu&min_step=2000")["scores"]
    assert [(s["dataset_name"], s["training_step"]) for s in only] == [("mmlu", 2000), ("mmlu", 3000)]


def test_checkpoint_detail_and_alias(client, data, ingest_headers):
    body = get(client, "/api/checkpoints/alpha__step-1000")
    assert CHECKPOINT_KEYS <= set(body["checkpoint"])
    assert all(RESULT_KEYS <= set(r) for r in body["eval_results"])
    assert {r["dataset_name"] for r in body["eval_results"]} == {"gsm8k", "mmlu", "ifeval"}
    post(client, ingest_headers, model_id="alpha", checkpoint_id="alpha__run7-checkpoint_0004000",
         dataset_name="gsm8k", metrics=score(0.7), sample_count=100)
    alias = get(client, "/api/checkpoints/alpha__run7-checkpoint_0004000")
    assert alias["checkpoint"]["checkpoint_id"] == "alpha__step-4000"


def test_datasets_and_filters(client, data):
    body = get(client, "/api/datasets")
    assert body["datasets"] == ["gsm8k", "ifeval", "mmlu"]
    f = get(client, "/api/filters")
    assert f["owners"] == ["external", "team-a", "team-b"]
    assert f["model_types"] == ["baseline", "training"]
    assert f["datasets"] == ["gsm8k", "ifeval", "mmlu"]


def test_leaderboard_keys(client, data):
    body = get(client, "/api/datasets/gsm8k/leaderboard")
    assert body["dataset_name"] == "gsm8k"
    for row in body["leaderboard"]:
        assert {"model_id", "display_name", "model_type", "score", "metric_value", "checkpoint_id",
                "training_step", "n", "ci_lower", "ci_upper", "rank", "is_tied"} <= set(row)


def test_heatmap_keys(client, data):
    body = get(client, "/api/heatmap")
    assert {"models", "datasets", "matrix", "coverage", "categories"} <= set(body)
    assert all({"model_id", "display_name", "model_type", "owner"} <= set(m) for m in body["models"])
    for mid, row in body["matrix"].items():
        assert set(row) == set(body["datasets"])
        assert all({"score", "status", "eval_run_id", "checkpoint_id", "training_step", "n", "ci_lower", "ci_upper",
                    "interval_method"} <= set(c) for c in row.values())
        assert {"evaluated", "total", "missing"} <= set(body["coverage"][mid])


def test_suites(client, data, db):
    from tests.conftest import q

    assert get(client, "/api/suites") == {"suites": []}
    q(db, "insert into suites (suite_id, display_name, dataset_names) values ('s', 'S', '{mmlu,gsm8k,new_one}') "
          "returning suite_id")
    suites = get(client, "/api/suites")["suites"]
    assert {"suite_id", "display_name", "description", "dataset_names", "created_at"} <= set(suites[0])
    hm = get(client, "/api/suites/s/heatmap")
    assert hm["datasets"] == ["mmlu", "gsm8k", "new_one"]          # the suite's order, unevaluated kept
    assert hm["matrix"]["alpha"]["new_one"]["status"] == "missing"
    assert hm["coverage"]["alpha"]["missing"] == ["new_one"]
    assert all(list(row) == hm["datasets"] for row in hm["matrix"].values())  # cells in the datasets' order


def test_compare_shapes(client, data):
    body = get(client, "/api/compare?models=alpha,beta&dataset=gsm8k")
    assert body["dataset"] == "gsm8k"
    assert [m["model_id"] for m in body["models"]] == ["alpha", "beta"]
    for m in body["models"]:
        assert {"model_id", "display_name", "model_type", "data_points"} <= set(m)
        assert all({"checkpoint_id", "training_step", "metric_value"} <= set(p) for p in m["data_points"])
    prof = get(client, "/api/compare?models=alpha,beta")
    assert [p["model_id"] for p in prof["profiles"]] == ["alpha", "beta"]


def test_diff_shape(client, data):
    body = get(client, "/api/diff?checkpoint_a=alpha__step-1000&checkpoint_b=alpha__step-2000")
    assert set(body["checkpoint_a"]) >= {"checkpoint_id", "model_id", "training_step"}
    assert all({"dataset_name", "score_a", "score_b", "delta", "significance"} <= set(d) for d in body["datasets"])
    assert set(body["summary"]) == {"total", "improved", "regressed", "unchanged", "missing", "not_testable"}


def test_eval_run_endpoints(client, data, ingest_headers):
    from tests.plugins.read_data import post_examples

    run = data["a2_gsm"]
    post_examples(client, ingest_headers, run, [True, False, True, True], topic=lambda i: "t" + str(i % 2))
    body = get(client, f"/api/eval-runs/{run}")
    assert body["eval_run"]["eval_run_id"] == run and body["eval_run"]["n_examples"] == 4
    ex = get(client, f"/api/eval-runs/{run}/examples")
    assert {"eval_run_id", "total", "correct_count", "accuracy", "examples"} <= set(ex)
    assert all(EXAMPLE_KEYS <= set(e) for e in ex["examples"])
    sl = get(client, f"/api/eval-runs/{run}/slices")
    assert {"eval_run_id", "by_topic", "by_difficulty", "error_concentration"} <= set(sl)
    assert set(sl["by_topic"]["t0"]) >= {"total", "correct", "accuracy"}


NOT_FOUND = [
    "/api/models/nope", "/api/models/nope/scores", "/api/models/nope/diagnosis", "/api/checkpoints/nope",
    "/api/datasets/nope/leaderboard", "/api/suites/nope/heatmap", "/api/heatmap?suite=nope",
    "/api/eval-runs/nope", "/api/eval-runs/nope/examples", "/api/eval-runs/nope/slices",
    "/api/diff?checkpoint_a=nope&checkpoint_b=alpha__step-1000",
    "/api/diff?checkpoint_a=alpha__step-1000&checkpoint_b=nope",
    "/api/compare?models=alpha,nope&dataset=gsm8k", "/api/compare?models=alpha&dataset=nope",
    "/api/compare?models=nope",
]


@pytest.mark.parametrize("url", NOT_FOUND)
def test_unknown_ids_404(client, data, url):
    body = get(client, url, 404)
    assert body["ok"] is False and body["error"]["status"] == 404 and body["error"]["code"] == "not_found"


BAD = [
    "/api/models?model_type=foo", "/api/models?owner=", "/api/heatmap?score=worst", "/api/heatmap?score=step",
    "/api/heatmap?step=-1", "/api/heatmap?score=best&step=5", "/api/heatmap?step=abc", "/api/heatmap?model_type=x",
    "/api/heatmap?step=99999999999999999999999", "/api/datasets/gsm8k/leaderboard?alpha=2",
    "/api/datasets/gsm8k/leaderboard?score=step", "/api/models/alpha/scores?metrics=some",
    "/api/models/alpha/scores?min_step=-3", "/api/models/alpha/diagnosis?window=1",
    "/api/models/alpha/diagnosis?alpha=0", "/api/models/alpha/diagnosis?paired=maybe",
    "/api/eval-runs/x/examples?limit=201", "/api/eval-runs/x/examples?limit=0", "/api/eval-runs/x/examples?offset=-1",
    "/api/eval-runs/x/examples?correct=maybe", "/api/eval-runs/x/slices?alpha=1", "/api/diff",
    "/api/diff?checkpoint_a=alpha__step-1000", "/api/diff?checkpoint_a=a&checkpoint_b=b&flips_limit=-1",
    "/api/compare", "/api/compare?models=,,,", "/api/compare?models=" + ",".join(f"m{i}" for i in range(21)),
    "/api/compare?models=alpha&dataset=gsm8k&score=best", "/api/models/" + "x" * 300,
]


@pytest.mark.parametrize("url", BAD)
def test_bad_query_values_422(client, data, url):
    body = get(client, url, 422)
    assert body["ok"] is False and body["error"]["status"] == 422


EMPTY = {
    "/api/models": {"models": []},
    "/api/datasets": {"datasets": [], "details": []},
    "/api/suites": {"suites": []},
}


@pytest.mark.parametrize("url,expected", list(EMPTY.items()))
def test_empty_database_lists(client, url, expected):
    assert get(client, url) == expected


def test_empty_database_heatmap_and_filters(client):
    hm = get(client, "/api/heatmap")
    assert (hm["models"], hm["datasets"], hm["matrix"], hm["coverage"], hm["categories"]) == ([], [], {}, {}, {})
    f = get(client, "/api/filters")
    assert (f["owners"], f["model_types"], f["datasets"]) == ([], [], [])
    assert get(client, "/api/heatmap?score=best")["matrix"] == {}
    assert get(client, "/api/heatmap?step=1000")["matrix"] == {}


def test_model_without_results_is_empty_but_valid(client, db):
    from tests.conftest import q

    q(db, "insert into models (model_id, display_name) values ('bare', 'Bare') returning model_id")
    assert get(client, "/api/models/bare")["checkpoints"] == []
    assert get(client, "/api/models/bare/scores")["scores"] == []
    d = get(client, "/api/models/bare/diagnosis")
    assert d["scores"] == {} and d["best_overall_step"] is None and d["best_per_dataset"] == {}
    q(db, "insert into benchmark_metadata (dataset_name) values ('quiet') returning dataset_name")
    assert get(client, "/api/datasets/quiet/leaderboard")["leaderboard"] == []
    assert get(client, "/api/compare?models=bare&dataset=quiet")["models"][0]["data_points"] == []


ODD = ["/api/models/%E2%9C%93", "/api/checkpoints/a%25b", "/api/eval-runs/..%2F..", "/api/datasets/%20/leaderboard",
       "/api/compare?models=%00", "/api/eval-runs/x/examples?q=%25_%5C", "/api/heatmap?category=%27;drop",
       "/api/models?owner=%27%20or%201=1--"]


@pytest.mark.parametrize("url", ODD)
def test_odd_values_never_500(client, data, url):
    r = client.get(url)
    assert r.status_code in (200, 404, 422), (url, r.status_code, r.text[:300])


READ_PATHS = ["/api/models", "/api/models/{model_id}", "/api/models/{model_id}/scores",
              "/api/models/{model_id}/diagnosis", "/api/checkpoints/{checkpoint_id}", "/api/datasets",
              "/api/datasets/{dataset_name}/leaderboard", "/api/heatmap", "/api/compare", "/api/diff",
              "/api/filters", "/api/suites", "/api/suites/{suite_id}/heatmap", "/api/eval-runs/{eval_run_id}",
              "/api/eval-runs/{eval_run_id}/examples", "/api/eval-runs/{eval_run_id}/slices"]


def test_openapi_documents_every_read_endpoint(client):
    spec = get(client, "/api/openapi.json")
    for path in READ_PATHS:
        op = spec["paths"][path]["get"]
        assert op.get("summary") and op.get("description"), path
    params = {p["name"]: p for p in spec["paths"]["/api/heatmap"]["get"]["parameters"]}
    assert params["score"]["schema"]["anyOf"][0]["enum"] == ["latest", "best", "step"]


def test_model_scores_json_equals_the_dict_query(client, data, db):
    import json
    from datetime import datetime

    import psycopg
    from psycopg.rows import dict_row

    from ingest_api.core import jsonout
    from ingest_api.read import catalog

    def norm(body):  # PostgreSQL drops trailing zeros of fractional seconds: compare instants
        for s in body["scores"]:
            s["ingested_at"] = datetime.fromisoformat(s["ingested_at"])
        return body

    from ingest_api.core.db import flush_facts

    with psycopg.connect(db, row_factory=dict_row) as c:
        flush_facts(c)  # a reader outside the API drains the queued read-side facts itself
        for metrics in ("primary", "all"):
            as_json = norm(json.loads(catalog.model_scores_json(c, "alpha", metrics=metrics)))
            as_dicts = norm(json.loads(jsonout.dumps(catalog.model_scores(c, "alpha", metrics=metrics))))
            assert as_json == as_dicts and as_json["count"] == len(as_json["scores"]) > 0
        assert catalog.model_scores_json(c, "nope") is None


def test_model_scores_columns_shape_holds_the_same_values(client, data):
    rows = get(client, "/api/models/alpha/scores?metrics=all")
    cols = get(client, "/api/models/alpha/scores?metrics=all&shape=columns")
    assert cols["count"] == rows["count"] and "scores" not in cols
    rebuilt = [dict(zip(cols["columns"], r)) for r in cols["rows"]]
    assert [(r["checkpoint_id"], r["dataset_name"], r["metric_name"], r["metric_value"]) for r in rebuilt] == [
        (r["checkpoint_id"], r["dataset_name"], r["metric_name"], r["metric_value"]) for r in rows["scores"]]
    assert get(client, "/api/models/alpha/scores?shape=columns")["count"] == 7
    assert client.get("/api/models/alpha/scores?shape=table").status_code == 422


def test_reply_json_encoding():
    import datetime as dt
    import decimal
    import json

    import numpy as np

    from ingest_api.core import jsonout

    when = dt.datetime(2026, 11, 26, 12, 0, 0, 1234, tzinfo=dt.UTC)
    body = json.loads(jsonout.dumps({"at": when, "day": when.date(), "nan": float("nan"), "inf": float("-inf"),
                                     "np": np.float64(0.25), "i": np.int64(3), "dec": decimal.Decimal("1.50"),
                                     "text": "naïve", 7: "int key"}))
    assert body == {"at": when.isoformat(), "day": "2026-11-26", "nan": None, "inf": None, "np": 0.25, "i": 3,
                    "dec": "1.50", "text": "naïve", "7": "int key"}
