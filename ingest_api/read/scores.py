"""What every score reader shares: the score choice (latest, best, a step) as a FROM item, the interval
each score is shown with, and a score as the API shows it."""

from __future__ import annotations

from typing import Literal

from psycopg import sql

from .. import stats

ScoreChoice = Literal["latest", "best", "step"]


SCORE_COLS = ("model_id, dataset_name, model_type, display_name, owner, checkpoint_id, training_step, eval_run_id, "
              "metric_name, metric_value, n, ci_lower, ci_upper, stderr, is_higher_better, n_examples, n_graded, "
              "n_correct, score_sum, score_sumsq, n_fractional, n_checkpoints_scored, score_choice")


def scores_source(choice: ScoreChoice) -> sql.Composable:
    """The FROM item giving one score per model × dataset for a score choice (step needs %(step)s)."""
    if choice == "latest":
        return sql.SQL("v_latest_scores")
    if choice == "best":
        return sql.SQL("v_best_scores")
    # A given step: training checkpoints at that step; baselines (no step) always take part (v_score_choices
    # chooses the run; v_current_scores has its other columns).
    return sql.SQL(
        "(select s.model_id, s.dataset_name, s.model_type, s.display_name, s.owner, s.checkpoint_id, s.training_step, "
        "s.eval_run_id, s.metric_name, s.metric_value, s.n, s.ci_lower, s.ci_upper, s.stderr, s.is_higher_better, "
        "s.n_examples, s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional, "
        "1::bigint as n_checkpoints_scored, 'step'::text as score_choice "
        "from v_score_choices v join v_current_scores s on s.eval_run_id = v.eval_run_id "
        "where v.score_choice = 'step' and v.is_scored and (v.at_step = %(step)s or v.at_step is null))")


def with_intervals(rows: list[dict]) -> list[dict]:
    """Replace each row's n / interval by the best available one (stats.score_intervals)."""
    for r, iv in zip(rows, stats.score_intervals(rows)):
        r.update(iv)
    return rows


_DROP = ("n_examples", "n_graded", "n_correct", "score_sum", "score_sumsq", "n_fractional", "is_higher_better")


def score_cell(r: dict) -> dict:
    out = {k: v for k, v in r.items() if k not in _DROP}
    out["score"] = r.get("metric_value")
    if r.get("score_choice") == "best":
        out["note"] = (f"best = maximum over {r.get('n_checkpoints_scored')} checkpoints' noisy values "
                       "(optimistic; prefer latest or a fixed step to compare)")
    return out
