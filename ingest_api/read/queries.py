"""Named read queries over the SQL views (sql/views): the API and the dashboard both call these.

Each function takes a psycopg connection (any row factory) and plain arguments, and returns
plain dicts and lists (JSON-ready apart from datetimes). The analytics live in the views;
this module picks rows, attaches statistics from `stats`, and shapes replies (formats.md §6).
Functions return None where the thing asked about does not exist (the API answers 404).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from .. import stats
from ..core.errors import ApiError

ScoreChoice = Literal["latest", "best", "step"]
ALPHA = 0.05

MODEL_KEYS = ("model_id", "display_name", "model_type", "owner", "param_count", "is_pinned", "created_at",
              "updated_at", "n_checkpoints", "latest_checkpoint_id", "latest_step", "last_eval_at")
CHECKPOINT_KEYS = ("checkpoint_id", "model_id", "training_step", "checkpoint_path", "metadata", "training_run",
                   "recipe_tags", "created_at", "updated_at", "n_datasets", "n_completed", "last_eval_at")
RESULT_COLS = ("checkpoint_id, dataset_name, metric_name, metric_value, is_primary, eval_config, eval_run_id, "
               "sample_count, ci_lower, ci_upper, stderr, ingested_at, training_step, status, is_score, value_note")
SCORE_COLS = ("model_id, dataset_name, model_type, display_name, owner, checkpoint_id, training_step, eval_run_id, "
              "metric_name, metric_value, n, ci_lower, ci_upper, stderr, is_higher_better, n_examples, n_graded, "
              "n_correct, score_sum, score_sumsq, n_fractional, n_checkpoints_scored, score_choice")


# ------------------------------------------------------------------ helpers


def _rows(conn: psycopg.Connection, query: Any, params: Any = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _records(conn: psycopg.Connection, query: Any, params: Any = None) -> list[dict]:
    """_rows fetched in binary (faster to decode): for hundreds of rows of numbers and text."""
    with conn.cursor(row_factory=dict_row, binary=True) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _tuples(conn: psycopg.Connection, query: Any, params: Any = None) -> list[tuple]:
    """Rows as tuples, fetched in binary: for hundreds of rows read by position (no dict per row)."""
    with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _batch(conn: psycopg.Connection, statements: Sequence[tuple[Any, Any, str]]) -> list[list]:
    """Independent statements sent together and answered in one round trip (pipeline mode).

    Each statement is (query, params, "dicts" | "tuples"), fetched in binary; returns each one's rows,
    in order. In a transaction that has not begun yet, its BEGIN goes in the same round trip.
    """
    curs = []
    with conn.pipeline():
        for query, params, shape in statements:
            cur = conn.cursor(row_factory=dict_row if shape == "dicts" else tuple_row, binary=True)
            cur.execute(query, params)
            curs.append(cur)
    out = [cur.fetchall() for cur in curs]
    for cur in curs:
        cur.close()
    return out


def _one(conn: psycopg.Connection, query: Any, params: Any = None) -> dict | None:
    rows = _rows(conn, query, params)
    return rows[0] if rows else None


def _json_default(o: Any) -> Any:
    # orjson writes str, int, float (non-finite as null), bool, None, dict, list, tuple, datetimes
    # (ISO 8601, as isoformat()), UUIDs and numpy scalars / arrays itself; anything else (Decimal) as text.
    return str(o)


_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON for replies (datetimes as ISO 8601, NaN and infinities as null)."""
    return orjson.dumps(obj, default=_json_default, option=_ORJSON_OPTS)


def scores_source(choice: ScoreChoice) -> sql.Composable:
    """The FROM item giving one score per model × dataset for a score choice (step needs %(step)s)."""
    if choice == "latest":
        return sql.SQL("v_latest_scores")
    if choice == "best":
        return sql.SQL("v_best_scores")
    # A given step: training checkpoints at that step; baselines (no step) always take part.
    return sql.SQL(
        "(select distinct on (model_id, dataset_name) model_id, dataset_name, model_type, display_name, owner, "
        "checkpoint_id, training_step, eval_run_id, metric_name, metric_value, n, ci_lower, ci_upper, stderr, "
        "is_higher_better, n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional, "
        "1::bigint as n_checkpoints_scored, 'step'::text as score_choice from v_current_scores "
        "where is_scored and (training_step = %(step)s or model_type = 'baseline') "
        "order by model_id, dataset_name, training_step desc nulls last)"
    )


def _with_intervals(rows: list[dict]) -> list[dict]:
    """Replace each row's n / interval by the best available one (stats.score_intervals)."""
    for r, iv in zip(rows, stats.score_intervals(rows)):
        r.update(iv)
    return rows


_DROP = ("n_examples", "n_graded", "n_correct", "score_sum", "score_sumsq", "n_fractional", "is_higher_better")


def _score_cell(r: dict) -> dict:
    out = {k: v for k, v in r.items() if k not in _DROP}
    out["score"] = r.get("metric_value")
    if r.get("score_choice") == "best":
        out["note"] = (f"best = maximum over {r.get('n_checkpoints_scored')} checkpoints' noisy values "
                       "(optimistic; prefer latest or a fixed step to compare)")
    return out


def resolve_checkpoint(conn: psycopg.Connection, ident: str, model_id: str | None = None) -> str | None:
    """Canonical checkpoint id for an id or an alias a client has posted; None when unknown.

    A checkpoint id always wins over an alias. Aliases belong to a model (migration 0010): with
    model_id only that model's count; without, an alias that several models posted is ambiguous,
    ApiError(409) listing the candidates (ask again with the checkpoint id).
    """
    rows = _rows(conn, """select checkpoint_id, model_id, true as canonical from checkpoints
                           where checkpoint_id = %(i)s and (%(m)s::text is null or model_id = %(m)s)
                          union all
                          select checkpoint_id, model_id, false from checkpoint_aliases
                           where alias = %(i)s and (%(m)s::text is null or model_id = %(m)s)
                           order by 3 desc, 1""", {"i": ident, "m": model_id})
    if not rows:
        return None
    if rows[0]["canonical"] or len(rows) == 1:
        return rows[0]["checkpoint_id"]
    listed = ", ".join(f"{r['checkpoint_id']} (model {r['model_id']})" for r in rows)
    raise ApiError(409, f"checkpoint alias {ident!r} names checkpoints of {len(rows)} models: {listed}; "
                        "use the checkpoint id", field="checkpoint_id")


