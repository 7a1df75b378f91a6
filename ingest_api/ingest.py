"""The write path of ingest: one eval result (or a batch) and example rows, transactional and idempotent."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Callable

import psycopg
from psycopg.types.json import Jsonb

from . import metrics as M
from .errors import ApiError
from .naming import canonical_checkpoint_id
from .schemas import EvalResultIn, EvalResultOut, ExampleIn
from .stats import proportion_stderr, wilson_interval

log = logging.getLogger("eval360.ingest")

# Called inside the ingest transaction after each stored result: (conn, stored result) -> None.
# The alert rules register here, so alerts are judged in the same transaction as their data.
post_result_hooks: list[Callable[[psycopg.Connection, dict], None]] = []


def _lock_key(*parts: str) -> int:
    h = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big", signed=True)


def derived_run_id(canonical: str, r: EvalResultIn) -> str:
    """A run id for callers that send none: the same content posted again is the same run."""
    basis = json.dumps(
        [canonical, r.dataset_name, sorted((k, repr(v)) for k, v in r.metrics.items()), r.harness_commit,
         r.grader_version, r.dataset_version, r.dataset_split, r.sample_count, r.seed, r.status,
         r.eval_config, r.inference_config],
        sort_keys=True, default=str,
    )
    return "run-" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def _upsert_model(conn: psycopg.Connection, r: EvalResultIn) -> str:
    """Create the model, or update what changed; returns the model's effective type.

    Only rows that change are updated (an unconditional upsert would lock the model row
    and serialise every concurrent post of that model).
    """
    explicit_type = "model_type" in r.model_fields_set
    row = conn.execute(
        """with ins as (
             insert into models (model_id, display_name, model_type, owner, param_count)
             values (%(id)s, %(dn)s, %(mt)s, %(ow)s, %(pc)s)
             on conflict (model_id) do nothing
             returning model_type, display_name, owner, param_count, true as inserted)
           select * from ins
           union all
           select model_type, display_name, owner, param_count, false from models
            where model_id = %(id)s and not exists (select 1 from ins)""",
        {"id": r.model_id, "dn": r.display_name, "mt": r.model_type, "ow": r.owner, "pc": r.param_count},
    ).fetchone()
    if row is None:  # a concurrent insert committed after our snapshot: read it now
        row = conn.execute(
            "select model_type, display_name, owner, param_count, false as inserted from models where model_id = %s",
            (r.model_id,),
        ).fetchone()
    if row["inserted"]:
        return row["model_type"]
    want_type = r.model_type if explicit_type else row["model_type"]
    want_pc = r.param_count if r.param_count is not None else row["param_count"]
    if (row["display_name"], row["owner"], row["model_type"], row["param_count"]) != (
            r.display_name, r.owner, want_type, want_pc):
        conn.execute(
            """update models set display_name = %s, owner = %s, model_type = %s, param_count = %s,
                      updated_at = now() where model_id = %s""",
            (r.display_name, r.owner, want_type, want_pc, r.model_id),
        )
    return want_type


def _upsert_checkpoint(conn: psycopg.Connection, r: EvalResultIn, canonical: str, step: int | None) -> None:
    row = conn.execute(
        """with ins as (
             insert into checkpoints (checkpoint_id, model_id, training_step, checkpoint_path, metadata,
                                      training_run, recipe_tags)
             values (%(cid)s, %(mid)s, %(step)s, %(path)s, %(meta)s, %(run)s, %(tags)s)
             on conflict (checkpoint_id) do nothing
             returning model_id, checkpoint_path, metadata, training_run, recipe_tags, true as inserted)
           select * from ins
           union all
           select model_id, checkpoint_path, metadata, training_run, recipe_tags, false from checkpoints
            where checkpoint_id = %(cid)s and not exists (select 1 from ins)""",
        {"cid": canonical, "mid": r.model_id, "step": step, "path": r.checkpoint_path,
         "meta": Jsonb(r.metadata or {}), "run": r.training_run, "tags": r.recipe_tags or []},
    ).fetchone()
    if row is None:
        row = conn.execute(
            """select model_id, checkpoint_path, metadata, training_run, recipe_tags, false as inserted
               from checkpoints where checkpoint_id = %s""", (canonical,)).fetchone()
    if row["model_id"] != r.model_id:
        raise ApiError(409, f"checkpoint_id {canonical!r} already belongs to model {row['model_id']!r}",
                       field="checkpoint_id")
    if row["inserted"]:
        return
    new_meta = {**(row["metadata"] or {}), **(r.metadata or {})}
    new = (r.checkpoint_path or row["checkpoint_path"], new_meta, r.training_run or row["training_run"],
           r.recipe_tags if r.recipe_tags else row["recipe_tags"])
    if new != (row["checkpoint_path"], row["metadata"], row["training_run"], row["recipe_tags"]):
        conn.execute(
            """update checkpoints set checkpoint_path = %s, metadata = %s, training_run = %s, recipe_tags = %s,
                      updated_at = now() where checkpoint_id = %s""",
            (new[0], Jsonb(new[1]), new[2], new[3], canonical),
        )


def _alias(conn: psycopg.Connection, posted: str, canonical: str) -> None:
    if posted == canonical:
        return
    got = conn.execute(
        """with ins as (insert into checkpoint_aliases (alias, checkpoint_id) values (%s, %s)
                        on conflict (alias) do nothing returning checkpoint_id)
           select checkpoint_id from ins
           union all select checkpoint_id from checkpoint_aliases where alias = %s""",
        (posted, canonical, posted),
    ).fetchone()
    if got is not None and got["checkpoint_id"] != canonical:
        raise ApiError(409, f"checkpoint_id {posted!r} is already an alias of {got['checkpoint_id']!r}",
                       field="checkpoint_id")


def store_eval_result(conn: psycopg.Connection, r: EvalResultIn, *, source: str = "api",
                      actor: str = "ingest", record_activity: bool = True) -> EvalResultOut:
    """Store one result inside the caller's transaction. Raises ApiError on a conflict."""
    model_type = _upsert_model(conn, r)
    canonical, step = canonical_checkpoint_id(r.model_id, model_type, r.checkpoint_id, r.training_step)
    _upsert_checkpoint(conn, r, canonical, step)
    _alias(conn, r.checkpoint_id, canonical)

    run_id = r.eval_run_id or derived_run_id(canonical, r)
    names = list(r.metrics)
    primary = r.primary_metric or M.default_primary(names)

    # Serialise writers of the same (checkpoint, dataset): exactly one run is current.
    conn.execute("select pg_advisory_xact_lock(%s)", (_lock_key(canonical, r.dataset_name),))
    existing = conn.execute(
        "select checkpoint_id, dataset_name, is_current from eval_runs where eval_run_id = %s", (run_id,)
    ).fetchone()
    if existing and (existing["checkpoint_id"], existing["dataset_name"]) != (canonical, r.dataset_name):
        raise ApiError(
            409,
            f"eval_run_id {run_id!r} already belongs to checkpoint {existing['checkpoint_id']!r} "
            f"and dataset {existing['dataset_name']!r}",
            field="eval_run_id",
        )
    is_new = existing is None
    if is_new:
        conn.execute(
            """update eval_runs set is_current = false, updated_at = now()
               where checkpoint_id = %s and dataset_name = %s and is_current""",
            (canonical, r.dataset_name),
        )
    run_params = {
        "id": run_id, "cid": canonical, "mid": r.model_id, "ds": r.dataset_name, "status": r.status,
        "pm": primary, "n": r.sample_count, "seed": r.seed, "hc": r.harness_commit, "gt": r.grader_type,
        "gv": r.grader_version, "pt": r.prompt_template, "dv": r.dataset_version, "split": r.dataset_split,
        "err": r.error_message, "ec": Jsonb(r.eval_config or {}), "ic": Jsonb(r.inference_config or {}),
        "meta": Jsonb(r.metadata or {}), "src": source,
    }
    conn.execute(
        """insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status, is_current,
                                  primary_metric, sample_count, seed, harness_commit, grader_type, grader_version,
                                  prompt_template, dataset_version, dataset_split, error_message, eval_config,
                                  inference_config, metadata, source)
           values (%(id)s, %(cid)s, %(mid)s, %(ds)s, %(status)s, true, %(pm)s, %(n)s, %(seed)s, %(hc)s, %(gt)s,
                   %(gv)s, %(pt)s, %(dv)s, %(split)s, %(err)s, %(ec)s, %(ic)s, %(meta)s, %(src)s)
           on conflict (eval_run_id) do update set
             status = excluded.status, primary_metric = excluded.primary_metric,
             sample_count = excluded.sample_count, seed = excluded.seed,
             harness_commit = excluded.harness_commit, grader_type = excluded.grader_type,
             grader_version = excluded.grader_version, prompt_template = excluded.prompt_template,
             dataset_version = excluded.dataset_version, dataset_split = excluded.dataset_split,
             error_message = excluded.error_message, eval_config = excluded.eval_config,
             inference_config = excluded.inference_config, metadata = excluded.metadata,
             source = excluded.source, updated_at = now()""",
        run_params,
    )

    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("name", "value", "note", "primary", "score", "order", "n", "lo", "hi", "se")}
    no_value = []
    for i, name in enumerate(names):
        value, note = M.split_value(r.metrics[name])
        if value is None:
            no_value.append(name)
        is_primary = name == primary
        lo = hi = se = None
        if is_primary and (r.ci_lower is not None or r.ci_upper is not None or r.stderr is not None):
            lo, hi, se = r.ci_lower, r.ci_upper, r.stderr  # the caller's own interval wins
        elif r.sample_count and M.is_proportion_metric(name, value):
            lo, hi = wilson_interval(value, r.sample_count)
            se = proportion_stderr(value, r.sample_count)
        for k, v in zip(cols, (name, value, note, is_primary, M.is_score_metric(name), i,
                               r.sample_count, lo, hi, se)):
            cols[k].append(v)
    conn.execute("delete from eval_results where eval_run_id = %s and metric_name <> all(%s)", (run_id, names))
    conn.execute(
        """insert into eval_results (eval_run_id, metric_name, metric_value, value_note, is_primary, is_score,
                                     metric_order, n_samples, ci_lower, ci_upper, stderr)
           select %s, * from unnest(%s::text[], %s::float8[], %s::text[], %s::bool[], %s::bool[],
                                    %s::int2[], %s::int4[], %s::float8[], %s::float8[], %s::float8[])
           on conflict (eval_run_id, metric_name) do update set
             metric_value = excluded.metric_value, value_note = excluded.value_note,
             is_primary = excluded.is_primary, is_score = excluded.is_score, metric_order = excluded.metric_order,
             n_samples = excluded.n_samples, ci_lower = excluded.ci_lower, ci_upper = excluded.ci_upper,
             stderr = excluded.stderr, ingested_at = now()""",
        [run_id, *cols.values()],
    )
    if r.category is not None or r.subcategory is not None:
        conn.execute(
            """insert into benchmark_metadata (dataset_name, category, subcategory) values (%s, %s, %s)
               on conflict (dataset_name) do update set
                 category = coalesce(excluded.category, benchmark_metadata.category),
                 subcategory = coalesce(excluded.subcategory, benchmark_metadata.subcategory),
                 updated_at = now()
               where (benchmark_metadata.category, benchmark_metadata.subcategory)
                     is distinct from (coalesce(excluded.category, benchmark_metadata.category),
                                       coalesce(excluded.subcategory, benchmark_metadata.subcategory))""",
            (r.dataset_name, r.category, r.subcategory),
        )
    primary_value, _ = M.split_value(r.metrics[primary])
    if record_activity:
        shown = "no value" if primary_value is None else f"{primary_value:.4g}"
        conn.execute(
            """insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
               values (%s, %s, %s, %s, %s, %s, %s)""",
            ("eval_result" if source != "backfill" else "backfill", r.model_id, canonical, r.dataset_name, actor,
             f"{r.dataset_name}: {primary} = {shown} ({r.status})" + ("" if is_new else ", updated"),
             Jsonb({"eval_run_id": run_id, "status": r.status, "primary_metric": primary,
                    "value": primary_value, "is_new_run": is_new, "source": source})),
        )
    stored = {"model_id": r.model_id, "checkpoint_id": canonical, "training_step": step,
              "dataset_name": r.dataset_name, "eval_run_id": run_id, "is_new_run": is_new, "status": r.status,
              "primary_metric": primary, "primary_value": primary_value, "sample_count": r.sample_count,
              "model_type": model_type, "source": source}
    for hook in post_result_hooks:
        hook(conn, stored)
    return EvalResultOut(
        checkpoint_id=canonical, dataset_name=r.dataset_name, eval_run_id=run_id, model_id=r.model_id,
        training_step=step, posted_checkpoint_id=r.checkpoint_id, is_new_run=is_new,
        is_current=is_new or bool(existing and existing["is_current"]), n_metrics=len(names),
        metrics_without_value=no_value,
    )


