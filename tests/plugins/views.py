"""The views' tests' data: a tiny, fully known set of rows written with SQL (the score and example views
read it), dbt-style grain checks, and the read-side facts as a reader sees them and as a rebuild has them."""

from __future__ import annotations

import psycopg

from tests.conftest import q

SEED = """
insert into models (model_id, display_name, model_type, owner) values
  ('m1', 'Model 1', 'training', 'team'), ('b1', 'Base 1', 'baseline', 'ext');
insert into checkpoints (checkpoint_id, model_id, training_step) values
  ('m1__step-100', 'm1', 100), ('m1__step-200', 'm1', 200), ('m1__step-300', 'm1', 300),
  ('b1__baseline', 'b1', null);
insert into benchmark_metadata (dataset_name, category, is_higher_better) values
  ('dsA', 'math', true), ('dsL', 'loss', false);
insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status, is_current, sample_count,
                       created_at) values
  ('r1', 'm1__step-100', 'm1', 'dsA', 'completed', true, 100, '2026-01-01'),
  ('r2', 'm1__step-200', 'm1', 'dsA', 'completed', true, 100, '2026-01-02'),
  ('r3', 'm1__step-300', 'm1', 'dsA', 'pending', true, null, '2026-01-03'),
  ('r4', 'm1__step-100', 'm1', 'dsL', 'completed', true, null, '2026-01-01'),
  ('r6', 'm1__step-200', 'm1', 'dsL', 'completed', false, null, '2026-01-01'),
  ('r5', 'm1__step-200', 'm1', 'dsL', 'completed', true, null, '2026-01-02'),
  ('r7', 'm1__step-100', 'm1', 'dsB', 'completed', true, 50, '2026-01-01'),
  ('r9', 'm1__step-200', 'm1', 'dsN', 'completed', true, 50, '2026-01-02'),
  ('r8', 'b1__baseline', 'b1', 'dsA', 'completed', true, 100, '2026-01-01');
insert into eval_results (eval_run_id, metric_name, metric_value, value_note, is_primary, is_score, n_samples,
                          ci_lower, ci_upper, stderr) values
  ('r1', 'accuracy', 0.5, null, true, true, 100, 0.4, 0.6, 0.05),
  ('r1', 'bootstrap_std', 0.02, null, false, false, 100, null, null, null),
  ('r2', 'accuracy', 0.7, null, true, true, 100, 0.6, 0.78, 0.046),
  ('r4', 'loss', 2.0, null, true, true, null, null, null, null),
  ('r6', 'loss', 9.9, null, true, true, null, null, null, null),
  ('r5', 'loss', 1.5, null, true, true, null, null, null, null),
  ('r7', 'bootstrap_std', 0.03, null, true, false, 50, null, null, null),
  ('r9', 'accuracy', null, 'nan', true, true, 50, null, null, null),
  ('r8', 'accuracy', 0.6, null, true, true, 100, 0.5, 0.69, 0.049);
"""


def seed(url: str, extra: str = "") -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(SEED + extra)


def assert_unique(rows: list[dict], keys: tuple[str, ...]) -> None:
    seen = [tuple(r[k] for k in keys) for r in rows]
    assert len(seen) == len(set(seen)), f"duplicate grain {keys}"


def assert_not_null(rows: list[dict], cols: tuple[str, ...]) -> None:
    for r in rows:
        for c in cols:
            assert r[c] is not None, f"{c} is null in {r}"


def facts(url):
    """The facts as a reader sees them: after draining what the writes queued (sql/functions/40_facts.sql)."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("select eval360_flush_facts()")
    return (q(url, "select * from score_facts order by eval_run_id"),
            q(url, "select * from model_dataset_facts order by model_id, dataset_name"))


def rebuilt(url):
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("select eval360_rebuild_read_facts()")
    return facts(url)


# r1 (m1 step 100, dsA) and r2 (m1 step 200, dsA) share examples 0..5; r8 (baseline, dsA) has 0..3.
EXAMPLES = """
insert into example_results (eval_run_id, example_idx, is_correct, score, topic, difficulty, subtask) values
  ('r1', 0, true,  1, 'alg', 'easy', null), ('r1', 1, false, 0, 'alg', 'hard', null),
  ('r1', 2, true,  1, 'geo', 'easy', null), ('r1', 3, false, 0, 'geo', 'hard', null),
  ('r1', 4, false, 0, null,  'hard', 'x'),  ('r1', 5, true,  1, 'geo', null,   'x'),
  ('r2', 0, true,  1, 'alg', 'easy', null), ('r2', 1, true,  1, 'alg', 'hard', null),
  ('r2', 2, false, 0, 'geo', 'easy', null), ('r2', 3, true,  1, 'geo', 'hard', null),
  ('r2', 4, true,  1, null,  'hard', 'x'),  ('r2', 5, true,  1, 'geo', null,   'x'),
  ('r8', 0, true,  1, 'alg', 'easy', null), ('r8', 1, false, 0, 'alg', 'hard', null),
  ('r8', 2, true,  1, 'geo', 'easy', null), ('r8', 3, true,  1, 'geo', 'hard', null);
"""
