"""POST /api/ingest/*: what the Eval360-V2 scheduler and the backfill send."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ...core.auth import IngestAuth
from ...core.errors import ApiError
from ...ingest import store as core
from ...ingest.batcher import run_in_transaction
from ...ingest.schemas import (
    EvalResultBatchIn,
    EvalResultBatchOut,
    EvalResultIn,
    EvalResultOut,
    ExamplesIn,
    ExamplesOut,
)

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
T = TypeVar("T")


async def _in_transaction(request: Request, fn: Callable[[psycopg.Connection], T]) -> T:
    """Run fn(conn) in one transaction on a pooled connection, in one worker-thread hop (after waiting
    for a database slot in the event loop, like every request: see deps.py)."""
    async with request.app.state.db_gate.slot():
        out = await run_in_threadpool(run_in_transaction, request.app.state.pool, fn)
    request.app.state.facts_drainer.poke()  # refresh the read-side facts of what was just written, off the request
    return out


def _check_metric_counts(request: Request, results: list[EvalResultIn], prefix: str = "") -> None:
    """422 for a result with more metrics than EVAL360_MAX_METRICS (before anything is stored)."""
    limit = request.app.state.settings.max_metrics_per_result
    for i, r in enumerate(results):
        if len(r.metrics) > limit:
            where = f"results[{i}].metrics" if prefix else "metrics"
            raise ApiError(422, f"{where}: {len(r.metrics)} metrics in one result, the limit is {limit} "
                                "(EVAL360_MAX_METRICS)", field=where)


def _json(model: BaseModel) -> Response:
    # The reply is built by our own code from validated values: serialise it once, without the
    # second validation FastAPI gives a returned model (the decorator's response_model documents it).
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/eval-result", response_model=EvalResultOut)
async def ingest_eval_result(body: EvalResultIn, request: Request, role: IngestAuth) -> Response:
    """Store the scores of one (checkpoint, dataset) eval run, with provenance. Idempotent."""
    _check_metric_counts(request, [body])
    return _json(await request.app.state.result_batcher.submit(body, role))


@router.post("/eval-results", response_model=EvalResultBatchOut)
async def ingest_eval_results(body: EvalResultBatchIn, request: Request, role: IngestAuth) -> Response:
    """Store many results in one transaction (all or nothing), in one server call; used by the backfill."""
    _check_metric_counts(request, body.results, prefix="results")

    def work(conn: psycopg.Connection) -> EvalResultBatchOut:
        out = core.store_eval_results(conn, body.results, source=body.source, actor=role,
                                      after_store=request.app.state.after_store)
        return EvalResultBatchOut(count=len(out), results=out)

    return _json(await _in_transaction(request, work))


@router.post("/examples", response_model=ExamplesOut)
async def ingest_examples(body: ExamplesIn, request: Request, role: IngestAuth) -> ExamplesOut:
    """Store per-example results of one eval run (COPY); re-posted indexes replace earlier rows."""
    limit = request.app.state.settings.max_examples_per_call
    if len(body.examples) > limit:
        raise ApiError(413, f"examples: {len(body.examples)} rows in one call, the limit is {limit}; "
                            "send several batches", field="examples")
    # Example outcomes are kept as bit strings as long as the largest index (sql/functions/10_example_facts.sql): the
    # bound keeps a post's cost independent of how large an index a client sends.
    max_idx = request.app.state.settings.max_example_idx
    for i, e in enumerate(body.examples):
        if e.example_idx > max_idx:
            raise ApiError(422, f"examples[{i}].example_idx: {e.example_idx} is past the largest accepted index "
                                f"{max_idx} (EVAL360_MAX_EXAMPLE_IDX); example indexes are 0-based positions "
                                "in the dataset", field=f"examples[{i}].example_idx")
    n = await _in_transaction(request, lambda conn: core.store_examples(conn, body.eval_run_id, body.examples,
                                                                          actor=role))
    return ExamplesOut(eval_run_id=body.eval_run_id, count=n)
