"""GET /api/compare: training curves on one dataset, or each model's category profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ...core.errors import ApiError, not_found
from ...read import catalog, compare
from .. import replies as R
from ..deps import ConnDep
from ..params import ScoreQ, StepQ, score_choice
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["compare"])

MAX_MODELS = 20


@router.get("/compare", **typed(R.CompareReply))
def get_compare(
    conn: ConnDep,
    models: Annotated[str, Query(min_length=1, max_length=5000, description="comma-separated model ids")],
    dataset: Annotated[str | None, Query(min_length=1, max_length=256,
                                         description="curves on this dataset; without it, category profiles")] = None,
    common_only: Annotated[bool, Query(description="curves: only steps every model has; "
                                                   "profile: only datasets every model has")] = False,
    score: ScoreQ = None, step: StepQ = None,
) -> Response:
    """Training curves of several models on one dataset; without `dataset`, mean score per category (radar)."""
    ids = list(dict.fromkeys(m.strip() for m in models.split(",") if m.strip()))
    if not ids:
        raise ApiError(422, "models: give at least one model id (comma-separated)", field="models")
    if len(ids) > MAX_MODELS:
        raise ApiError(422, f"models: at most {MAX_MODELS} models", field="models")
    known = {m["model_id"] for m in catalog.list_models(conn)}
    for m in ids:
        if m not in known:
            raise not_found("model", m)
    if dataset is not None:
        if score is not None or step is not None:
            raise ApiError(422, "score/step choose one point per model: they go with the category profile "
                                "(no `dataset`), not with curves", field="score")
        if not catalog.dataset_exists(conn, dataset):
            raise not_found("dataset", dataset)
        return reply(compare.compare_curves(conn, ids, dataset, common_only=common_only))
    choice = score_choice(score, step)
    out = compare.category_profile(conn, ids, common_only=common_only, score=choice, step=step)
    out.update({"dataset": None, "models": [{k: p[k] for k in ("model_id", "display_name", "model_type")}
                                            | {"data_points": []} for p in out["profiles"]]})
    return reply(out)