# ------------------------------------------------------------------ examples

_EXAMPLE_COLS = ("eval_run_id", "example_idx", "is_correct", "score", "input_preview", "output_preview",
                 "ground_truth", "error_tag", "topic", "difficulty", "subtask", "metadata")


def store_examples(conn: psycopg.Connection, run_id: str, examples: list[ExampleIn], *,
                   actor: str = "ingest") -> int:
    """Write example rows with COPY; re-posted indexes replace the earlier rows. Returns the count."""
    run = conn.execute("select eval_run_id, model_id, checkpoint_id, dataset_name from eval_runs "
                       "where eval_run_id = %s", (run_id,)).fetchone()
    if run is None:
        raise ApiError(404, f"eval run {run_id!r} not found: post its eval result first "
                            "(POST /api/ingest/eval-result returns the eval_run_id)", field="eval_run_id")
    # Last occurrence of an index within one batch wins.
    by_idx = {e.example_idx: e for e in examples}
    conn.execute("select pg_advisory_xact_lock(%s)", (_lock_key("examples", run_id),))
    had_rows = conn.execute("select exists(select 1 from example_results where eval_run_id = %s) as x",
                            (run_id,)).fetchone()["x"]
    if had_rows:
        conn.execute("delete from example_results where eval_run_id = %s and example_idx = any(%s::int4[])",
                     (run_id, list(by_idx)))
    with conn.cursor() as cur:
        with cur.copy(f"copy example_results ({', '.join(_EXAMPLE_COLS)}) from stdin") as cp:
            for idx, e in by_idx.items():
                score = e.score if e.score is not None else (1.0 if e.correct else 0.0)
                cp.write_row((run_id, idx, e.correct, score, e.input_preview, e.output_preview,
                              e.ground_truth, e.error_tag, e.topic, e.difficulty, e.subtask,
                              None if e.metadata is None else json.dumps(e.metadata)))
    if not had_rows:
        conn.execute(
            """insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
               values ('examples', %s, %s, %s, %s, %s, %s)""",
            (run["model_id"], run["checkpoint_id"], run["dataset_name"], actor,
             f"{run['dataset_name']}: per-example results received", Jsonb({"eval_run_id": run_id})),
        )
    return len(by_idx)
