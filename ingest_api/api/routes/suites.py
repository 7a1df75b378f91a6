"""GET /api/suites and /api/suites/{id}/heatmap."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ...read import queries
from .. import replies as R
from ..deps import ConnDep
from ..replies import typed
from .heatmap import CategoryQ, OwnerQ, TypeQ, build_heatmap
from .models import ScoreQ, StepQ, reply

router = APIRouter(prefix="/api", tags=["suites"])


@router.get("/suites", **typed(R.SuitesReply))
def get_suites(conn: ConnDep) -> Response:
    """Evaluation suites (named sets of datasets)."""
    return reply({"suites": queries.list_suites(conn)})


@router.get("/suites/{suite_id}/heatmap", **typed(R.HeatmapReply))
def get_suite_heatmap(
    suite_id: Annotated[str, Path(min_length=1, max_length=256)], conn: ConnDep,
    score: ScoreQ = None, step: StepQ = None, category: CategoryQ = None, model_type: TypeQ = None,
    owner: OwnerQ = None,
) -> Response:
    """The heatmap restricted to a suite's datasets (in the suite's order); default score best, as /api/heatmap."""
    return reply(build_heatmap(conn, suite_id=suite_id, score=score, step=step, category=category,
                               model_type=model_type, owner=owner, default_score="best"))
