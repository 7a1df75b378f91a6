"""Example analytics across training (issue 17) on data whose answers are known by construction:
item stability labels, slice trends (one slice declines while the others rise), suspect labels."""

from __future__ import annotations

import math

import psycopg
import pytest

from ingest_api.api.routes.items import DatasetItems, ModelItems, SliceTrends
from ingest_api.read import items
from ingest_api.stats import wilson_interval
from tests.conftest import q
from tests.plugins.items import HISTORIES, STEPS, insert_runs, slice_runs, suspect_db


@pytest.fixture
def item_db(db):
    runs = [(f"i{s}", "m1", s, "dsI") for s in STEPS]
    ex = [(f"i{s}", idx, bool(h[t]), None) for idx, h in HISTORIES.items() for t, s in enumerate(STEPS)]
    insert_runs(db, runs, ex)
    return db


def test_item_labels_known_by_construction(item_db, client):
    r = client.get("/api/models/m1/items", params={"dataset": "dsI"})
    assert r.status_code == 200, r.text
    body = r.json()
    ModelItems.model_validate(body)  # the reply is what the OpenAPI says
    by = {it["example_idx"]: it for it in body["items"]}
    assert body["total"] == 7 and body["n_checkpoints"] == 6
    assert {i: by[i]["label"] for i in by} == {0: "learned", 1: "forgotten", 2: "forgotten", 3: "never",
                                                 4: "always", 5: "unstable", 6: "unstable"}
    assert body["label_counts"] == {"learned": 1, "forgotten": 2, "never": 1, "always": 1, "unstable": 2}
    assert (by[0]["first_step_solved"], by[0]["last_lost_step"], by[0]["n_flips"]) == (3000, None, 1)
    assert (by[1]["first_step_solved"], by[1]["last_lost_step"], by[1]["n_flips"]) == (1000, 5000, 1)
    assert (by[2]["first_step_solved"], by[2]["last_lost_step"], by[2]["n_flips"]) == (2000, 4000, 2)
    assert (by[3]["first_step_solved"], by[3]["n_flips"], by[3]["pass_rate"]) == (None, 0, 0.0)
    assert (by[4]["pass_rate"], by[4]["n_flips"]) == (1.0, 0)
    assert (by[5]["n_flips"], by[5]["last_lost_step"], by[5]["pass_rate"]) == (5, 6000, 0.5)
    assert by[6]["n_flips"] == 3 and by[6]["solved_at_latest"] is True
    # the changes link an item to the runs where its outcome changed
    assert [(c["training_step"], c["to"], c["eval_run_id"], c["previous_eval_run_id"]) for c in by[2]["changes"]] \
        == [(2000, "right", "i2000", "i1000"), (4000, "wrong", "i4000", "i3000")]


def test_item_filters_paging_and_sort(item_db, client):
    r = client.get("/api/models/m1/items", params={"dataset": "dsI", "label": "unstable"}).json()
    assert [it["example_idx"] for it in r["items"]] == [5, 6] and r["total"] == 2
    r = client.get("/api/models/m1/items", params={"dataset": "dsI", "limit": 3, "offset": 3}).json()
    assert [it["example_idx"] for it in r["items"]] == [3, 4, 5] and r["total"] == 7
    r = client.get("/api/models/m1/items", params={"dataset": "dsI", "sort": "flips", "limit": 2}).json()
    assert [it["example_idx"] for it in r["items"]] == [5, 6]


def test_item_history_skips_checkpoints_without_the_example(db):
    # example 0 is missing at step 2000: 1 _ 0 1 is one flip down then one up (unstable), not three flips
    runs = [(f"g{s}", "m1", s, "dsG") for s in (1000, 2000, 3000, 4000)]
    ex = [("g1000", 0, True, None), ("g3000", 0, False, None), ("g4000", 0, True, None)]
    ex += [(f"g{s}", 1, True, None) for s in (1000, 2000, 3000, 4000)]
    insert_runs(db, runs, ex)
    with psycopg.connect(db) as c:
        out = items.model_items(c, "m1", "dsG")
    it = {i["example_idx"]: i for i in out["items"]}
    assert (it[0]["n_checkpoints"], it[0]["n_flips"], it[0]["label"], it[0]["last_lost_step"]) == \
        (3, 2, "unstable", 3000)
    assert it[1]["label"] == "always"


