"""GET /api/heatmap: models × datasets with per-cell status, coverage and categories."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ...core.errors import not_found
from ...read import heatmap
from .. import replies as R
from ..deps import ConnDep
from ..params import CategoryQ, OwnerQ, ScoreQ, StepQ, SuiteIdQ, SuiteQ, TypeQ, one_suite, score_choice
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["heatmap"])


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
    kw = {"score": score_choice(score, step, "best"), "step": step, "category": category,
          "model_type": model_type, "owner": owner}
    sid = one_suite(suite, suite_id)
    if sid is None:
        return reply(heatmap.heatmap(conn, **kw))
    out = heatmap.suite_heatmap(conn, sid, **kw)
    if out is None:
        raise not_found("suite", sid)
    return reply(out)
