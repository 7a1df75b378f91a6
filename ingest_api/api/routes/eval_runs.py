"""GET /api/eval-runs/{id}, /api/eval-runs/{id}/examples, /api/eval-runs/{id}/slices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ...core.errors import not_found
from ...read import examples
from .. import replies as R
from ..deps import ConnDep
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["eval-runs"])

RunId = Annotated[str, Path(min_length=1, max_length=256, description="eval run id")]
Label = Annotated[str | None, Query(min_length=1, max_length=500)]


@router.get("/eval-runs/{eval_run_id}", **typed(R.EvalRunReply))
def get_eval_run(eval_run_id: RunId, conn: ConnDep) -> Response:
    """An eval run's provenance, primary value with its interval, and example counts."""
    out = examples.get_eval_run(conn, eval_run_id)
    if out is None:
        raise not_found("eval_run", eval_run_id)
    return reply({"eval_run": out})


@router.get("/eval-runs/{eval_run_id}/examples", **typed(R.ExamplesReply))
def get_eval_run_examples(
    eval_run_id: RunId, conn: ConnDep,
    correct: Annotated[bool | None, Query(description="only right (true) or wrong (false) examples")] = None,
    topic: Label = None, difficulty: Label = None, subtask: Label = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200,
                                   description="text search in input, output and ground truth")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """A page of a run's examples (filters: correct, topic, difficulty, subtask, text search q)."""
    out = examples.run_examples(conn, eval_run_id, correct=correct, topic=topic, difficulty=difficulty,
                               subtask=subtask, search=q, limit=limit, offset=offset)
    if out is None:
        raise not_found("eval_run", eval_run_id)
    return reply(out)


@router.get("/eval-runs/{eval_run_id}/slices", **typed(R.SlicesReply, {"eval_run_id": "run-1", "total": 300, "correct": 147, "accuracy": 0.49,
    "by_topic": {"geometry": {"total": 100, "correct": 21, "accuracy": 0.21, "mean_score": 0.21,
    "ci_lower": 0.13, "ci_upper": 0.29, "interval_method": "wilson", "failures": 79, "failure_share": 0.52,
    "accuracy_rest": 0.63, "p_vs_rest": 0.0001, "q_vs_rest": 0.001}}, "by_difficulty": {}, "by_subtask": {},
    "failure_concentration": [{"dimension": "topic", "slice": "geometry", "accuracy": 0.21, "accuracy_rest": 0.63,
                               "failure_share": 0.52, "q_value": 0.001}],
    "error_concentration": "failures concentrate in topic 'geometry' (0.210 vs 0.630 elsewhere, 34% of failures, "
                           "q=0.001)"}))
def get_eval_run_slices(
    eval_run_id: RunId, conn: ConnDep,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="false discovery rate for 'worse than the rest'")] = 0.05,
) -> Response:
    """Accuracy with intervals by topic, difficulty and subtask, and where failures concentrate."""
    out = examples.run_slices(conn, eval_run_id, alpha=alpha)
    if out is None:
        raise not_found("eval_run", eval_run_id)
    return reply(out)