# ------------------------------------------------------------------ models


_MODEL_ORDER = {"name": "is_pinned desc, model_id", "newest": "created_at desc, model_id"}


def list_models(conn: psycopg.Connection, *, model_type: str | None = None, owner: str | None = None,
                order: Literal["name", "newest"] = "name", legacy_keys: bool = False) -> list[dict]:
    """Models (pinned first, then by name; or newest first) with checkpoint count, latest checkpoint
    and last eval time. legacy_keys adds the earlier dashboard's names: checkpoint_count (=
    n_checkpoints) and dataset_count (datasets with a current eval run)."""
    cols = ", ".join(f"v.{k}" for k in MODEL_KEYS)
    extra, join = "", ""
    if legacy_keys:
        extra = ", v.n_checkpoints as checkpoint_count, coalesce(d.n, 0)::int as dataset_count"
        join = ("left join (select model_id, count(*) as n from model_dataset_facts group by model_id) d "
                "on d.model_id = v.model_id")
    return _rows(conn, f"""select {cols}{extra} from v_models v {join}
                          where (%(mt)s::text is null or v.model_type = %(mt)s)
                            and (%(ow)s::text is null or v.owner = %(ow)s)
                          order by {', '.join('v.' + k for k in _MODEL_ORDER[order].split(', '))}""",
                 {"mt": model_type, "ow": owner})


def get_model(conn: psycopg.Connection, model_id: str) -> dict | None:
    """{"model", "checkpoints"} (step ascending; baselines' step-less checkpoint last), or None."""
    model = _one(conn, f"select {', '.join(MODEL_KEYS)} from v_models where model_id = %s", (model_id,))
    if model is None:
        return None
    cps = _rows(conn, f"""select {', '.join(CHECKPOINT_KEYS)} from v_checkpoints where model_id = %s
                         order by training_step asc nulls last, checkpoint_id""", (model_id,))
    return {"model": model, "checkpoints": cps}


def model_exists(conn: psycopg.Connection, model_id: str) -> bool:
    return _one(conn, "select 1 as x from models where model_id = %s", (model_id,)) is not None


def _model_scores_query(metrics: str) -> str:
    # Primary metrics (the compact default) come from one table (v_primary_results over score_facts).
    src = "v_results" if metrics == "all" else "v_primary_results"
    order = "training_step nulls last, checkpoint_id, dataset_name" + (", metric_order" if metrics == "all" else "")
    return f"""select {RESULT_COLS} from {src}
               where model_id = %(m)s
                 and (%(ds)s::text is null or dataset_name = %(ds)s)
                 and (%(lo)s::bigint is null or training_step >= %(lo)s)
                 and (%(hi)s::bigint is null or training_step <= %(hi)s)
               order by {order}"""


def model_scores(conn: psycopg.Connection, model_id: str, *, metrics: Literal["primary", "all"] = "primary",
                 dataset: str | None = None, min_step: int | None = None,
                 max_step: int | None = None) -> dict | None:
    """Current results of every checkpoint of a model (primary metric only unless metrics='all')."""
    if not model_exists(conn, model_id):
        return None
    rows = _rows(conn, _model_scores_query(metrics),
                 {"m": model_id, "ds": dataset, "lo": min_step, "hi": max_step})
    return {"model_id": model_id, "metrics": metrics, "shape": "rows", "count": len(rows), "scores": rows}


def model_scores_json(conn: psycopg.Connection, model_id: str, *, metrics: Literal["primary", "all"] = "primary",
                      dataset: str | None = None, min_step: int | None = None, max_step: int | None = None,
                      shape: Literal["rows", "columns"] = "rows") -> bytes | None:
    """model_scores() as JSON text built by PostgreSQL (thousands of rows: no Python objects per row).

    shape='columns' is the compact form: {"columns": [name…], "rows": [[value…]…]} instead of
    "scores" (the same values, each key written once: about 40% of the size).
    """
    if not model_exists(conn, model_id):
        return None
    params = {"m": model_id, "ds": dataset, "lo": min_step, "hi": max_step}
    head = b'{"model_id":' + dumps(model_id) + b',"metrics":' + dumps(metrics) + b',"shape":' + dumps(shape)
    if shape == "columns":
        cols = [c.strip() for c in RESULT_COLS.split(",")]
        row = _one(conn, f"select count(*) as n, coalesce(json_agg(json_build_array({RESULT_COLS})), '[]')::text as j "
                         f"from ({_model_scores_query(metrics)}) t", params)
        return (head + b',"count":' + str(row["n"]).encode() + b',"columns":' + dumps(cols)
                + b',"rows":' + row["j"].encode() + b"}")
    if metrics == "primary":
        # Each row's JSON is kept in score_facts (result_json): concatenate in the query's order.
        q = _model_scores_query(metrics).replace(f"select {RESULT_COLS} from", "select result_json from", 1)
        row = _one(conn, f"select count(*) as n, '[' || coalesce(string_agg(result_json, ','), '') || ']' as j "
                         f"from ({q}) t", params)
    else:
        row = _one(conn, f"select count(*) as n, coalesce(json_agg(t), '[]')::text as j "
                         f"from ({_model_scores_query(metrics)}) t", params)
    return head + b',"count":' + str(row["n"]).encode() + b',"scores":' + row["j"].encode() + b"}"


# ------------------------------------------------------------------ checkpoints


def get_checkpoint(conn: psycopg.Connection, checkpoint_id: str) -> dict | None:
    """{"checkpoint", "eval_results"}: every metric of the checkpoint's current runs, or None."""
    cid = resolve_checkpoint(conn, checkpoint_id)
    if cid is None:
        return None
    cp = _one(conn, f"select {', '.join(CHECKPOINT_KEYS)} from v_checkpoints where checkpoint_id = %s", (cid,))
    results = _rows(conn, f"""select {RESULT_COLS} from v_results where checkpoint_id = %s
                             order by dataset_name, metric_order""", (cid,))
    return {"checkpoint": cp, "eval_results": results}


