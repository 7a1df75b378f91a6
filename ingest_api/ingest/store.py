"""The write path of ingest: one eval result (or a batch) and example rows, transactional and idempotent."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import orjson
import psycopg
from psycopg.types.json import Jsonb

from ..core.errors import ApiError
from ..stats import proportion_stderr, wilson_interval
from . import metrics as M
from .naming import canonical_checkpoint_id, named_models
from .schemas import EvalResultIn, EvalResultOut, ExampleIn

log = logging.getLogger("eval360.ingest")

# Called inside the ingest transaction after each stored result, when the caller passes one:
# (conn, stored result) -> None. create_app passes ops.alerts.judge_stored with EVAL360_ALERTS_INLINE=1.
AfterStore = Callable[[psycopg.Connection, dict], None]


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


# Who posted a result (and how) is not its content: the same content re-posted records no activity.
_NOT_CONTENT = frozenset({"i", "actor", "source", "record_activity"})


def content_hash(prepared: dict) -> str:
    """Hash of a prepared result's content (eval_runs.content_hash, sql/functions/50_store_results.sql)."""
    content = {k: v for k, v in prepared.items() if k not in _NOT_CONTENT}
    try:
        basis = orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:  # an integer past 64 bits (a step read off a name): the database refuses it later
        basis = json.dumps(content, sort_keys=True, default=str).encode()
    return hashlib.blake2b(basis, digest_size=16).hexdigest()


_CONFLICT = "E3409"  # raised by eval360_store_results (sql/migrations/0008) on a conflict


def _metric_rows(r: EvalResultIn, names: list[str], primary: str) -> tuple[list[dict], list[str]]:
    rows, no_value = [], []
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
        rows.append({"metric_name": name, "metric_value": value, "value_note": note, "is_primary": is_primary,
                     "is_score": M.is_score_metric(name), "metric_order": i, "n_samples": r.sample_count,
                     "ci_lower": lo, "ci_upper": hi, "stderr": se})
    return rows, no_value


def _prepare(i: int, r: EvalResultIn, source: str, actor: str, record_activity: bool) -> tuple[dict, dict]:
    """The row eval360_store_results takes for r, and what the reply needs of it.

    Everything that does not depend on stored state is decided here; the model's stored type
    (when the caller sends none) decides between the two candidate checkpoint ids in SQL.
    """
    names = list(r.metrics)
    primary = r.primary_metric or M.default_primary(names)
    cid_t, step_t = canonical_checkpoint_id(r.model_id, "training", r.checkpoint_id, r.training_step)
    cid_b, _ = canonical_checkpoint_id(r.model_id, "baseline", r.checkpoint_id, None)
    rows, no_value = _metric_rows(r, names, primary)
    primary_value, _ = M.split_value(r.metrics[primary])
    p = r.model_dump(exclude={"metrics"}, mode="json")
    p.update({
        "i": i, "model_type_explicit": "model_type" in r.model_fields_set, "cid_training": cid_t,
        "step_training": step_t, "cid_baseline": cid_b, "primary_metric": primary, "metrics": rows,
        "source": source, "actor": actor, "record_activity": record_activity, "primary_value": primary_value,
        "primary_shown": None if primary_value is None else f"{primary_value:.4g}",
    })
    if r.eval_run_id is None:
        p["run_training"] = derived_run_id(cid_t, r)
        p["run_baseline"] = derived_run_id(cid_b, r)
    p["id_models"] = named_models(r.model_id, r.checkpoint_id)
    p["content_hash"] = content_hash(p)
    return p, {"primary": primary, "primary_value": primary_value, "n_metrics": len(names), "no_value": no_value}


STORE_SQL = "select eval360_store_results(%s) as r"


