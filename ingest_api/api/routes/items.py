"""GET /api/models/{id}/slice-trends, /api/models/{id}/items, /api/datasets/{name}/items (issue 17)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from ...read import items
from ..deps import ConnDep
from ..params import ModelId
from ..replies import reply

router = APIRouter(prefix="/api", tags=["items"])

DatasetQ = Annotated[str, Query(min_length=1, max_length=256, description="dataset name, e.g. gsm8k")]
DatasetP = Annotated[str, Path(min_length=1, max_length=256, description="dataset name, e.g. gsm8k")]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]


# ------------------------------------------------------------------ reply models


class SlicePoint(BaseModel):
    checkpoint_id: str
    training_step: int | None
    eval_run_id: str
    slice: str
    n: int
    correct: int
    accuracy: float | None
    ci_lower: float | None
    ci_upper: float | None
    n_graded: int
    score_sum: float
    mean_score: float | None


class SliceTest(BaseModel):
    slice: str
    n_checkpoints: int
    slope_slice: float | None
    slope_rest: float | None
    slope_gap: float | None
    slope_gap_ci_lower: float | None
    slope_gap_ci_upper: float | None
    z: float | None
    p_value: float | None
    q_value: float | None
    verdict: Literal["falls_behind", "pulls_ahead", "moves_with_dataset", "insufficient_data"]


class SliceTrends(BaseModel):
    model_id: str
    dataset_name: str
    dimension: str
    alpha: float
    n_checkpoints: int
    slices: list[str]
    points: list[SlicePoint]
    tests: list[SliceTest]
    interval_method: str
    test: str


class Checkpoint(BaseModel):
    checkpoint_id: str
    training_step: int | None
    eval_run_id: str


class Change(BaseModel):
    training_step: int | None
    checkpoint_id: str
    eval_run_id: str
    previous_eval_run_id: str
    to: Literal["right", "wrong"]


class ItemHistory(BaseModel):
    example_idx: int
    label: Literal["learned", "forgotten", "never", "always", "unstable"]
    n_checkpoints: int
    n_solved: int
    pass_rate: float
    first_step_solved: int | None
    first_checkpoint_solved: str | None
    last_lost_step: int | None
    last_lost_checkpoint: str | None
    n_flips: int
    solved_at_latest: bool
    topic: str | None
    difficulty: str | None
    subtask: str | None
    input_preview: str | None
    changes: list[Change]


class ModelItems(BaseModel):
    model_id: str
    dataset_name: str
    n_checkpoints: int
    checkpoints: list[Checkpoint]
    label_counts: dict[str, int]
    label: str | None
    sort: str
    total: int
    limit: int
    offset: int
    items: list[ItemHistory]


class DatasetItem(BaseModel):
    example_idx: int
    n_runs: int
    n_solved: int
    pass_rate: float
    n_models: int
    models_solved: list[str]
    n_strong_runs: int
    n_strong_models: int
    suspect_label: bool
    false_positive_bound: float | None
    topic: str | None
    difficulty: str | None
    subtask: str | None
    input_preview: str | None


class SuspectRule(BaseModel):
    strong_min: float
    p_min: float
    fp: float
    strong_runs_needed: int
    text: str


class DatasetItems(BaseModel):
    dataset_name: str
    n_runs: int
    n_models: int
    n_strong_runs: int
    n_items: int
    n_never_solved: int
    n_suspect: int
    rule: SuspectRule
    suspect_only: bool
    sort: str
    total: int
    limit: int
    offset: int
    items: list[DatasetItem]


# ------------------------------------------------------------------ routes


@router.get("/models/{model_id}/slice-trends", responses={200: {"model": SliceTrends}})
def get_slice_trends(
    model_id: ModelId, dataset: DatasetQ, conn: ConnDep,
    dimension: Annotated[Literal["topic", "difficulty", "subtask"], Query(description="slice dimension")] = "topic",
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="false discovery rate across slices")] = 0.05,
) -> Response:
    """Accuracy per checkpoint × slice with Wilson intervals, and per slice a test of whether it moves
    differently from the rest of the dataset over training (BH across slices)."""
    return reply(items.slice_trends(conn, model_id, dataset, dimension, alpha=alpha))


@router.get("/models/{model_id}/items", responses={200: {"model": ModelItems}})
def get_model_items(
    model_id: ModelId, dataset: DatasetQ, conn: ConnDep,
    label: Annotated[Literal["learned", "forgotten", "never", "always", "unstable"] | None,
                     Query(description="only items with this stability label")] = None,
    limit: Limit = 100, offset: Offset = 0,
    sort: Annotated[Literal["example_idx", "flips", "pass_rate"], Query(
        description="example_idx (default), flips (most first) or pass_rate (lowest first)")] = "example_idx",
) -> Response:
    """Per example across the model's checkpoints: pass rate, first step solved, step last lost, flips,
    stability label, and the checkpoints where its outcome changed (paged)."""
    return reply(items.model_items(conn, model_id, dataset, label=label, limit=limit, offset=offset, sort=sort))


@router.get("/datasets/{dataset_name}/items", responses={200: {"model": DatasetItems}})
def get_dataset_items(
    dataset_name: DatasetP, conn: ConnDep,
    suspect_only: Annotated[bool, Query(description="only items flagged suspect_label")] = False,
    strong_min: Annotated[float, Query(ge=0.5, lt=1, description="accuracy that makes a run strong")] = 0.5,
    p_min: Annotated[float, Query(gt=0, lt=1, description="least per-run solve rate of a solvable item")] = 0.05,
    fp: Annotated[float, Query(gt=0, lt=0.5, description="false-positive bound of the suspect flag")] = 0.01,
    limit: Limit = 100, offset: Offset = 0,
    sort: Annotated[Literal["example_idx", "pass_rate"], Query(description="example_idx or pass_rate")]
    = "example_idx",
) -> Response:
    """Per example across every model and checkpoint that has it: pass rate, models that ever solved it,
    and suspect_label (never solved although many strong runs tried it)."""
    return reply(items.dataset_items(conn, dataset_name, strong_min=strong_min, p_min=p_min, fp=fp,
                                     suspect_only=suspect_only, limit=limit, offset=offset, sort=sort))