def test_slice_trends_one_slice_declines(db, client):
    runs, ex, truth = slice_runs("dsS", {"algebra": (0.2, 0.8), "geometry": (0.8, 0.2), "logic": (0.3, 0.9)})
    insert_runs(db, runs, ex)
    r = client.get("/api/models/m1/slice-trends", params={"dataset": "dsS", "dimension": "topic"})
    assert r.status_code == 200, r.text
    body = r.json()
    SliceTrends.model_validate(body)
    assert body["slices"] == ["algebra", "geometry", "logic"] and body["n_checkpoints"] == 10
    pts = {(p["training_step"], p["slice"]): p for p in body["points"]}
    for (step, topic), k in truth.items():
        p = pts[(step, topic)]
        assert (p["n"], p["correct"]) == (200, k)
        lo, hi = wilson_interval(k / 200, 200)
        assert math.isclose(p["ci_lower"], lo) and math.isclose(p["ci_upper"], hi)
    assert pts[(1000, "(all)")]["n"] == 600
    tests = {t["slice"]: t for t in body["tests"]}
    assert tests["geometry"]["verdict"] == "falls_behind" and tests["geometry"]["q_value"] < 0.05
    assert tests["geometry"]["slope_slice"] < 0 < tests["geometry"]["slope_rest"]
    assert tests["algebra"]["verdict"] == "pulls_ahead"


def test_slice_trends_no_divergence_when_slices_move_together(db, client):
    runs, ex, _ = slice_runs("dsT", {"algebra": (0.2, 0.8), "geometry": (0.21, 0.79), "logic": (0.19, 0.81)})
    insert_runs(db, runs, ex)
    body = client.get("/api/models/m1/slice-trends", params={"dataset": "dsT"}).json()
    assert {t["verdict"] for t in body["tests"]} == {"moves_with_dataset"}


def test_suspect_label(db, client):
    suspect_db(db)
    # p_min 0.5, fp 0.05: 5 strong runs must all miss it ((1 - 0.5)^5 <= 0.05)
    r = client.get("/api/datasets/dsU/items", params={"p_min": 0.5, "fp": 0.05})
    assert r.status_code == 200, r.text
    body = r.json()
    DatasetItems.model_validate(body)
    assert body["rule"]["strong_runs_needed"] == 5 and body["n_strong_runs"] == 6
    by = {it["example_idx"]: it for it in body["items"]}
    assert [i for i, it in by.items() if it["suspect_label"]] == [9]
    assert by[9]["false_positive_bound"] == 0.5 ** 6 and by[9]["models_solved"] == []
    assert by[8]["suspect_label"] is False and by[8]["models_solved"] == ["c"]
    assert by[0]["models_solved"] == ["a", "b", "c"] and by[0]["pass_rate"] == 1.0
    assert math.isclose(by[2]["pass_rate"], 6 / 9) and by[2]["n_runs"] == 9 and by[2]["n_models"] == 3
    assert body["n_never_solved"] == 1 and body["n_suspect"] == 1
    only = client.get("/api/datasets/dsU/items", params={"p_min": 0.5, "fp": 0.05, "suspect_only": True}).json()
    assert [it["example_idx"] for it in only["items"]] == [9]
    # the default rule (p_min 0.05, fp 0.01) needs 90 strong runs: six are not enough evidence
    default = client.get("/api/datasets/dsU/items").json()
    assert default["rule"]["strong_runs_needed"] == 90 and default["n_suspect"] == 0


def test_runs_needed_bound():
    for p_min, fp in ((0.05, 0.01), (0.5, 0.05), (0.1, 0.001)):
        k = items.runs_needed(p_min, fp)
        assert (1 - p_min) ** k <= fp < (1 - p_min) ** (k - 1)


def test_errors(item_db, client):
    assert client.get("/api/models/nope/items", params={"dataset": "dsI"}).status_code == 404
    assert client.get("/api/models/m1/items", params={"dataset": "nope"}).status_code == 404
    assert client.get("/api/models/nope/slice-trends", params={"dataset": "dsI"}).status_code == 404
    assert client.get("/api/datasets/nope/items").status_code == 404
    for url, params in (("/api/models/m1/items", {}),
                        ("/api/models/m1/items", {"dataset": "dsI", "label": "meh"}),
                        ("/api/models/m1/items", {"dataset": "dsI", "limit": 0}),
                        ("/api/models/m1/items", {"dataset": "dsI", "datset": "x"}),
                        ("/api/models/m1/slice-trends", {"dataset": "dsI", "dimension": "colour"}),
                        ("/api/datasets/dsI/items", {"strong_min": 0.2}),
                        ("/api/datasets/dsI/items", {"bogus": 1})):
        r = client.get(url, params=params)
        assert r.status_code == 422, (url, params, r.text)
        assert r.json()["ok"] is False
    # a dataset without example rows: empty, not an error
    body = client.get("/api/models/m1/slice-trends", params={"dataset": "dsI"}).json()
    assert body["tests"][0]["verdict"] == "insufficient_data"  # only 'unspecified': no rest to compare with


