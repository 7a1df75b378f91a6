"""POST /api/ingest/*: what the Eval360-V2 scheduler and the backfill send."""

from __future__ import annotations

from fastapi import APIRouter

from ..auth import IngestAuth
from ..deps import ConnDep, SettingsDep
from ..errors import ApiError
from ..ingest import store_eval_result, store_examples
from ..schemas import EvalResultBatchIn, EvalResultBatchOut, EvalResultIn, EvalResultOut, ExamplesIn, ExamplesOut

router = APIRouter(prefix="/api/ingest", tags=["ingest"])


@router.post("/eval-result", response_model=EvalResultOut)
def ingest_eval_result(body: EvalResultIn, conn: ConnDep, role: IngestAuth) -> EvalResultOut:
    """Store the scores of one (checkpoint, dataset) eval run, with provenance. Idempotent."""
    with conn.transaction():
        return store_eval_result(conn, body, actor=role)


@router.post("/eval-results", response_model=EvalResultBatchOut)
def ingest_eval_results(body: EvalResultBatchIn, conn: ConnDep, role: IngestAuth) -> EvalResultBatchOut:
    """Store many results in one transaction (all or nothing); used by the backfill."""
    out = []
    with conn.transaction():
        for i, r in enumerate(body.results):
            try:
                out.append(store_eval_result(conn, r, source=body.source, actor=role))
            except ApiError as exc:
                exc.message = f"results[{i}]: {exc.message}"
                exc.field = f"results[{i}].{exc.field}" if exc.field else f"results[{i}]"
                raise
    return EvalResultBatchOut(count=len(out), results=out)


@router.post("/examples", response_model=ExamplesOut)
def ingest_examples(body: ExamplesIn, conn: ConnDep, role: IngestAuth, settings: SettingsDep) -> ExamplesOut:
    """Store per-example results of one eval run (COPY); re-posted indexes replace earlier rows."""
    if len(body.examples) > settings.max_examples_per_call:
        raise ApiError(413, f"examples: {len(body.examples)} rows in one call, the limit is "
                            f"{settings.max_examples_per_call}; send several batches", field="examples")
    with conn.transaction():
        n = store_examples(conn, body.eval_run_id, body.examples, actor=role)
    return ExamplesOut(eval_run_id=body.eval_run_id, count=n)
