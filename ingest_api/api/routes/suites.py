"""GET /api/suites and /api/suites/{id}/heatmap."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ...core.errors import not_found
from ...read import catalog, heatmap
from .. import replies as R
from ..deps import ConnDep
from ..params import CategoryQ, OwnerQ, ScoreQ, StepQ, TypeQ, score_choice
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["suites"])


@router.get("/suites", **typed(R.SuitesReply))
def get_suites(conn: ConnDep) -> Response:
    """Evaluation suites (named sets of datasets)."""
    return reply({"suites": catalog.list_suites(conn)})


@router.get("/suites/{suite_id}/heatmap", **typed(R.HeatmapReply))
def get_suite_heatmap(
    suite_id: Annotated[str, Path(min_length=1, max_length=256)], conn: ConnDep,
    score: ScoreQ = None, step: StepQ = None, category: CategoryQ = None, model_type: TypeQ = None,
    owner: OwnerQ = None,
) -> Response:
    """The heatmap restricted to a suite's datasets (in the suite's order); default score best, as /api/heatmap."""
    out = heatmap.suite_heatmap(conn, suite_id, score=score_choice(score, step, "best"), step=step,
                                category=category, model_type=model_type, owner=owner)
    if out is None:
        raise not_found("suite", suite_id)
    return reply(out)