# ------------------------------------------------------------------ datasets and leaderboard


def list_datasets(conn: psycopg.Connection) -> list[dict]:
    """Datasets with category, direction and how many models / runs they have."""
    return _rows(conn, """select dataset_name, category, subcategory, primary_metric, is_higher_better,
                                 chance_level, description, n_models, n_scores
                          from v_datasets order by dataset_name""")


def dataset_exists(conn: psycopg.Connection, name: str) -> bool:
    return _one(conn, """select 1 as x where exists (select 1 from eval_runs where dataset_name = %(d)s)
                         or exists (select 1 from benchmark_metadata where dataset_name = %(d)s)""",
                {"d": name}) is not None


def leaderboard(conn: psycopg.Connection, dataset: str, *, score: ScoreChoice = "latest", step: int | None = None,
                model_type: str | None = None, alpha: float = ALPHA) -> dict | None:
    """Models ranked by the chosen score on one dataset, with tie groups from a proper test."""
    if not dataset_exists(conn, dataset):
        return None
    q = sql.SQL("select {cols} from {src} s where s.dataset_name = %(ds)s "
                "and (%(mt)s::text is null or s.model_type = %(mt)s) "
                "order by case when s.is_higher_better then s.metric_value else -s.metric_value end desc, "
                "s.model_id").format(cols=sql.SQL(SCORE_COLS), src=scores_source(score))
    rows = _rows(conn, q, {"ds": dataset, "mt": model_type, "step": step})
    higher = rows[0]["is_higher_better"] if rows else True
    _with_intervals(rows)
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
        cell = _score_cell(r)
        cell.update(t)
        if why:
            cell.update({"is_tied": None, "tie_status": "not_testable", "not_testable": why})
        board.append(cell)
    return {"dataset_name": dataset, "score_choice": score, "step": step, "is_higher_better": higher,
            "tie_rule": f"a model ties with its group's leader unless worse at two-sided p < {alpha}",
            "leaderboard": board}


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


def _heatmap_cells_sql(score: ScoreChoice, keep_datasets: str) -> str:
    """Every cell of the heatmap (columns as stats.score_interval_columns wants them, after the keys)."""
    keep = f"{_HEATMAP_KEEP_MODELS} and {keep_datasets}"
    if score == "step":
        return f"""select distinct on (model_id, dataset_name) model_id, dataset_name, status, eval_run_id,
                          checkpoint_id, training_step, metric_name,
                          case when is_scored then metric_value end as metric_value, n, ci_lower, ci_upper,
                          stderr, n_graded, score_sum, score_sumsq, n_fractional
                   from v_current_scores
                   where {keep} and (training_step = %(step)s or model_type = 'baseline')
                   order by model_id, dataset_name, training_step desc nulls last"""
    if score == "latest":
        return f"""select model_id, dataset_name, status, coalesce(score_eval_run_id, newest_eval_run_id) as eval_run_id,
                          score_checkpoint_id as checkpoint_id, score_step as training_step, metric_name,
                          metric_value, n, ci_lower, ci_upper, stderr, n_graded, score_sum, score_sumsq, n_fractional
                   from v_heatmap_cells where {keep}"""
    # The best run's score by key, as v_current_scores has it (n from the example rows when not posted).
    return f"""select h.model_id, h.dataset_name, h.status, coalesce(s.eval_run_id, h.newest_eval_run_id) as eval_run_id,
                      s.checkpoint_id, s.training_step, s.metric_name, s.metric_value,
                      coalesce(s.n, x.n_graded::int) as n, s.ci_lower, s.ci_upper, s.stderr, x.n_graded,
                      x.score_sum, x.score_sumsq, x.n_fractional
               from (select * from v_heatmap_cells where {keep}) h
               left join score_facts s on s.eval_run_id = h.best_run_id
               left join example_run_stats x on x.eval_run_id = h.best_run_id"""


