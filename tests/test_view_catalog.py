"""dbt-style tests of the catalogue views: v_models, v_checkpoints, v_datasets, v_suites, v_eval_runs."""

from __future__ import annotations

import psycopg

from tests.conftest import q
from tests.plugins.views import assert_not_null, assert_unique, seed


def test_models(db):
    seed(db, "insert into models (model_id, display_name) values ('empty', 'No data');")
    rows = q(db, "select model_id, model_type, n_checkpoints, latest_checkpoint_id, latest_step, "
                 "last_eval_at is not null as has_eval from v_models order by model_id")
    assert rows == [
        {"model_id": "b1", "model_type": "baseline", "n_checkpoints": 1, "latest_checkpoint_id": "b1__baseline",
         "latest_step": None, "has_eval": True},
        {"model_id": "empty", "model_type": "training", "n_checkpoints": 0, "latest_checkpoint_id": None,
         "latest_step": None, "has_eval": False},
        {"model_id": "m1", "model_type": "training", "n_checkpoints": 3, "latest_checkpoint_id": "m1__step-300",
         "latest_step": 300, "has_eval": True},
    ]
    all_rows = q(db, "select * from v_models")
    assert_unique(all_rows, ("model_id",))
    assert_not_null(all_rows, ("model_id", "display_name", "model_type", "owner", "is_pinned", "created_at",
                               "n_checkpoints"))


def test_checkpoints(db):
    seed(db)
    rows = q(db, "select checkpoint_id, training_step, n_datasets, n_completed from v_checkpoints order by 1")
    assert rows == [
        {"checkpoint_id": "b1__baseline", "training_step": None, "n_datasets": 1, "n_completed": 1},
        {"checkpoint_id": "m1__step-100", "training_step": 100, "n_datasets": 3, "n_completed": 3},
        {"checkpoint_id": "m1__step-200", "training_step": 200, "n_datasets": 3, "n_completed": 3},  # r6 not current
        {"checkpoint_id": "m1__step-300", "training_step": 300, "n_datasets": 1, "n_completed": 0},
    ]
    assert_unique(q(db, "select * from v_checkpoints"), ("checkpoint_id",))


def test_datasets(db):
    seed(db, "insert into benchmark_metadata (dataset_name, category) values ('meta_only', 'code');")
    rows = q(db, "select dataset_name, category, is_higher_better, n_models, n_scores from v_datasets order by 1")
    assert rows == [
        {"dataset_name": "dsA", "category": "math", "is_higher_better": True, "n_models": 2, "n_scores": 3},
        {"dataset_name": "dsB", "category": "uncategorized", "is_higher_better": True, "n_models": 1, "n_scores": 0},
        {"dataset_name": "dsL", "category": "loss", "is_higher_better": False, "n_models": 1, "n_scores": 2},
        {"dataset_name": "dsN", "category": "uncategorized", "is_higher_better": True, "n_models": 1, "n_scores": 0},
        {"dataset_name": "meta_only", "category": "code", "is_higher_better": True, "n_models": 0, "n_scores": 0},
    ]


def test_suites(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into suites (suite_id, display_name, dataset_names) values "
                  "('core', 'Core', '{dsA,dsL}'), ('none', 'Empty', '{}')")
    rows = q(db, "select suite_id, dataset_names, n_datasets from v_suites order by 1")
    assert rows == [{"suite_id": "core", "dataset_names": ["dsA", "dsL"], "n_datasets": 2},
                    {"suite_id": "none", "dataset_names": [], "n_datasets": 0}]


def test_eval_runs_include_superseded_runs(db):
    seed(db)
    rows = q(db, "select eval_run_id, is_current, training_step, primary_value, n_examples from v_eval_runs "
                 "where eval_run_id in ('r5', 'r6') order by 1")
    assert rows == [{"eval_run_id": "r5", "is_current": True, "training_step": 200, "primary_value": 1.5,
                     "n_examples": 0},
                    {"eval_run_id": "r6", "is_current": False, "training_step": 200, "primary_value": 9.9,
                     "n_examples": 0}]
    all_rows = q(db, "select * from v_eval_runs")
    assert len(all_rows) == 9
    assert_unique(all_rows, ("eval_run_id",))
    assert_not_null(all_rows, ("eval_run_id", "checkpoint_id", "model_id", "dataset_name", "status", "n_examples"))
