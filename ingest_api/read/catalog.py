"""What exists: models, checkpoints (ids and aliases), datasets, suites, and the values for filters."""

from __future__ import annotations

from typing import Literal

import psycopg

from ..core import sqlrows
from ..core.errors import ApiError
from ..core.jsonout import dumps

MODEL_KEYS = ("model_id", "display_name", "model_type", "owner", "param_count", "is_pinned", "created_at",
              "updated_at", "n_checkpoints", "latest_checkpoint_id", "latest_step", "last_eval_at")
CHECKPOINT_KEYS = ("checkpoint_id", "model_id", "training_step", "checkpoint_path", "metadata", "training_run",
                   "recipe_tags", "created_at", "updated_at", "n_datasets", "n_completed", "last_eval_at")
RESULT_COLS = ("checkpoint_id, dataset_name, metric_name, metric_value, is_primary, eval_config, eval_run_id, "
               "sample_count, ci_lower, ci_upper, stderr, ingested_at, training_step, status, is_score, value_note")


def resolve_checkpoint(conn: psycopg.Connection, ident: str, model_id: str | None = None) -> str | None:
    """Canonical checkpoint id for an id or an alias a client has posted; None when unknown.

    A checkpoint id always wins over an alias. Aliases belong to a model (checkpoint_aliases, sql/migrations/0001_baseline.sql): with
    model_id only that model's count; without, an alias that several models posted is ambiguous,
    ApiError(409) listing the candidates (ask again with the checkpoint id).
    """
    rows = sqlrows.rows(conn, """select checkpoint_id, model_id, true as canonical from checkpoints
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
    return sqlrows.rows(conn, f"""select {cols}{extra} from v_models v {join}
                          where (%(mt)s::text is null or v.model_type = %(mt)s)
                            and (%(ow)s::text is null or v.owner = %(ow)s)
                          order by {', '.join('v.' + k for k in _MODEL_ORDER[order].split(', '))}""",
                 {"mt": model_type, "ow": owner})


def get_model(conn: psycopg.Connection, model_id: str) -> dict | None:
    """{"model", "checkpoints"} (step ascending; baselines' step-less checkpoint last), or None."""
    model = sqlrows.one(conn, f"select {', '.join(MODEL_KEYS)} from v_models where model_id = %s", (model_id,))
    if model is None:
        return None
    cps = sqlrows.rows(conn, f"""select {', '.join(CHECKPOINT_KEYS)} from v_checkpoints where model_id = %s
                         order by training_step asc nulls last, checkpoint_id""", (model_id,))
    return {"model": model, "checkpoints": cps}


def model_exists(conn: psycopg.Connection, model_id: str) -> bool:
    return sqlrows.one(conn, "select 1 as x from models where model_id = %s", (model_id,)) is not None


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
    rows = sqlrows.rows(conn, _model_scores_query(metrics),
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
        row = sqlrows.one(conn, f"select count(*) as n, coalesce(json_agg(json_build_array({RESULT_COLS})), '[]')::text as j "
                         f"from ({_model_scores_query(metrics)}) t", params)
        return (head + b',"count":' + str(row["n"]).encode() + b',"columns":' + dumps(cols)
                + b',"rows":' + row["j"].encode() + b"}")
    if metrics == "primary":
        # Each row's JSON is kept in score_facts (result_json): concatenate in the query's order.
        q = _model_scores_query(metrics).replace(f"select {RESULT_COLS} from", "select result_json from", 1)
        row = sqlrows.one(conn, f"select count(*) as n, '[' || coalesce(string_agg(result_json, ','), '') || ']' as j "
                         f"from ({q}) t", params)
    else:
        row = sqlrows.one(conn, f"select count(*) as n, coalesce(json_agg(t), '[]')::text as j "
                         f"from ({_model_scores_query(metrics)}) t", params)
    return head + b',"count":' + str(row["n"]).encode() + b',"scores":' + row["j"].encode() + b"}"


# ------------------------------------------------------------------ checkpoints


def get_checkpoint(conn: psycopg.Connection, checkpoint_id: str) -> dict | None:
    """{"checkpoint", "eval_results"}: every metric of the checkpoint's current runs, or None."""
    cid = resolve_checkpoint(conn, checkpoint_id)
    if cid is None:
        return None
    cp = sqlrows.one(conn, f"select {', '.join(CHECKPOINT_KEYS)} from v_checkpoints where checkpoint_id = %s", (cid,))
    results = sqlrows.rows(conn, f"""select {RESULT_COLS} from v_results where checkpoint_id = %s
                             order by dataset_name, metric_order""", (cid,))
    return {"checkpoint": cp, "eval_results": results}


# ------------------------------------------------------------------ datasets and leaderboard


def list_datasets(conn: psycopg.Connection) -> list[dict]:
    """Datasets with category, direction and how many models / runs they have."""
    return sqlrows.rows(conn, """select dataset_name, category, subcategory, primary_metric, is_higher_better,
                                 chance_level, description, n_models, n_scores
                          from v_datasets order by dataset_name""")


def dataset_exists(conn: psycopg.Connection, name: str) -> bool:
    return sqlrows.one(conn, """select 1 as x where exists (select 1 from eval_runs where dataset_name = %(d)s)
                         or exists (select 1 from benchmark_metadata where dataset_name = %(d)s)""",
                {"d": name}) is not None


# ------------------------------------------------------------------ suites and filters


def list_suites(conn: psycopg.Connection) -> list[dict]:
    return sqlrows.rows(conn, """select suite_id, display_name, description, dataset_names, created_at, updated_at,
                                 n_datasets from v_suites order by suite_id""")


def get_suite(conn: psycopg.Connection, suite_id: str) -> dict | None:
    return sqlrows.one(conn, """select suite_id, display_name, description, dataset_names, created_at, updated_at,
                                n_datasets from v_suites where suite_id = %s""", (suite_id,))


def filters(conn: psycopg.Connection) -> dict:
    """Distinct values for the dashboard's dropdowns."""
    row = sqlrows.one(conn, """select
        coalesce((select array_agg(distinct owner order by owner) from v_models), '{}') as owners,
        coalesce((select array_agg(distinct model_type order by model_type) from v_models), '{}') as model_types,
        coalesce((select array_agg(dataset_name order by dataset_name) from v_datasets), '{}') as datasets,
        coalesce((select array_agg(distinct category order by category) from v_datasets), '{}') as categories,
        coalesce((select array_agg(suite_id order by suite_id) from v_suites), '{}') as suites""")
    row["score_choices"] = ["latest", "best", "step"]
    return row
