"""Models × datasets: per cell the chosen score with its interval, the cell's status and coverage."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from .. import stats
from ..core import sqlrows
from .catalog import get_suite
from .scores import ScoreChoice

# ------------------------------------------------------------------ heatmap


def _heatmap_datasets_sql(suite: bool) -> tuple[str, str]:
    """The heatmap's datasets as SQL: (the list: dataset_name, category in display order; a filter on
    a dataset_name column keeping those datasets). Parameters: %(suite)s (with suite), %(cat)s."""
    if suite:
        listing = """select d.name as dataset_name, coalesce(v.category, 'uncategorized') as category
                     from unnest(%(suite)s::text[]) with ordinality d(name, ord)
                     left join v_datasets v on v.dataset_name = d.name
                     where %(cat)s::text is null or coalesce(v.category, 'uncategorized') = %(cat)s
                     order by d.ord"""
    else:
        listing = """select dataset_name, category from v_datasets
                     where n_models > 0 and (%(cat)s::text is null or category = %(cat)s) order by dataset_name"""
    # Every cell's dataset is in v_datasets with a model (n_models > 0): only the suite and the
    # category can leave some out.
    keep = """(%(cat)s::text is null
               or dataset_name in (select dataset_name from v_datasets where category = %(cat)s))"""
    if suite:
        keep = f"dataset_name = any(%(suite)s::text[]) and {keep}"
    return listing, keep


# The models of the heatmap (parameters %(mt)s, %(ow)s), and a filter keeping their cells.
_HEATMAP_MODELS = """select model_id, display_name, model_type, owner, is_pinned, latest_step from v_models
                     where (%(mt)s::text is null or model_type = %(mt)s) and (%(ow)s::text is null or owner = %(ow)s)
                     order by is_pinned desc, model_type desc, model_id"""
_HEATMAP_KEEP_MODELS = """model_id in (select model_id from models
                                       where (%(mt)s::text is null or model_type = %(mt)s)
                                         and (%(ow)s::text is null or owner = %(ow)s))"""


_CELL_COLS = "metric_name, metric_value, n, ci_lower, ci_upper, stderr, n_graded, score_sum, score_sumsq, n_fractional"


def _heatmap_cells_sql(score: ScoreChoice, keep_datasets: str) -> str:
    """Every cell of the heatmap under the chosen score (columns as stats.score_interval_columns wants
    them, after the keys): latest from v_heatmap_cells, best and a step from v_score_choices."""
    keep = f"{_HEATMAP_KEEP_MODELS} and {keep_datasets}"
    if score == "latest":
        return f"""select model_id, dataset_name, status, coalesce(score_eval_run_id, newest_eval_run_id) as eval_run_id,
                          score_checkpoint_id as checkpoint_id, score_step as training_step, {_CELL_COLS}
                   from v_heatmap_cells where {keep}"""
    # The choice is a literal, not a parameter: the planner keeps only its branches of the view.
    choice = {"best": "'best'", "step": "'step' and (at_step = %(step)s or at_step is null)"}[score]
    return f"""select model_id, dataset_name, status, eval_run_id, checkpoint_id, training_step, {_CELL_COLS}
               from v_score_choices where score_choice = {choice} and {keep}"""


def heatmap(conn: psycopg.Connection, *, score: ScoreChoice = "latest", step: int | None = None,
            suite_datasets: Sequence[str] | None = None, category: str | None = None,
            model_type: str | None = None, owner: str | None = None) -> dict:
    """Models × datasets: per cell the chosen score (with n, interval, checkpoint, step) and status."""
    listing, keep_datasets = _heatmap_datasets_sql(suite_datasets is not None)
    params = {"suite": list(suite_datasets) if suite_datasets is not None else None, "cat": category,
              "mt": model_type, "ow": owner, "step": step}
    # The datasets, the models and the cells in one round trip (the cells query selects both itself).
    ds_rows, models, cells = sqlrows.batch(conn, [(listing, params, "dicts"), (_HEATMAP_MODELS, params, "dicts"),
                                           (_heatmap_cells_sql(score, keep_datasets), params, "tuples")])
    datasets = [r["dataset_name"] for r in ds_rows]
    model_ids = [m["model_id"] for m in models]
    # Intervals for all cells at once, on columns (stats.score_interval_columns).
    (mids, dss, status, run, ckpt, steps, mname, value, n, lo, hi, se, ng, ssum, ssq, nfrac) = \
        zip(*cells) if cells else ((),) * 16
    n, lo, hi, _, method = stats.score_interval_columns(value, mname, n, lo, hi, se, ng, ssum, ssq, nfrac)
    found: dict[str, dict[str, dict]] = {m: {} for m in model_ids}
    for c in zip(mids, dss, value, status, run, ckpt, steps, mname, n, lo, hi, method):
        have = found.get(c[0])  # (a model stored between the statements is not in the list: left out)
        if have is not None:
            have[c[1]] = {"score": c[2], "status": c[3], "eval_run_id": c[4], "checkpoint_id": c[5],
                          "training_step": c[6], "metric_name": c[7], "n": c[8], "ci_lower": c[9],
                          "ci_upper": c[10], "interval_method": c[11]}
    matrix: dict[str, dict[str, dict]] = {}
    coverage = {}
    n_ds = len(datasets)
    for m in model_ids:
        have = found[m]
        row: dict[str, dict] = {}
        missing = []
        by_status: dict[str, int] = {}
        evaluated = 0
        for d in datasets:  # the datasets' order, each once
            cell = have.get(d)
            if cell is None:
                missing.append(d)
                cell = {"score": None, "status": "missing", "eval_run_id": None, "checkpoint_id": None,
                        "training_step": None, "metric_name": None, "n": None, "ci_lower": None, "ci_upper": None,
                        "interval_method": None}
            elif cell["score"] is not None:
                evaluated += 1
            row[d] = cell
            by_status[cell["status"]] = by_status.get(cell["status"], 0) + 1
        matrix[m] = row
        coverage[m] = {"evaluated": evaluated, "total": n_ds, "missing": missing,
                       "fraction": (evaluated / n_ds) if n_ds else None, "by_status": by_status}
    categories: dict[str, list[str]] = {}
    for r in ds_rows:
        categories.setdefault(r["category"], []).append(r["dataset_name"])
    return {"score_choice": score, "step": step, "models": models, "datasets": datasets, "matrix": matrix,
            "coverage": coverage, "categories": categories}


def suite_heatmap(conn: psycopg.Connection, suite_id: str, **kw) -> dict | None:
    """heatmap() on a suite's datasets, in the suite's order (with its suite_id); None for an unknown suite."""
    suite = get_suite(conn, suite_id)
    if suite is None:
        return None
    return {**heatmap(conn, suite_datasets=suite["dataset_names"], **kw), "suite_id": suite_id}