def heatmap(conn: psycopg.Connection, *, score: ScoreChoice = "latest", step: int | None = None,
            suite_datasets: Sequence[str] | None = None, category: str | None = None,
            model_type: str | None = None, owner: str | None = None) -> dict:
    """Models × datasets: per cell the chosen score (with n, interval, checkpoint, step) and status."""
    listing, keep_datasets = _heatmap_datasets_sql(suite_datasets is not None)
    params = {"suite": list(suite_datasets) if suite_datasets is not None else None, "cat": category,
              "mt": model_type, "ow": owner, "step": step}
    # The datasets, the models and the cells in one round trip (the cells query selects both itself).
    ds_rows, models, cells = _batch(conn, [(listing, params, "dicts"), (_HEATMAP_MODELS, params, "dicts"),
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


# ------------------------------------------------------------------ suites and filters


def list_suites(conn: psycopg.Connection) -> list[dict]:
    return _rows(conn, """select suite_id, display_name, description, dataset_names, created_at, updated_at,
                                 n_datasets from v_suites order by suite_id""")


def get_suite(conn: psycopg.Connection, suite_id: str) -> dict | None:
    return _one(conn, """select suite_id, display_name, description, dataset_names, created_at, updated_at,
                                n_datasets from v_suites where suite_id = %s""", (suite_id,))


def filters(conn: psycopg.Connection) -> dict:
    """Distinct values for the dashboard's dropdowns."""
    row = _one(conn, """select
        coalesce((select array_agg(distinct owner order by owner) from v_models), '{}') as owners,
        coalesce((select array_agg(distinct model_type order by model_type) from v_models), '{}') as model_types,
        coalesce((select array_agg(dataset_name order by dataset_name) from v_datasets), '{}') as datasets,
        coalesce((select array_agg(distinct category order by category) from v_datasets), '{}') as categories,
        coalesce((select array_agg(suite_id order by suite_id) from v_suites), '{}') as suites""")
    row["score_choices"] = ["latest", "best", "step"]
    return row


# ------------------------------------------------------------------ paired statistics


def _pair_stats(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Paired example counts for (run a, run b) pairs that both have example rows.

    0/1 outcomes: v_example_pair_stats (bit counts, fast). Where either side has fractional scores,
    the sums of differences come from v_example_pair_sums (reads the example rows). Each pair is
    looked up on its own (`offset 0` keeps the planner from joining the view as a whole).
    """
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    params = ([a for a, _ in pairs], [b for _, b in pairs])
    rows = _records(conn, """select v.* from unnest(%s::text[], %s::text[]) p(a, b)
                          cross join lateral (select eval_run_id_a, eval_run_id_b, n_pairs, n_wrong_to_right,
                                                     n_right_to_wrong, n_fractional
                                              from v_example_pair_stats
                                              where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0) v""",
                 params)
    out = {(r["eval_run_id_a"], r["eval_run_id_b"]): r for r in rows}
    frac = [k for k, r in out.items() if r["n_fractional"]]
    if frac:
        for r in _rows(conn, """select v.* from unnest(%s::text[], %s::text[]) p(a, b)
                                cross join lateral (select eval_run_id_a, eval_run_id_b, n_pairs, diff_sum, diff_sumsq
                                                    from v_example_pair_sums
                                                    where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0) v""",
                       ([a for a, _ in frac], [b for _, b in frac])):
            out[(r["eval_run_id_a"], r["eval_run_id_b"])].update(r)
    return out


pair_stats = _pair_stats  # public name: the alert judge reads the same paired counts as diff and diagnosis


def _flip_examples(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]],
                   limit: int) -> dict[tuple[str, str], list[dict]]:
    """The first `limit` flipped examples (by example_idx) of each (run a, run b) pair: v_example_pairs
    rows with flip <> 'same'.

    Which examples flipped is read from the runs' outcome bits (v_example_pair_stats.flip_bits), so
    only those example rows are fetched, not every example of both runs up to the limit-th flip.
    The bits mark a superset of the flips (an example with neither is_correct nor a score counts as
    wrong there, as 'same' in v_example_pairs): candidates are checked against v_example_pairs, and
    further ones taken for a pair while any drop out.
    """
    pairs = list(dict.fromkeys(pairs))
    out: dict[tuple[str, str], list[dict]] = {k: [] for k in pairs}
    bits = {(a, b): t for a, b, t in _tuples(
        conn, """select v.* from unnest(%s::text[], %s::text[]) p(a, b)
                 cross join lateral (select eval_run_id_a, eval_run_id_b, flip_bits::text
                                     from v_example_pair_stats
                                     where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0) v""",
        ([a for a, _ in pairs], [b for _, b in pairs]))}
    start = dict.fromkeys(bits, 0)  # the next bit of each pair to look at
    todo = list(bits)
    while todo:
        qa, qb, qi = [], [], []
        for k in todo:
            text, pos = bits[k], start[k]
            for _ in range(limit - len(out[k])):
                pos = text.find("1", pos)
                if pos < 0:
                    pos = len(text)
                    break
                qa.append(k[0])
                qb.append(k[1])
                qi.append(pos)
                pos += 1
            start[k] = pos
        if not qi:
            break
        for f in _records(conn, """select v.* from unnest(%s::text[], %s::text[], %s::int[]) p(a, b, i)
                                   cross join lateral (
                                     select eval_run_id_a, eval_run_id_b, example_idx, flip, score_a, score_b,
                                            input_preview, ground_truth, output_a, output_b, topic, difficulty
                                     from v_example_pairs
                                     where eval_run_id_a = p.a and eval_run_id_b = p.b and example_idx = p.i
                                       and flip <> 'same' offset 0) v""", (qa, qb, qi)):
            out[(f.pop("eval_run_id_a"), f.pop("eval_run_id_b"))].append(f)
        # Short of the limit with bits left to look at: some candidates were no flip. Take more.
        todo = [k for k in todo if len(out[k]) < limit and start[k] < len(bits[k])]
    for lst in out.values():
        lst.sort(key=lambda f: f["example_idx"])
    return {k: v for k, v in out.items() if v}


def _test_dict(t: stats.TestResult) -> dict:
    return {"p_value": t.p_value, "effect": t.effect, "effect_ci_lower": t.ci_lower, "effect_ci_upper": t.ci_upper,
            "test": t.method}


# ------------------------------------------------------------------ diagnosis


def diagnosis(conn: psycopg.Connection, model_id: str, *, window: int = 5, alpha: float = ALPHA,
              paired: bool = True) -> dict | None:
    """Per dataset: the latest score, its gap to each baseline and the best one (tested, BH-corrected
    across datasets), the trend over the last `window` checkpoints; best checkpoints."""
    # One round trip: the model; its latest scores and every baseline's (filtering on v_latest_scores'
    # key, with no array parameter, so a prepared statement keeps one plan); every scored point of
    # the model (trends and the best checkpoint overall); the best checkpoint per dataset.
    models, both, points, best_per = _batch(conn, [
        ("""select model_id, display_name, model_type, latest_checkpoint_id, latest_step
            from v_models where model_id = %(m)s""", {"m": model_id}, "dicts"),
        ("""select model_id, dataset_name, display_name, checkpoint_id, training_step, eval_run_id, metric_name,
                   metric_value, n, ci_lower, ci_upper, stderr, is_higher_better, n_graded, score_sum,
                   score_sumsq, n_fractional
            from v_latest_scores
            where model_id = %(m)s or model_id in (select b.model_id from models b where b.model_type = 'baseline')
            order by dataset_name, model_id""", {"m": model_id}, "dicts"),
        (_MODEL_POINTS, (model_id,), "tuples"),
        ("""select dataset_name, training_step, checkpoint_id, metric_value, n_checkpoints_scored
            from v_best_scores where model_id = %s order by dataset_name""", (model_id,), "dicts"),
    ])
    if not models:
        return None
    model = models[0]
    _with_intervals(both)
    own = [r for r in both if r["model_id"] == model_id]
    datasets = {r["dataset_name"] for r in own}
    base = [r for r in both if r["model_id"] != model_id and r["dataset_name"] in datasets]
    by_ds: dict[str, list[dict]] = {}
    for b in base:
        by_ds.setdefault(b["dataset_name"], []).append(b)

    best_base: dict[str, dict] = {}
    for r in own:
        cands = by_ds.get(r["dataset_name"], [])
        if cands:
            sign = 1 if r["is_higher_better"] else -1
            best_base[r["dataset_name"]] = max(cands, key=lambda b: sign * b["metric_value"])
    pair_stats = {}
    if paired:
        # Every baseline whose run has example rows, like the model's: a paired test (bit counts, cheap).
        pairs = [(b["eval_run_id"], r["eval_run_id"]) for r in own if r["n_graded"]
                 for b in by_ds.get(r["dataset_name"], []) if b["n_graded"]]
        pair_stats = _pair_stats(conn, pairs)

    # Tests: model − baseline (effect > 0 means the model scores higher), one per baseline and
    # dataset; the best baseline's test is that baseline's.
    per_base: dict[str, list[tuple[str, stats.TestResult]]] = {}
    tests_per: dict[tuple[str, str], stats.TestResult] = {}
    for r in own:
        ds = r["dataset_name"]
        for bb in by_ds.get(ds, []):
            t = stats.compare_scores(bb, r, pair_stats.get((bb["eval_run_id"], r["eval_run_id"])))
            per_base.setdefault(bb["model_id"], []).append((ds, t))
            tests_per[(bb["model_id"], ds)] = t
    best_tests: list[stats.TestResult | None] = [
        tests_per[(best_base[r["dataset_name"]]["model_id"], r["dataset_name"])]
        if r["dataset_name"] in best_base else None for r in own]
    q_best = stats.benjamini_hochberg([t.p_value if t else None for t in best_tests])
    q_per: dict[tuple[str, str], float | None] = {}
    for bm, lst in per_base.items():
        for (ds, _), qv in zip(lst, stats.benjamini_hochberg([t.p_value for _, t in lst])):
            q_per[(bm, ds)] = qv

    # Every scored point of the model, read once: the trends (the last `window` scored checkpoints
    # of each dataset) and the best checkpoint overall both come from it.
    by_cp, steps, ser_by = _group_points(points)

    scores = {}
    for r, t, qv in zip(own, best_tests, q_best):
        ds = r["dataset_name"]
        b = best_base.get(ds)
        pts = _last_points(ser_by, ds, window, higher_better=r["is_higher_better"])
        tr = stats.trend([p[0] for p in pts], [p[1] for p in pts], window=window)
        trend_d = tr.as_dict()
        if not r["is_higher_better"] and tr.label in ("up", "down", "up_slow", "down_slow"):
            trend_d["note"] = "lower is better on this dataset"
        effect = t.effect if t else None
        baselines = []
        for bb in by_ds.get(ds, []):
            bt = tests_per[(bb["model_id"], ds)]
            bq = q_per.get((bb["model_id"], ds))
            baselines.append({"model_id": bb["model_id"], "display_name": bb["display_name"],
                              "value": bb["metric_value"], "metric_name": bb["metric_name"], "n": bb["n"],
                              "ci_lower": bb["ci_lower"], "ci_upper": bb["ci_upper"],
                              "gap": r["metric_value"] - bb["metric_value"], **_test_dict(bt), "q_value": bq,
                              "significance": stats.significance_label(bq, bt.effect, alpha=alpha)})
        scores[ds] = {
            "value": r["metric_value"], "metric_name": r["metric_name"], "ci_lower": r["ci_lower"],
            "ci_upper": r["ci_upper"], "stderr": r["stderr"], "n": r["n"], "interval_method": r["interval_method"],
            "checkpoint_id": r["checkpoint_id"], "training_step": r["training_step"],
            "is_higher_better": r["is_higher_better"],
            "baseline_best": b["metric_value"] if b else None, "baseline_model": b["model_id"] if b else None,
            "gap": (r["metric_value"] - b["metric_value"]) if b else None,
            "significance": stats.significance_label(qv, effect, alpha=alpha) if t else "insufficient_data",
            **(_test_dict(t) if t else {"p_value": None, "effect": None, "effect_ci_lower": None,
                                        "effect_ci_upper": None, "test": None}),
            "q_value": qv,
            "trend": tr.label, "trend_detail": trend_d, "baselines": baselines,
        }

    overall = _best_overall(by_cp, steps)
    return {
        "model_id": model["model_id"], "display_name": model["display_name"], "model_type": model["model_type"],
        "latest_checkpoint": model["latest_checkpoint_id"], "latest_step": model["latest_step"],
        "best_overall_step": overall["training_step"] if overall else None,
        "best_overall": overall,
        "best_per_dataset": {r["dataset_name"]: r["training_step"] for r in best_per},
        "best_per_dataset_detail": {r["dataset_name"]: {"training_step": r["training_step"],
                                                        "checkpoint_id": r["checkpoint_id"],
                                                        "value": r["metric_value"],
                                                        "n_checkpoints_scored": r["n_checkpoints_scored"]}
                                    for r in best_per},
        "alpha": alpha, "correction": "benjamini_hochberg across datasets", "trend_window": window,
        "scores": scores,
    }


_MODEL_POINTS = """select checkpoint_id, training_step, array_agg(dataset_name) as datasets,
                          array_agg(case when is_higher_better then metric_value else -metric_value end) as vals
                   from v_current_scores where model_id = %s and is_scored
                   group by training_step, checkpoint_id
                   order by training_step nulls last, checkpoint_id"""


def _model_points(conn: psycopg.Connection, model_id: str) -> list[tuple]:
    """Every scored current run of a model, one row per checkpoint in step order (baselines' step-less
    checkpoint last): (checkpoint_id, training_step, [dataset…], [value, negated where lower is
    better…]). Thousands of values in a hundred rows: decoded as arrays, grouped without Python."""
    return _tuples(conn, _MODEL_POINTS, (model_id,))


def _group_points(points: list[tuple]) -> tuple[dict, dict, list]:
    """_model_points as {checkpoint: {dataset: signed value}}, {checkpoint: step} and, for the
    checkpoints with a step, [(step, {dataset: signed value})…] in step order."""
    by_cp = {cid: dict(zip(ds, vals)) for cid, _, ds, vals in points}
    steps = {cid: step for cid, step, _, _ in points}
    series = [(step, by_cp[cid]) for cid, step, _, _ in points if step is not None]
    return by_cp, steps, series


def _last_points(series: list, dataset: str, window: int, *, higher_better: bool) -> list[tuple]:
    """The last `window` (step, value) of a dataset in _group_points' series, step ascending (values
    as scored: the sign put on lower-is-better ones taken off again)."""
    out = []
    for step, vals in reversed(series):
        v = vals.get(dataset)
        if v is not None:
            out.append((step, v if higher_better else -v))
            if len(out) == window:
                break
    out.reverse()
    return out


def best_overall_checkpoint(conn: psycopg.Connection, model_id: str) -> dict | None:
    """The checkpoint with the highest mean score over datasets common to every compared checkpoint.

    Datasets are taken in order of coverage (most checkpoints first); for each prefix of j datasets
    the compared checkpoints are those scored on all j. The prefix maximising checkpoints × datasets
    wins (ties: more datasets), so no checkpoint is ranked on a set of datasets the others lack.
    Lower-is-better datasets enter negated.
    """
    by_cp, steps, _ = _group_points(_model_points(conn, model_id))
    return _best_overall(by_cp, steps)


def _best_overall(by_cp: dict[str, dict[str, float]], steps: dict[str, int | None]) -> dict | None:
    if not by_cp:
        return None
    cover: Counter[str] = Counter()  # checkpoints scored per dataset
    for cp in by_cp.values():
        cover.update(cp.keys())
    order = sorted(cover, key=lambda d: (-cover[d], d))
    alive = set(by_cp)
    best_j, best_cps, best_size = 0, set(), -1
    for j, d in enumerate(order, start=1):
        alive = {c for c in alive if d in by_cp[c]}
        if not alive:
            break
        if len(alive) * j >= best_size:
            best_j, best_cps, best_size = j, set(alive), len(alive) * j
    common = sorted(order[:best_j])
    means = sorted(((sum(by_cp[c][d] for d in common) / len(common), steps[c] if steps[c] is not None else -1, c)
                    for c in best_cps), reverse=True)
    mean, _, cid = means[0]
    return {"checkpoint_id": cid, "training_step": steps[cid], "mean_score": mean, "n_datasets": len(common),
            "common_datasets": common, "n_checkpoints_compared": len(best_cps),
            "n_checkpoints_excluded": len(by_cp) - len(best_cps)}


# ------------------------------------------------------------------ compare


def compare_curves(conn: psycopg.Connection, models: Sequence[str], dataset: str, *,
                   common_only: bool = False) -> dict:
    """Training curves of several models on one dataset; common_only keeps steps all training models have."""
    rows = _rows(conn, """
        with pts as (
          select model_id, model_type, display_name, checkpoint_id, training_step, metric_name, metric_value, n,
                 ci_lower, ci_upper, stderr, n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional
          from v_current_scores where model_id = any(%(m)s) and dataset_name = %(d)s and is_scored
        ),
        common as (
          select training_step from pts where model_type = 'training' and training_step is not null
          group by training_step
          having count(distinct model_id) = (select count(distinct model_id) from pts where model_type = 'training')
        )
        select * from pts
        where not %(c)s or model_type = 'baseline' or training_step in (select training_step from common)
        order by model_id, training_step nulls last""", {"m": list(models), "d": dataset, "c": common_only})
    _with_intervals(rows)
    meta = {m["model_id"]: m for m in _rows(conn, "select model_id, display_name, model_type from models "
                                                  "where model_id = any(%s)", (list(models),))}
    out = {m: {**meta[m], "data_points": []} for m in models if m in meta}
    for r in rows:
        out[r["model_id"]]["data_points"].append(
            {"checkpoint_id": r["checkpoint_id"], "training_step": r["training_step"],
             "metric_value": r["metric_value"], "metric_name": r["metric_name"], "n": r["n"],
             "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"], "interval_method": r["interval_method"]})
    return {"dataset": dataset, "common_only": common_only, "models": list(out.values())}


def category_profile(conn: psycopg.Connection, models: Sequence[str], *, common_only: bool = False,
                     score: ScoreChoice = "latest", step: int | None = None) -> dict:
    """Mean chosen score per category for each model (radar), with an interval from the datasets' own."""
    q = sql.SQL("""select s.model_id, s.dataset_name, coalesce(d.category, 'uncategorized') as category,
                          s.metric_name, s.metric_value, s.n, s.ci_lower, s.ci_upper, s.stderr, s.n_examples,
                          s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional
                   from {src} s left join v_datasets d on d.dataset_name = s.dataset_name
                   where s.model_id = any(%(m)s)
                     and (not %(c)s or s.dataset_name in (
                          select dataset_name from {src} x where x.model_id = any(%(m)s)
                          group by dataset_name having count(distinct model_id) = %(k)s))
                   order by s.model_id, category, s.dataset_name""").format(src=scores_source(score))
    rows = _with_intervals(_rows(conn, q, {"m": list(models), "c": common_only, "k": len(set(models)),
                                           "step": step}))
    meta = {m["model_id"]: m for m in _rows(conn, "select model_id, display_name, model_type from models "
                                                  "where model_id = any(%s)", (list(models),))}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model_id"], r["category"]), []).append(r)
    profiles = []
    for m in models:
        if m not in meta:
            continue
        cats = {}
        for (mid, cat), lst in groups.items():
            if mid != m:
                continue
            agg = stats.mean_with_se([x["metric_value"] for x in lst], [x["stderr"] for x in lst])
            agg["datasets"] = [x["dataset_name"] for x in lst]
            cats[cat] = agg
        profiles.append({**meta[m], "categories": cats})
    return {"score_choice": score, "common_only": common_only, "profiles": profiles}


# ------------------------------------------------------------------ diff


def diff_checkpoints(conn: psycopg.Connection, checkpoint_a: str, checkpoint_b: str, *, alpha: float = ALPHA,
                     flips_limit: int = 20) -> dict | None:
    """Per dataset b − a with an interval and BH-corrected significance; flipped examples when both
    runs have example rows. None when either checkpoint is unknown (the caller says which)."""
    ca, cb = resolve_checkpoint(conn, checkpoint_a), resolve_checkpoint(conn, checkpoint_b)
    if ca is None or cb is None:
        return None
    info = {r["checkpoint_id"]: r for r in _rows(
        conn, "select checkpoint_id, model_id, training_step from checkpoints where checkpoint_id = any(%s)",
        ([ca, cb],))}
    rows = _with_intervals(_records(conn, """select checkpoint_id, dataset_name, eval_run_id, status, is_scored,
                                                 metric_name, case when is_scored then metric_value end
                                                 as metric_value, n, ci_lower, ci_upper, stderr, is_higher_better,
                                                 n_examples, n_graded, n_correct, score_sum, score_sumsq,
                                                 n_fractional
                                          from v_current_scores where checkpoint_id = %s or checkpoint_id = %s
                                          order by dataset_name""", (ca, cb)))
    side: dict[str, dict[str, dict]] = {ca: {}, cb: {}}
    for r in rows:
        side[r["checkpoint_id"]][r["dataset_name"]] = r
    names = sorted(set(side[ca]) | set(side[cb]))
    pairs = [(side[ca][d]["eval_run_id"], side[cb][d]["eval_run_id"]) for d in names
             if d in side[ca] and d in side[cb] and side[ca][d]["n_graded"] and side[cb][d]["n_graded"]]
    pstats = _pair_stats(conn, pairs) if ca != cb else {}
    flips: dict[tuple[str, str], list[dict]] = {}
    if pstats and flips_limit > 0:
        keys = [k for k, v in pstats.items() if v["n_wrong_to_right"] or v["n_right_to_wrong"]]
        if keys:
            flips = _flip_examples(conn, keys, flips_limit)
    tests: list[stats.TestResult | None] = []
    for d in names:
        a, b = side[ca].get(d), side[cb].get(d)
        if a is None or b is None or a["metric_value"] is None or b["metric_value"] is None \
                or a["metric_name"] != b["metric_name"]:
            tests.append(None)
            continue
        tests.append(stats.compare_scores(a, b, pstats.get((a["eval_run_id"], b["eval_run_id"]))))
    qs = stats.benjamini_hochberg([t.p_value if t else None for t in tests])
    out = []
    summary = {"total": len(names), "improved": 0, "regressed": 0, "unchanged": 0, "missing": 0, "not_testable": 0}
    for d, t, qv in zip(names, tests, qs):
        a, b = side[ca].get(d), side[cb].get(d)
        va = a["metric_value"] if a else None
        vb = b["metric_value"] if b else None
        higher = (a or b)["is_higher_better"]
        item = {"dataset_name": d, "score_a": va, "score_b": vb,
                "delta": (vb - va) if va is not None and vb is not None else None,
                "metric_name": (a or b)["metric_name"], "n_a": a["n"] if a else None, "n_b": b["n"] if b else None,
                "ci_a": [a["ci_lower"], a["ci_upper"]] if a else None,
                "ci_b": [b["ci_lower"], b["ci_upper"]] if b else None,
                "eval_run_id_a": a["eval_run_id"] if a else None, "eval_run_id_b": b["eval_run_id"] if b else None,
                "is_higher_better": higher, "q_value": qv}
        if t is None:
            item.update({"significance": "insufficient_data", "p_value": None, "effect_ci_lower": None,
                         "effect_ci_upper": None, "test": None, "direction": "missing"})
            summary["missing"] += 1
        elif t.p_value is None:  # not testable (issue 14): no significance claimed, the reason said
            item.update(_test_dict(t))
            item.pop("effect")
            item.update({"significance": "insufficient_data", "direction": "not_testable",
                         "not_testable": stats.not_testable_reason(a, b, t),
                         "delta_ci_lower": None, "delta_ci_upper": None})
            summary["not_testable"] += 1
        else:
            item.update(_test_dict(t))
            item.pop("effect")
            item["delta_ci_lower"], item["delta_ci_upper"] = t.ci_lower, t.ci_upper
            sig = stats.significance_label(qv, t.effect, alpha=alpha)
            item["significance"] = sig
            better = (t.effect or 0) * (1 if higher else -1)
            if sig == "likely_real" and better > 0:
                item["direction"] = "improved"
            elif sig == "likely_real" and better < 0:
                item["direction"] = "regressed"
            else:
                item["direction"] = "unchanged"
            summary[item["direction"]] += 1
        ps = pstats.get((a["eval_run_id"], b["eval_run_id"])) if a and b else None
        if ps:
            item["n_paired"] = ps["n_pairs"]
            item["n_right_to_wrong"] = ps["n_right_to_wrong"]
            item["n_wrong_to_right"] = ps["n_wrong_to_right"]
            item["flips"] = flips.get((a["eval_run_id"], b["eval_run_id"]), [])
        out.append(item)
    return {"checkpoint_a": info[ca], "checkpoint_b": info[cb], "alpha": alpha,
            "correction": "benjamini_hochberg across datasets", "datasets": out, "summary": summary}


# ------------------------------------------------------------------ eval runs and examples


def get_eval_run(conn: psycopg.Connection, eval_run_id: str) -> dict | None:
    """An eval run's provenance, primary value, example counts and the value's interval."""
    r = _one(conn, "select * from v_eval_runs where eval_run_id = %s", (eval_run_id,))
    if r is None:
        return None
    iv = stats.score_intervals([{**r, "metric_value": r["primary_value"], "metric_name": r["primary_metric"],
                                 "n": r["sample_count"]}])[0]
    r["interval"] = iv
    r["accuracy"] = (r["n_correct"] / r["n_examples"]) if r["n_examples"] else None
    for k in ("n_graded", "score_sum", "score_sumsq", "n_fractional"):
        r.pop(k, None)
    return r


def eval_run_exists(conn: psycopg.Connection, eval_run_id: str) -> bool:
    return _one(conn, "select 1 as x from eval_runs where eval_run_id = %s", (eval_run_id,)) is not None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def run_examples(conn: psycopg.Connection, eval_run_id: str, *, correct: bool | None = None,
                 topic: str | None = None, difficulty: str | None = None, subtask: str | None = None,
                 search: str | None = None, limit: int = 50, offset: int = 0) -> dict | None:
    """A page of a run's examples (filters: correct, topic, difficulty, subtask, text search)."""
    if not eval_run_exists(conn, eval_run_id):
        return None
    where = sql.SQL("""eval_run_id = %(r)s
        and (%(c)s::bool is null or coalesce(is_correct, score >= 0.5) = %(c)s)
        and (%(t)s::text is null or topic = %(t)s)
        and (%(d)s::text is null or difficulty = %(d)s)
        and (%(s)s::text is null or subtask = %(s)s)
        and (%(q)s::text is null or input_preview ilike %(q)s or output_preview ilike %(q)s
             or ground_truth ilike %(q)s)""")
    p = {"r": eval_run_id, "c": correct, "t": topic, "d": difficulty, "s": subtask,
         "q": _like(search) if search else None, "lim": limit, "off": offset}
    agg = _one(conn, sql.SQL("select count(*) as total, "
                             "count(*) filter (where coalesce(is_correct, score >= 0.5)) as correct_count "
                             "from example_results where {w}").format(w=where), p)
    rows = _rows(conn, sql.SQL("""select id, eval_run_id, example_idx, is_correct as correct, score,
                                         input_preview, output_preview, ground_truth, error_tag, difficulty,
                                         topic, subtask, metadata
                                  from example_results where {w}
                                  order by example_idx limit %(lim)s offset %(off)s""").format(w=where), p)
    total = agg["total"]
    return {"eval_run_id": eval_run_id, "total": total, "correct_count": agg["correct_count"],
            "accuracy": (agg["correct_count"] / total) if total else None, "limit": limit, "offset": offset,
            "examples": rows}


def run_slices(conn: psycopg.Connection, eval_run_id: str, *, alpha: float = ALPHA) -> dict | None:
    """Accuracy with intervals by topic, difficulty and subtask, and where failures concentrate."""
    if not eval_run_exists(conn, eval_run_id):
        return None
    rows = _rows(conn, """select dimension, slice, n_examples, n_correct, n_graded, score_sum, score_sumsq,
                                 n_fractional from v_example_slices where eval_run_id = %s
                          order by dimension, slice""", (eval_run_id,))
    # Run totals from one dimension's slices (each dimension partitions the run), so slice and
    # total counts agree by construction.
    topic = [r for r in rows if r["dimension"] == "topic"]
    tot = {"n_examples": sum(r["n_examples"] for r in topic), "n_correct": sum(r["n_correct"] for r in topic)} \
        if topic else None
    ivs = stats.score_intervals([{**r, "metric_value": (r["score_sum"] / r["n_graded"]) if r["n_graded"] else None}
                                 for r in rows])
    n_all = tot["n_examples"] if tot else 0
    fails_all = (tot["n_examples"] - tot["n_correct"]) if tot else 0
    acc_all = (tot["n_correct"] / n_all) if n_all else None
    out: dict[str, dict] = {"topic": {}, "difficulty": {}, "subtask": {}}
    tests, keys = [], []
    for r, iv in zip(rows, ivs):
        n, k = r["n_examples"], r["n_correct"]
        fails = n - k
        cell = {"total": n, "correct": k, "accuracy": k / n if n else None,
                "mean_score": (r["score_sum"] / r["n_graded"]) if r["n_graded"] else None,
                "ci_lower": iv["ci_lower"], "ci_upper": iv["ci_upper"], "interval_method": iv["interval_method"],
                "failures": fails, "failure_share": (fails / fails_all) if fails_all else None}
        # This slice against the rest of the run (two-proportion test), BH-corrected over all slices.
        rest_n, rest_k = n_all - n, (tot["n_correct"] - k) if tot else 0
        if n and rest_n:
            t = stats.two_proportion_test(rest_k / rest_n, rest_n, k / n, n)
            cell["accuracy_rest"] = rest_k / rest_n
            cell["p_vs_rest"] = t.p_value
            tests.append(t.p_value)
        else:
            cell["accuracy_rest"] = None
            cell["p_vs_rest"] = None
            tests.append(None)
        keys.append((r["dimension"], r["slice"]))
        out[r["dimension"]][r["slice"]] = cell
    for (dim, sl), qv in zip(keys, stats.benjamini_hochberg(tests)):
        out[dim][sl]["q_vs_rest"] = qv
    worse = [(dim, sl, c) for dim, d in out.items() for sl, c in d.items()
             if c.get("q_vs_rest") is not None and c["q_vs_rest"] < alpha and c["accuracy_rest"] is not None
             and c["accuracy"] < c["accuracy_rest"]]
    # Most distinctive first: the largest accuracy gap to the rest of the run.
    worse.sort(key=lambda x: (x[2]["accuracy"] - x[2]["accuracy_rest"], x[2]["q_vs_rest"]))
    if not n_all:
        text = "no example rows for this run"
    elif not fails_all:
        text = "no failures"
    elif not worse:
        text = (f"failures are spread out: no topic, difficulty or subtask is significantly worse than the rest "
                f"(BH q >= {alpha}); overall accuracy {acc_all:.3f} on {n_all} examples")
    else:
        parts = [f"{dim} '{sl}' ({c['accuracy']:.3f} vs {c['accuracy_rest']:.3f} elsewhere, "
                 f"{100 * (c['failure_share'] or 0):.0f}% of failures, q={c['q_vs_rest']:.2g})"
                 for dim, sl, c in worse[:3]]
        text = "failures concentrate in " + "; ".join(parts)
    return {"eval_run_id": eval_run_id, "total": n_all, "correct": tot["n_correct"] if tot else 0,
            "accuracy": acc_all, "by_topic": out["topic"], "by_difficulty": out["difficulty"],
            "by_subtask": out["subtask"], "error_concentration": text,
            "failure_concentration": [{"dimension": dim, "slice": sl, "accuracy": c["accuracy"],
                                       "accuracy_rest": c["accuracy_rest"], "failure_share": c["failure_share"],
                                       "q_value": c["q_vs_rest"]} for dim, sl, c in worse]}
