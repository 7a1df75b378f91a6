"""dbt-style tests of the score views: tiny fixture rows in, exact rows out, grain and not-null invariants,
and the trigger-kept fact tables (score_facts, model_dataset_facts) equal to a rebuild from the base tables."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import q
from tests.plugins.views import assert_not_null, assert_unique, facts, rebuilt, seed


def test_current_scores_one_row_per_current_run(db):
    seed(db)
    rows = q(db, "select * from v_current_scores order by eval_run_id")
    assert [r["eval_run_id"] for r in rows] == ["r1", "r2", "r3", "r4", "r5", "r7", "r8", "r9"]  # not r6
    assert_unique(rows, ("checkpoint_id", "dataset_name"))
    assert_not_null(rows, ("eval_run_id", "model_id", "model_type", "checkpoint_id", "dataset_name", "status",
                           "is_score", "is_higher_better", "is_scored"))
    by = {r["eval_run_id"]: r for r in rows}
    assert (by["r2"]["training_step"], by["r2"]["metric_value"], by["r2"]["n"]) == (200, 0.7, 100)
    assert by["r3"]["metric_name"] is None and by["r3"]["is_scored"] is False
    assert by["r7"]["is_score"] is False and by["r7"]["is_scored"] is False   # spread figure as primary
    assert by["r9"]["value_note"] == "nan" and by["r9"]["is_scored"] is False
    assert by["r5"]["is_higher_better"] is False and by["r8"]["model_type"] == "baseline"
    assert [r["eval_run_id"] for r in rows if r["is_scored"]] == ["r1", "r2", "r4", "r5", "r8"]


def test_latest_scores(db):
    seed(db)
    rows = q(db, "select model_id, dataset_name, eval_run_id, training_step, metric_value, n_checkpoints_scored, "
                 "score_choice from v_latest_scores order by model_id, dataset_name")
    assert rows == [
        {"model_id": "b1", "dataset_name": "dsA", "eval_run_id": "r8", "training_step": None, "metric_value": 0.6,
         "n_checkpoints_scored": 1, "score_choice": "latest"},
        {"model_id": "m1", "dataset_name": "dsA", "eval_run_id": "r2", "training_step": 200, "metric_value": 0.7,
         "n_checkpoints_scored": 2, "score_choice": "latest"},
        {"model_id": "m1", "dataset_name": "dsL", "eval_run_id": "r5", "training_step": 200, "metric_value": 1.5,
         "n_checkpoints_scored": 2, "score_choice": "latest"},
    ]


def test_best_scores_respect_direction(db):
    seed(db, """insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status, created_at)
                values ('r10', 'm1__step-300', 'm1', 'dsL', 'completed', '2026-01-03');
                insert into eval_results (eval_run_id, metric_name, metric_value, is_primary)
                values ('r10', 'loss', 1.8, true);""")
    rows = q(db, "select model_id, dataset_name, eval_run_id, metric_value, n_checkpoints_scored "
                 "from v_best_scores order by model_id, dataset_name")
    assert rows == [
        {"model_id": "b1", "dataset_name": "dsA", "eval_run_id": "r8", "metric_value": 0.6, "n_checkpoints_scored": 1},
        {"model_id": "m1", "dataset_name": "dsA", "eval_run_id": "r2", "metric_value": 0.7, "n_checkpoints_scored": 2},
        # lower is better: the minimum (1.5 at step 200), not the latest (1.8) or the maximum (2.0)
        {"model_id": "m1", "dataset_name": "dsL", "eval_run_id": "r5", "metric_value": 1.5, "n_checkpoints_scored": 3},
    ]
    latest = q(db, "select eval_run_id from v_latest_scores where model_id = 'm1' and dataset_name = 'dsL'")
    assert latest == [{"eval_run_id": "r10"}]


def test_heatmap_cells_statuses(db):
    seed(db)
    rows = q(db, "select model_id, dataset_name, status, newest_eval_run_id, score_eval_run_id, metric_value, "
                 "model_latest_step from v_heatmap_cells order by model_id, dataset_name")
    assert_unique(rows, ("model_id", "dataset_name"))
    assert_not_null(rows, ("model_id", "dataset_name", "status", "newest_eval_run_id"))
    got = {(r["model_id"], r["dataset_name"]): (r["status"], r["newest_eval_run_id"], r["score_eval_run_id"],
                                                r["metric_value"]) for r in rows}
    assert got == {
        ("b1", "dsA"): ("completed", "r8", "r8", 0.6),     # baselines are never stale
        ("m1", "dsA"): ("pending", "r3", "r2", 0.7),       # newest run pending; score from step 200
        ("m1", "dsB"): ("stale", "r7", None, None),        # only a spread figure: no score
        ("m1", "dsL"): ("stale", "r5", "r5", 1.5),         # step 200 < the model's latest step 300
        ("m1", "dsN"): ("stale", "r9", None, None),        # nan: evaluated, no value
    }
    assert {r["model_latest_step"] for r in rows if r["model_id"] == "m1"} == {300}


def test_score_choices_best_and_step(db):
    """v_score_choices: best keeps the cell's status (from the newest run) with the best run's score;
    step is each training checkpoint at its own step, and the baseline at every step (at_step null)."""
    seed(db)
    rows = q(db, "select score_choice, at_step, model_id, dataset_name, status, eval_run_id, metric_value, "
                 "is_scored from v_score_choices order by 1, 2 nulls first, 3, 4")
    assert_unique(rows, ("score_choice", "at_step", "model_id", "dataset_name"))
    assert_not_null(rows, ("score_choice", "model_id", "dataset_name", "status", "eval_run_id", "is_scored"))
    best = {(r["model_id"], r["dataset_name"]): (r["status"], r["eval_run_id"], r["metric_value"])
            for r in rows if r["score_choice"] == "best"}
    assert best == {
        ("b1", "dsA"): ("completed", "r8", 0.6),
        ("m1", "dsA"): ("pending", "r2", 0.7),   # the best run (step 200), the cell's status (step 300 pending)
        ("m1", "dsB"): ("stale", "r7", None),    # no score: the newest run, no value
        ("m1", "dsL"): ("stale", "r5", 1.5),     # lower is better: the minimum
        ("m1", "dsN"): ("stale", "r9", None),
    }
    step = {(r["at_step"], r["model_id"], r["dataset_name"]): (r["status"], r["eval_run_id"], r["metric_value"])
            for r in rows if r["score_choice"] == "step"}
    assert step == {
        (None, "b1", "dsA"): ("completed", "r8", 0.6),  # a baseline takes part at every step
        (100, "m1", "dsA"): ("completed", "r1", 0.5), (200, "m1", "dsA"): ("completed", "r2", 0.7),
        (300, "m1", "dsA"): ("pending", "r3", None),   # any status; a score only when scored
        (100, "m1", "dsL"): ("completed", "r4", 2.0), (200, "m1", "dsL"): ("completed", "r5", 1.5),
        (100, "m1", "dsB"): ("completed", "r7", None), (200, "m1", "dsN"): ("completed", "r9", None),
    }


@pytest.mark.parametrize("status", ["failed", "invalidated", "running"])
def test_heatmap_cell_takes_the_newest_runs_status(db, status):
    seed(db, f"update eval_runs set status = '{status}' where eval_run_id = 'r5';")
    row = q(db, "select status, score_eval_run_id from v_heatmap_cells where model_id = 'm1' and dataset_name = 'dsL'")
    assert row == [{"status": status, "score_eval_run_id": "r4"}]  # the score falls back to step 100


def test_results_view_keeps_every_metric_of_current_runs(db):
    seed(db)
    rows = q(db, "select checkpoint_id, dataset_name, metric_name, is_primary, is_score, training_step "
                 "from v_results order by checkpoint_id, dataset_name, metric_name")
    assert_unique(rows, ("checkpoint_id", "dataset_name", "metric_name"))
    assert len(rows) == 8  # 9 result rows, minus r6 (superseded)
    assert {"checkpoint_id": "m1__step-100", "dataset_name": "dsA", "metric_name": "bootstrap_std",
            "is_primary": False, "is_score": False, "training_step": 100} in rows


def test_facts_follow_every_kind_of_change(db):
    seed(db)
    with psycopg.connect(db, autocommit=True) as c:
        # a new run supersedes the pending one
        c.execute("update eval_runs set is_current = false where eval_run_id = 'r3'")
        c.execute("insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status) "
                  "values ('r11', 'm1__step-300', 'm1', 'dsA', 'completed')")
        c.execute("insert into eval_results (eval_run_id, metric_name, metric_value, is_primary) "
                  "values ('r11', 'accuracy', 0.65, true)")
    cell = q(db, "select status, score_eval_run_id from v_heatmap_cells where model_id='m1' and dataset_name='dsA'")
    assert cell == [{"status": "completed", "score_eval_run_id": "r11"}]
    assert q(db, "select eval_run_id from v_best_scores where model_id='m1' and dataset_name='dsA'") == [
        {"eval_run_id": "r2"}]
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("update eval_results set metric_value = 0.9 where eval_run_id = 'r11' and is_primary")
        c.execute("update benchmark_metadata set is_higher_better = false where dataset_name = 'dsA'")
    assert q(db, "select eval_run_id from v_best_scores where model_id='m1' and dataset_name='dsA'") == [
        {"eval_run_id": "r1"}]  # now the minimum
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("update checkpoints set training_step = 50 where checkpoint_id = 'm1__step-300'")
        c.execute("update models set model_type = 'baseline' where model_id = 'm1'")
        c.execute("delete from eval_results where eval_run_id = 'r5'")
        c.execute("delete from checkpoints where checkpoint_id = 'm1__step-100'")
    live = facts(db)
    assert q(db, "select eval_run_id, training_step, model_type from score_facts where eval_run_id = 'r11'") == [
        {"eval_run_id": "r11", "training_step": 50, "model_type": "baseline"}]
    assert q(db, "select metric_value from score_facts where eval_run_id = 'r5'") == [{"metric_value": None}]
    assert not q(db, "select 1 from score_facts where checkpoint_id = 'm1__step-100'")
    assert live == rebuilt(db)


def test_facts_equal_a_rebuild_after_ingest_through_the_api(client, db, ingest_headers):
    from tests.plugins.read_data import build_small, post, score

    build_small(client, ingest_headers)
    # re-post with a new run id (supersedes), the same run id (updates), and a new checkpoint
    post(client, ingest_headers, model_id="alpha", training_step=2000, dataset_name="gsm8k", metrics=score(0.61),
         sample_count=100, eval_run_id="rerun-a2")
    post(client, ingest_headers, model_id="alpha", training_step=2000, dataset_name="gsm8k", metrics=score(0.62),
         sample_count=100, eval_run_id="rerun-a2")
    post(client, ingest_headers, model_id="alpha", training_step=4000, dataset_name="mmlu", metrics=score(0.5),
         sample_count=1000)
    live = facts(db)
    assert q(db, "select metric_value from score_facts where eval_run_id = 'rerun-a2'") == [{"metric_value": 0.62}]
    assert live == rebuilt(db)


def test_concurrent_checkpoints_of_one_model_keep_facts_right(db):
    """Two writers posting different checkpoints of the same model × dataset at once: no key
    collision in model_dataset_facts, and the facts end equal to a rebuild."""
    import threading

    seed(db)
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def writer(offset: int) -> None:
        try:
            with psycopg.connect(db, autocommit=True) as c:
                for i in range(15):
                    step = 1000 + 10 * i + offset
                    barrier.wait(timeout=30)
                    with c.transaction():
                        c.execute("insert into checkpoints (checkpoint_id, model_id, training_step) "
                                  "values (%s, 'm1', %s)", (f"m1__step-{step}", step))
                        c.execute("insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name) "
                                  "values (%s, %s, 'm1', 'dsA')", (f"c{step}", f"m1__step-{step}"))
                        c.execute("insert into eval_results (eval_run_id, metric_name, metric_value, is_primary) "
                                  "values (%s, 'accuracy', %s, true)", (f"c{step}", 0.5 + i / 100))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    live = facts(db)
    latest = q(db, "select eval_run_id from v_latest_scores where model_id = 'm1' and dataset_name = 'dsA'")
    assert latest == [{"eval_run_id": "c1142"}]
    assert live == rebuilt(db)