# ------------------------------------------------------------------ the views and the trigger-kept slice counts

SLICE_COLS = "eval_run_id, dimension, slice, n_examples, n_correct, n_graded, score_sum, n_fractional"


def _slices(url: str) -> list[dict]:
    return q(url, f"select {SLICE_COLS} from example_slice_stats order by 1, 2, 3")


def test_slice_stats_follow_writes_and_equal_the_view(db):
    from tests.plugins.views import EXAMPLES, seed

    seed(db, EXAMPLES)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into example_results (eval_run_id, example_idx, is_correct, score, topic) values "
                  "('r1', 9, true, 1, 'geo')")
        c.execute("delete from example_results where eval_run_id = 'r1' and example_idx = 1")
        c.execute("update example_results set is_correct = false, score = 0, topic = 'new' where eval_run_id = 'r2' "
                  "and example_idx = 5")
        c.execute("insert into example_results (eval_run_id, example_idx, score, difficulty) values "
                  "('r9', 0, 0.75, 'easy'), ('r9', 2, 0.25, 'easy')")
    live = _slices(db)
    # equal to v_example_slices (the same counts from the example rows)
    want = q(db, f"select {SLICE_COLS} from v_example_slices order by 1, 2, 3")
    assert live == want
    by = {(r["eval_run_id"], r["dimension"], r["slice"]): r for r in live}
    assert by[("r2", "topic", "new")]["n_examples"] == 1 and by[("r2", "topic", "new")]["n_correct"] == 0
    assert by[("r9", "difficulty", "easy")]["n_correct"] == 1 and by[("r9", "difficulty", "easy")]["n_fractional"] == 2
    assert ("r1", "topic", "alg") in by and by[("r1", "topic", "alg")]["n_examples"] == 1  # example 1 deleted
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select eval360_rebuild_slice_stats()")
    assert _slices(db) == live
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("delete from example_results where eval_run_id = 'r8'")
        c.execute("delete from eval_runs where eval_run_id = 'r9'")
    left = {r["eval_run_id"] for r in _slices(db)}
    assert "r8" not in left and "r9" not in left


def test_outcome_and_slice_trend_views(item_db):
    rows = q(item_db, "select eval_run_id, model_id, training_step, n_examples, present_bits::text p, "
                      "outcome_bits::text o from v_example_run_outcomes order by training_step")
    assert [r["training_step"] for r in rows] == STEPS and {r["n_examples"] for r in rows} == {7}
    assert [r["o"][0] for r in rows] == [str(v) for v in HISTORIES[0]]
    with psycopg.connect(item_db, autocommit=True) as c:  # a failed run is not part of the histories
        c.execute("update eval_runs set status = 'failed' where eval_run_id = 'i6000'")
        c.execute("select eval360_flush_facts()")
    assert len(q(item_db, "select 1 from v_example_run_outcomes")) == 5
    trend = q(item_db, "select training_step, n_examples, n_correct from v_example_slice_trends "
                       "where dimension = 'topic' order by training_step")
    assert trend[0] == {"training_step": 1000, "n_examples": 7, "n_correct": sum(h[0] for h in HISTORIES.values())}


def test_known_dataset_without_example_rows(item_db, client):
    with psycopg.connect(item_db, autocommit=True) as c:
        c.execute("insert into benchmark_metadata (dataset_name) values ('meta_only')")
        c.execute("insert into models (model_id, display_name) values ('m2', 'M2')")
    for url, params in (("/api/datasets/meta_only/items", {}), ("/api/models/m1/items", {"dataset": "meta_only"}),
                        ("/api/models/m2/items", {"dataset": "dsI"}),
                        ("/api/models/m2/slice-trends", {"dataset": "dsI"})):
        r = client.get(url, params=params)
        assert r.status_code == 200, (url, r.text)
        body = r.json()
        assert body.get("items", []) == [] and body.get("points", []) == []
