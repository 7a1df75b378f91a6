"""GET /api/heatmap: models × datasets with per-cell status, coverage and categories."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ...core.errors import ApiError, not_found
from ...read import queries
from .. import replies as R
from ..deps import ConnDep
from ..replies import typed
from .models import ScoreQ, StepQ, reply, score_choice

router = APIRouter(prefix="/api", tags=["heatmap"])

CategoryQ = Annotated[str | None, Query(min_length=1, max_length=200, description="only datasets of this category")]
TypeQ = Annotated[Literal["training", "baseline"] | None, Query(description="only this model type")]
OwnerQ = Annotated[str | None, Query(min_length=1, max_length=200, description="only this owner")]


SuiteQ = Annotated[str | None, Query(min_length=1, max_length=256, description="only this suite's datasets")]
SuiteIdQ = Annotated[str | None, Query(min_length=1, max_length=256, deprecated=True,
                                       description="the earlier dashboard's name of `suite` (same meaning)")]


def one_suite(suite: str | None, suite_id: str | None) -> str | None:
    """`suite` or its older name `suite_id`; both given and different is a 422."""
    if suite is not None and suite_id is not None and suite != suite_id:
        raise ApiError(422, f"suite={suite!r} and suite_id={suite_id!r} disagree: give one", field="suite_id")
    return suite if suite is not None else suite_id


def build_heatmap(conn, *, suite_id: str | None, score: str | None, step: int | None, category: str | None,
                  model_type: str | None, owner: str | None, default_score: str = "latest") -> dict:
    suite_datasets = None
    if suite_id is not None:
        suite = queries.get_suite(conn, suite_id)
        if suite is None:
            raise not_found("suite", suite_id)
        suite_datasets = suite["dataset_names"]
    out = queries.heatmap(conn, score=score_choice(score, step, default_score), step=step, suite_datasets=suite_datasets,
                          category=category, model_type=model_type, owner=owner)
    if suite_id is not None:
        out["suite_id"] = suite_id
    return out


@router.get("/heatmap", **typed(R.HeatmapReply, {"score_choice": "best", "step": None, "models": [{"model_id": "k2-think-v2", "display_name": "K2 Think v2",
    "model_type": "training", "owner": "varad"}], "datasets": ["gsm8k"],
    "matrix": {"k2-think-v2": {"gsm8k": {"score": 0.6, "status": "stale", "eval_run_id": "run-1",
                                         "checkpoint_id": "k2-think-v2__step-2000", "training_step": 2000,
                                         "metric_name": "accuracy", "n": 100, "ci_lower": 0.5, "ci_upper": 0.69,
                                         "interval_method": "wilson"}}},
    "coverage": {"k2-think-v2": {"evaluated": 1, "total": 1, "missing": [], "fraction": 1.0,
                                 "by_status": {"stale": 1}}}, "categories": {"math": ["gsm8k"]}}))
def get_heatmap(
    conn: ConnDep, score: ScoreQ = None, step: StepQ = None,
    suite: SuiteQ = None, suite_id: SuiteIdQ = None,
    category: CategoryQ = None, model_type: TypeQ = None, owner: OwnerQ = None,
) -> Response:
    """Models × datasets: chosen score (default best, as the earlier dashboard; latest, or a step, on
    request) with n and interval, status (incl. stale, missing), coverage, categories."""
    return reply(build_heatmap(conn, suite_id=one_suite(suite, suite_id), score=score, step=step,
                               category=category, model_type=model_type, owner=owner, default_score="best"))