class PreparedBatch:
    """A batch ready for eval360_store_results: the JSON argument, and what the replies need."""

    def __init__(self, results: list[EvalResultIn], *, source: str, actor: str | list[str],
                 record_activity: bool):
        actors = actor if isinstance(actor, list) else [actor] * len(results)
        prepared = [_prepare(i, r, source, a, record_activity) for i, (r, a) in enumerate(zip(results, actors))]
        self.results = results
        self.source = source
        self.arg = Jsonb([p for p, _ in prepared])
        self.infos = [info for _, info in prepared]

    def conflict(self, exc: psycopg.Error, field_prefix: bool) -> ApiError | None:
        """The 409 for a conflict raised by the store function (None for any other error)."""
        if exc.sqlstate != _CONFLICT:
            return None
        idx, _, field = (exc.diag.message_hint or "").partition(":")
        msg = exc.diag.message_primary or "conflict"
        if field_prefix:
            return ApiError(409, f"results[{idx}]: {msg}", field=f"results[{idx}].{field}")
        return ApiError(409, msg, field=field or None)

    def replies(self, outs: list[dict], conn: psycopg.Connection | None = None,
                after_store: AfterStore | None = None) -> list[EvalResultOut]:
        """The replies; with after_store, it runs on conn for each stored result first."""
        replies = []
        for r, info, out in zip(self.results, self.infos, outs):
            if after_store is not None:
                stored = {"model_id": r.model_id, "checkpoint_id": out["checkpoint_id"],
                          "training_step": out["training_step"], "dataset_name": r.dataset_name,
                          "eval_run_id": out["eval_run_id"], "is_new_run": out["is_new_run"], "status": r.status,
                          "primary_metric": info["primary"], "primary_value": info["primary_value"],
                          "sample_count": r.sample_count, "model_type": out["model_type"], "source": self.source}
                after_store(conn, stored)
            replies.append(EvalResultOut(
                checkpoint_id=out["checkpoint_id"], dataset_name=r.dataset_name, eval_run_id=out["eval_run_id"],
                model_id=r.model_id, training_step=out["training_step"], posted_checkpoint_id=r.checkpoint_id,
                is_new_run=out["is_new_run"], is_current=out["is_current"], n_metrics=info["n_metrics"],
                metrics_without_value=info["no_value"],
            ))
        return replies


def store_eval_results(conn: psycopg.Connection, results: list[EvalResultIn], *, source: str = "api",
                       actor: str | list[str] = "ingest", record_activity: bool = True,
                       field_prefix: bool = True, after_store: AfterStore | None = None) -> list[EvalResultOut]:
    """Store results in the caller's transaction, in one server call whatever their number.

    Applied as if posted one after another in list order; actor: one for all, or one per result.
    The read-side facts of the touched runs are queued (facts_pending) for the next flush.
    ApiError(409) on a conflict, naming `results[i].field` (or just `field` with field_prefix=False).
    after_store(conn, stored result) runs after each result, in the same transaction.
    """
    batch = PreparedBatch(results, source=source, actor=actor, record_activity=record_activity)
    try:
        outs = conn.execute(STORE_SQL, (batch.arg,)).fetchone()["r"]
    except psycopg.Error as exc:
        err = batch.conflict(exc, field_prefix)
        if err is not None:
            raise err from None
        raise
    return batch.replies(outs, conn, after_store)


def store_eval_result(conn: psycopg.Connection, r: EvalResultIn, *, source: str = "api",
                      actor: str = "ingest", record_activity: bool = True,
                      after_store: AfterStore | None = None) -> EvalResultOut:
    """Store one result inside the caller's transaction (one server round trip). ApiError on a conflict."""
    return store_eval_results(conn, [r], source=source, actor=actor, record_activity=record_activity,
                              field_prefix=False, after_store=after_store)[0]


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
    if not examples:
        return 0  # an empty batch is a no-op: nothing written, no activity (README, "Validation rules")
    # Last occurrence of an index within one batch wins.
    by_idx = {e.example_idx: e for e in examples}
    conn.execute("select pg_advisory_xact_lock(%s)", (_lock_key("examples", run_id),))
    had_rows = conn.execute("select exists(select 1 from example_results where eval_run_id = %s) as x",
                            (run_id,)).fetchone()["x"]
    if had_rows:
        conn.execute("delete from example_results where eval_run_id = %s and example_idx = any(%s::int4[])",
                     (run_id, list(by_idx)))
    copy_sql = f"copy example_results ({', '.join(_EXAMPLE_COLS)}) from stdin"
    with conn.cursor() as cur, cur.copy(copy_sql) as cp:
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
