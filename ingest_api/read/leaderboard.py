"""One dataset's models ranked by a chosen score, with tie groups from a proper test."""

from __future__ import annotations

import psycopg
from psycopg import sql

from .. import stats
from ..core import sqlrows
from .catalog import dataset_exists
from .scores import SCORE_COLS, ScoreChoice, score_cell, scores_source, with_intervals


def leaderboard(conn: psycopg.Connection, dataset: str, *, score: ScoreChoice = "latest", step: int | None = None,
                model_type: str | None = None, alpha: float = stats.ALPHA) -> dict | None:
    """Models ranked by the chosen score on one dataset, with tie groups from a proper test."""
    if not dataset_exists(conn, dataset):
        return None
    q = sql.SQL("select {cols} from {src} s where s.dataset_name = %(ds)s "
                "and (%(mt)s::text is null or s.model_type = %(mt)s) "
                "order by case when s.is_higher_better then s.metric_value else -s.metric_value end desc, "
                "s.model_id").format(cols=sql.SQL(SCORE_COLS), src=scores_source(score))
    rows = sqlrows.rows(conn, q, {"ds": dataset, "mt": model_type, "step": step})
    higher = rows[0]["is_higher_better"] if rows else True
    with_intervals(rows)
    ties = stats.tie_groups(rows, alpha=alpha, higher_better=higher)
    # Not testable (issue 14): a row with no n, no examples and no standard error cannot be separated
    # from its neighbours, so neither it nor they claim is_tied true or false.
    reasons = [None] * len(rows)
    for i in range(1, len(rows)):
        why = stats.not_testable_reason(rows[i - 1], rows[i], stats.compare_scores(rows[i - 1], rows[i]))
        if why:
            reasons[i - 1] = reasons[i - 1] or why
            reasons[i] = why
    board = []
    for r, t, why in zip(rows, ties, reasons):
        cell = score_cell(r)
        cell.update(t)
        if why:
            cell.update({"is_tied": None, "tie_status": "not_testable", "not_testable": why})
        board.append(cell)
    return {"dataset_name": dataset, "score_choice": score, "step": step, "is_higher_better": higher,
            "tie_rule": f"a model ties with its group's leader unless worse at two-sided p < {alpha}",
            "leaderboard": board}
