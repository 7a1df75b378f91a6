"""GET /api/models, /api/models/{id}, /api/models/{id}/scores, /api/models/{id}/diagnosis."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ...core.errors import not_found
from ...read import catalog, diagnosis
from .. import compat
from .. import replies as R
from ..deps import ConnDep
from ..params import ModelId
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["models"])

ModelType = Annotated[Literal["training", "baseline"] | None, Query(description="only this model type")]
Owner = Annotated[str | None, Query(min_length=1, max_length=200, description="only this owner")]


_MODEL_EX = {"model_id": "k2-think-v2", "display_name": "K2 Think v2", "model_type": "training", "owner": "varad",
             "param_count": 32000000000, "is_pinned": False, "created_at": "2026-11-26T12:00:00+00:00",
             "n_checkpoints": 100, "latest_checkpoint_id": "k2-think-v2__step-100000", "latest_step": 100000,
             "last_eval_at": "2026-11-26T12:00:00+00:00"}


@router.get("/models", **typed(R.ModelsReply, {"models": [{**_MODEL_EX, "checkpoint_count": 100, "dataset_count": 40}]}))
def get_models(
    conn: ConnDep, model_type: ModelType = None, owner: Owner = None,
    sort: Annotated[Literal["newest", "name"], Query(
        description="newest first (default, as the earlier dashboard) or pinned first then by name")] = "newest",
) -> Response:
    """List models (filters: model_type, owner) with checkpoint and dataset counts and latest checkpoint."""
    return reply({"models": catalog.list_models(conn, model_type=model_type, owner=owner, order=sort,
                                                legacy_keys=True)})


@router.get("/models/{model_id}", **typed(R.ModelReply, {"model": _MODEL_EX, "checkpoints": [
    {"checkpoint_id": "k2-think-v2__step-5000", "model_id": "k2-think-v2", "training_step": 5000,
     "checkpoint_path": "/ckpt/step-5000", "metadata": {}, "training_run": "rl", "recipe_tags": ["rl"],
     "created_at": "2026-11-26T12:00:00+00:00", "n_datasets": 40, "n_completed": 40}]}))
def get_model(model_id: ModelId, conn: ConnDep) -> Response:
    """A model and its checkpoints (step ascending)."""
    out = catalog.get_model(conn, model_id)
    if out is None:
        raise not_found("model", model_id)
    return reply(out)


@router.get("/models/{model_id}/scores", **typed(R.ModelScoresReply, {"model_id": "k2-think-v2", "metrics": "primary",
                                                          "shape": "rows", "count": 1, "scores": [{
    "checkpoint_id": "k2-think-v2__step-5000", "dataset_name": "aime-2026", "metric_name": "accuracy (avg over 32)",
    "metric_value": 0.81, "is_primary": True, "eval_config": {}, "eval_run_id": "run-1", "sample_count": 30,
    "ci_lower": 0.64, "ci_upper": 0.91, "stderr": 0.07, "ingested_at": "2026-11-26T12:00:00+00:00",
    "training_step": 5000, "status": "completed", "is_score": True, "value_note": None}]}))
def get_model_scores(
    model_id: ModelId, conn: ConnDep,
    metrics: Annotated[Literal["primary", "all"], Query(
        description="primary metric only (default, compact) or every metric")] = "primary",
    dataset: Annotated[str | None, Query(min_length=1, max_length=256, description="only this dataset")] = None,
    min_step: Annotated[int | None, Query(ge=0, description="only checkpoints at or after this step")] = None,
    max_step: Annotated[int | None, Query(ge=0, description="only checkpoints at or before this step")] = None,
    shape: Annotated[Literal["rows", "columns"], Query(
        description="rows: `scores` as objects (default); columns: `columns` + `rows` arrays, about 40% of the size")
    ] = "rows",
) -> Response:
    """Current results of every checkpoint of a model, with training_step (primary metric unless metrics=all)."""
    out = catalog.model_scores_json(conn, model_id, metrics=metrics, dataset=dataset, min_step=min_step,
                                    max_step=max_step, shape=shape)
    if out is None:
        raise not_found("model", model_id)
    return Response(out, media_type="application/json")


@router.get("/models/{model_id}/diagnosis", **typed(R.DiagnosisReply, {
    "model_id": "k2-think-v2", "display_name": "K2 Think v2", "model_type": "training",
    "latest_checkpoint": "k2-think-v2__step-100000", "latest_step": 100000, "best_overall_step": 96000,
    "best_overall": {"checkpoint_id": "k2-think-v2__step-96000", "training_step": 96000, "mean_score": 0.61,
                     "n_datasets": 38, "common_datasets": ["aime-2026", "..."], "n_checkpoints_compared": 40,
                     "n_checkpoints_excluded": 60},
    "best_per_dataset": {"aime-2026": 98000},
    "scores": {"aime-2026": {"value": 0.81, "metric_name": "accuracy (avg over 32)", "ci_lower": 0.64,
                             "ci_upper": 0.92, "stderr": 0.07, "n": 30, "sample_count": 30,
                             "interval_method": "bootstrap", "is_higher_better": True,
                             "checkpoint_id": "k2-think-v2__step-100000", "training_step": 100000,
                             "baseline_best": 0.77, "baseline_model": "GPT-4o", "baseline_model_id": "gpt-4o",
                             "gap": 0.04, "significance": "likely_noise", "test": "mcnemar_midp", "p_value": 0.69,
                             "effect": 0.04, "effect_ci_lower": -0.1, "effect_ci_upper": 0.17,
                             "q_value": 0.83, "trend": "up_slow",
                             "trend_detail": {"label": "up_slow", "n_points": 5, "slope_per_1k_steps": 0.001,
                                              "slope_ci_lower": -0.001, "slope_ci_upper": 0.003, "p_value": 0.2},
                             "baselines": []}},
    "best_per_dataset_detail": {"aime-2026": {"training_step": 98000, "checkpoint_id": "k2-think-v2__step-98000",
                                              "value": 0.84, "n_checkpoints_scored": 100}},
    "alpha": 0.05, "correction": "benjamini_hochberg across datasets", "trend_window": 5}))
def get_model_diagnosis(
    model_id: ModelId, conn: ConnDep,
    window: Annotated[int, Query(ge=3, le=50, description="checkpoints in the trend fit")] = 5,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="false discovery rate for significance")] = 0.05,
    paired: Annotated[bool, Query(description="paired test (McNemar) when both sides have example rows")] = True,
) -> Response:
    """Gap to baselines per dataset (tested, BH-corrected), trends from fitted slopes, best checkpoints."""
    out = diagnosis.diagnosis(conn, model_id, window=window, alpha=alpha, paired=paired)
    if out is None:
        raise not_found("model", model_id)
    return reply(compat.diagnosis_reply(out))
