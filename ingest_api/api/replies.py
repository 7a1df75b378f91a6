"""The 200 replies of every API operation, as pydantic models: they make the OpenAPI document typed.

The routes declare these with `typed(Model)` (documentation only): the read path builds its replies
from raw rows and serialises them once with orjson, so a reply is not validated or re-serialised at
run time. Conformance is checked by the tests instead (tests/test_reply_schemas.py validates a reply
of every operation on a populated database; tests/test_fuzz_openapi.py checks every fuzzed reply).

Every model allows keys beyond the declared ones (replies may grow). The declared keys are the ones
clients read, among them the earlier dashboard's (formats.md §6). Keys that can be absent or null
in some state are declared nullable, so the schema is true in every state, not only a typical one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from ..core.jsonout import dumps

Num = float | None
Int = int | None
Str = str | None
Obj = dict[str, Any]
Stamp = datetime | None

ModelType = Literal["training", "baseline"]
ScoreChoice = Literal["latest", "best", "step"]
# Label vocabularies that may grow (a new label is an added value, not a new key): documented, not
# enumerated, so a client generated from the schema does not reject a label it does not know yet.
Significance = Annotated[str, Field(description="likely_real, likely_noise, uncertain or insufficient_data "
                                                "(more labels may be added)")]
Direction = Annotated[str, Field(description="improved, regressed, unchanged or missing (more may be added)")]
Trend = Annotated[str, Field(description="up, down, up_slow, down_slow, flat or new")]
AlertType = Annotated[str, Field(description="regression, improvement, new_best, promotion_ready, "
                                             "missing_evaluation (more may be added)")]
CellStatus = Annotated[str, Field(description="a run status (completed, pending, running, failed, invalidated), "
                                              "stale or missing")]


def reply(obj: Any, status_code: int = 200) -> Response:
    """A JSON reply serialised once, compactly (no per-field validation pass)."""
    return Response(dumps(obj), status_code=status_code, media_type="application/json")


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


def typed(model: type[BaseModel], example: dict | None = None) -> dict:
    """Route decorator arguments declaring `model` as the 200 reply, for documentation only:
    FastAPI does not validate or re-serialise the reply (response_model=None); the route returns
    a Response (or a dict FastAPI encodes as it is)."""
    ok: dict[str, Any] = {"model": model, "description": (model.__doc__ or "OK").strip().splitlines()[0]}
    if example is not None:
        ok["content"] = {"application/json": {"example": example}}
    return {"response_model": None, "responses": {200: ok}}


# ------------------------------------------------------------------ health and ingest


class HealthReply(Reply):
    """The API and its database are up."""
    ok: bool
    status: str
    database: str
    version: str
    alerts_pending: Int = Field(None, description="alert checks queued and not judged yet")
    alerts_lag_s: Num = Field(None, description="age of the oldest queued alert check, in seconds")


# ------------------------------------------------------------------ models and checkpoints


class ModelItem(Reply):
    """A model with its checkpoint count and latest checkpoint."""
    model_id: str
    display_name: str
    model_type: ModelType
    owner: Str
    param_count: Int
    is_pinned: bool
    created_at: datetime
    updated_at: Stamp = None
    n_checkpoints: int
    latest_checkpoint_id: Str
    latest_step: Int
    last_eval_at: Stamp


class ModelListItem(ModelItem):
    """A model of the list, with the earlier dashboard's counts."""
    checkpoint_count: int = Field(description="same as n_checkpoints (the earlier dashboard's name)")
    dataset_count: int = Field(description="datasets with a current eval run")


class ModelsReply(Reply):
    """Models, newest first unless sort=name."""
    models: list[ModelListItem]


class CheckpointItem(Reply):
    """A checkpoint with its dataset counts."""
    checkpoint_id: str
    model_id: str
    training_step: Int
    checkpoint_path: Str
    metadata: Obj | None
    training_run: Str
    recipe_tags: list[str] | None
    created_at: datetime
    updated_at: Stamp = None
    n_datasets: Int = None
    n_completed: Int = None
    last_eval_at: Stamp = None


class ModelReply(Reply):
    """A model and its checkpoints (step ascending)."""
    model: ModelItem
    checkpoints: list[CheckpointItem]


class ResultItem(Reply):
    """One metric of a current eval run."""
    checkpoint_id: str
    dataset_name: str
    metric_name: str
    metric_value: Num
    is_primary: bool
    eval_config: Obj | None
    eval_run_id: str
    sample_count: Int
    ci_lower: Num
    ci_upper: Num
    stderr: Num
    ingested_at: datetime
    training_step: Int
    status: str
    is_score: bool
    value_note: Str


class ModelScoresReply(Reply):
    """Results of every checkpoint of a model: `scores` (shape=rows) or `columns` + `rows` (shape=columns)."""
    model_id: str
    metrics: Literal["primary", "all"]
    shape: Literal["rows", "columns"]
    count: int
    scores: list[ResultItem] | None = None
    columns: list[str] | None = None
    rows: list[list[Any]] | None = None


class CheckpointReply(Reply):
    """A checkpoint and every metric of its current eval runs."""
    checkpoint: CheckpointItem
    eval_results: list[ResultItem]


class StatTest(Reply):
    p_value: Num
    effect: Num = None
    effect_ci_lower: Num
    effect_ci_upper: Num
    test: Str


class BaselineGap(StatTest):
    model_id: str
    display_name: Str
    value: Num
    metric_name: Str
    n: Int
    ci_lower: Num
    ci_upper: Num
    gap: Num
    q_value: Num
    significance: Significance


class TrendDetail(Reply):
    label: str
    n_points: int
    slope_per_1k_steps: Num = None
    slope_ci_lower: Num = None
    slope_ci_upper: Num = None
    p_value: Num = None


class DiagnosisScore(StatTest):
    value: Num
    metric_name: str
    ci_lower: Num
    ci_upper: Num
    stderr: Num
    n: Int
    sample_count: Int = Field(description="same as n (the earlier dashboard's name)")
    interval_method: Str
    checkpoint_id: str
    training_step: Int
    is_higher_better: bool
    baseline_best: Num
    baseline_model: Str = Field(description="display name of the best baseline (as the earlier dashboard)")
    baseline_model_id: Str = Field(description="model id of the best baseline")
    gap: Num
    significance: Significance
    q_value: Num
    trend: Trend
    trend_detail: TrendDetail
    baselines: list[BaselineGap]


class BestOverall(Reply):
    checkpoint_id: str
    training_step: Int
    mean_score: float
    n_datasets: int
    common_datasets: list[str]
    n_checkpoints_compared: int
    n_checkpoints_excluded: int


class BestPerDataset(Reply):
    training_step: Int
    checkpoint_id: str
    value: Num
    n_checkpoints_scored: Int


class DiagnosisReply(Reply):
    """Per dataset: gap to baselines (tested, BH-corrected), trend, best checkpoints."""
    model_id: str
    display_name: str
    model_type: ModelType
    latest_checkpoint: Str
    latest_step: Int
    best_overall_step: Int
    best_overall: BestOverall | None
    best_per_dataset: dict[str, Int]
    best_per_dataset_detail: dict[str, BestPerDataset]
    alpha: float
    correction: str
    trend_window: int
    scores: dict[str, DiagnosisScore]


class PromotionRuleStatus(Reply):
    rule_name: str
    passed: bool
    failures: list[str]
    description: Str
    datasets: list[str] | None = None
    conditions: list[Obj] | None = None


class PromotionStatusReply(Reply):
    """Is the checkpoint ready to promote, and why."""
    model_id: str
    checkpoint_id: Str
    training_step: Int
    overall: Literal["ready", "blocked", "no_rules", "no_data"]
    rules: list[PromotionRuleStatus]
    promoted: bool
    promoted_at: Stamp


# ------------------------------------------------------------------ diff


class CheckpointRef(Reply):
    checkpoint_id: str
    model_id: str
    training_step: Int


class DiffItem(Reply):
    dataset_name: str
    score_a: Num
    score_b: Num
    delta: Num = Field(description="score_b − score_a")
    metric_name: Str
    n_a: Int
    n_b: Int
    ci_a: list[Num] | None
    ci_b: list[Num] | None
    eval_run_id_a: Str
    eval_run_id_b: Str
    is_higher_better: bool
    p_value: Num
    q_value: Num
    effect_ci_lower: Num
    effect_ci_upper: Num
    test: Str
    significance: Significance
    direction: Direction
    delta_ci_lower: Num = None
    delta_ci_upper: Num = None
    n_paired: Int = None
    n_right_to_wrong: Int = None
    n_wrong_to_right: Int = None
    flips: list[Obj] | None = None


class DiffSummary(Reply):
    total: int
    improved: int
    regressed: int
    unchanged: int
    missing: int


class DiffReply(Reply):
    """Per dataset b − a with interval and BH-corrected significance."""
    checkpoint_a: CheckpointRef
    checkpoint_b: CheckpointRef
    alpha: float
    correction: str
    datasets: list[DiffItem]
    summary: DiffSummary


# ------------------------------------------------------------------ datasets, leaderboard, filters


class DatasetDetail(Reply):
    dataset_name: str
    category: Str
    subcategory: Str
    primary_metric: Str
    is_higher_better: bool | None
    chance_level: Num
    description: Str
    n_models: Int
    n_scores: Int


class DatasetsReply(Reply):
    """Dataset names, with details."""
    datasets: list[str]
    details: list[DatasetDetail]


class ScoreCell(Reply):
    """A chosen score with n, interval and where it comes from."""
    model_id: str
    dataset_name: str
    model_type: ModelType
    display_name: str
    owner: Str
    checkpoint_id: Str
    training_step: Int
    eval_run_id: Str
    metric_name: Str
    metric_value: Num
    score: Num
    n: Int
    ci_lower: Num
    ci_upper: Num
    stderr: Num
    interval_method: Str
    n_checkpoints_scored: Int = None
    score_choice: ScoreChoice | None = None
    note: Str = None


class LeaderboardItem(ScoreCell):
    rank: int
    tie_group: int
    is_tied: bool
    p_vs_group_leader: Num


class LeaderboardReply(Reply):
    """Models ranked by the chosen score on one dataset, with statistical tie groups."""
    dataset_name: str
    score_choice: ScoreChoice
    step: Int
    is_higher_better: bool
    tie_rule: str
    leaderboard: list[LeaderboardItem]
    suite_id: Str = None


class FiltersReply(Reply):
    """Distinct values for dropdowns."""
    owners: list[str]
    model_types: list[str]
    datasets: list[str]
    categories: list[str]
    suites: list[str]
    score_choices: list[ScoreChoice]


# ------------------------------------------------------------------ heatmap, suites, compare


class HeatmapModel(Reply):
    model_id: str
    display_name: str
    model_type: ModelType
    owner: Str
    is_pinned: bool | None = None
    latest_step: Int = None


class HeatmapCell(Reply):
    score: Num
    status: CellStatus
    eval_run_id: Str
    checkpoint_id: Str
    training_step: Int
    metric_name: Str
    n: Int
    ci_lower: Num
    ci_upper: Num
    interval_method: Str


class Coverage(Reply):
    evaluated: int
    total: int
    missing: list[str]
    fraction: Num
    by_status: dict[str, int]


class HeatmapReply(Reply):
    """Models × datasets: the chosen score per cell, status, coverage, categories."""
    score_choice: ScoreChoice
    step: Int
    models: list[HeatmapModel]
    datasets: list[str]
    matrix: dict[str, dict[str, HeatmapCell]]
    coverage: dict[str, Coverage]
    categories: dict[str, list[str]]
    suite_id: Str = None


class SuiteItem(Reply):
    suite_id: str
    display_name: str
    description: Str
    dataset_names: list[str]
    created_at: datetime
    updated_at: Stamp = None
    n_datasets: Int = None


class SuitesReply(Reply):
    """Evaluation suites."""
    suites: list[SuiteItem]


class CurvePoint(Reply):
    checkpoint_id: str
    training_step: Int
    metric_value: Num
    metric_name: Str = None
    n: Int = None
    ci_lower: Num = None
    ci_upper: Num = None
    interval_method: Str = None


class CompareModel(Reply):
    model_id: str
    display_name: str
    model_type: ModelType
    data_points: list[CurvePoint]


class CategoryScore(Reply):
    mean: Num
    stderr: Num = None
    ci_lower: Num = None
    ci_upper: Num = None
    n_datasets: Int = None
    datasets: list[str]


class Profile(Reply):
    model_id: str
    display_name: str
    model_type: ModelType
    categories: dict[str, CategoryScore]


class CompareReply(Reply):
    """Training curves on one dataset (`dataset` set), or category profiles (`profiles`)."""
    dataset: Str
    common_only: bool
    models: list[CompareModel]
    score_choice: ScoreChoice | None = None
    profiles: list[Profile] | None = None


# ------------------------------------------------------------------ eval runs and examples


class Interval(Reply):
    n: Int
    ci_lower: Num
    ci_upper: Num
    stderr: Num = None
    interval_method: Str


class EvalRun(Reply):
    eval_run_id: str
    model_id: str
    checkpoint_id: str
    dataset_name: str
    training_step: Int
    status: str
    is_current: bool
    primary_metric: Str
    primary_value: Num
    sample_count: Int
    eval_config: Obj | None
    metadata: Obj | None
    harness_commit: Str
    grader_type: Str
    grader_version: Str
    prompt_template: Str
    inference_config: Obj | None
    dataset_version: Str
    dataset_split: Str
    seed: Int
    error_message: Str
    n_examples: Int
    n_correct: Int
    accuracy: Num
    interval: Interval
    created_at: datetime


class EvalRunReply(Reply):
    """An eval run's provenance, primary value with its interval, and example counts."""
    eval_run: EvalRun


class ExampleItem(Reply):
    id: int
    eval_run_id: str
    example_idx: int
    correct: bool | None
    score: Num
    input_preview: Str
    output_preview: Str
    ground_truth: Str
    error_tag: Str
    difficulty: Str
    topic: Str
    subtask: Str
    metadata: Obj | None


class ExamplesReply(Reply):
    """A page of a run's examples."""
    eval_run_id: str
    total: int
    correct_count: int
    accuracy: Num
    limit: int
    offset: int
    examples: list[ExampleItem]


class SliceStats(Reply):
    total: int
    correct: int
    accuracy: Num
    mean_score: Num
    ci_lower: Num
    ci_upper: Num
    interval_method: Str
    failures: int
    failure_share: Num
    accuracy_rest: Num
    p_vs_rest: Num
    q_vs_rest: Num


class FailureSpot(Reply):
    dimension: str
    slice: str
    accuracy: Num
    accuracy_rest: Num
    failure_share: Num
    q_value: Num


class SlicesReply(Reply):
    """Accuracy by topic, difficulty and subtask, and where failures concentrate."""
    eval_run_id: str
    total: int
    correct: int
    accuracy: Num
    by_topic: dict[str, SliceStats]
    by_difficulty: dict[str, SliceStats]
    by_subtask: dict[str, SliceStats]
    error_concentration: str
    failure_concentration: list[FailureSpot]


# ------------------------------------------------------------------ alerts and activity


class AlertItem(Reply):
    id: int
    alert_type: AlertType
    model_id: str
    checkpoint_id: str
    training_step: Int = None
    dataset_name: Str
    severity: Literal["critical", "warning", "info"]
    message: str
    detail: Obj | None
    acknowledged: bool
    acknowledged_by: Str = None
    acknowledged_at: Stamp = None
    status: Str = None
    resolved_at: Stamp = None
    created_at: datetime
    updated_at: Stamp = None


class AlertsReply(Reply):
    """Alerts, newest first."""
    alerts: list[AlertItem]
    total: int
    limit: int
    offset: int
    status: Literal["open", "resolved", "all"]


class AckReply(Reply):
    """The alert is acknowledged (again: unchanged)."""
    ok: bool
    alert_id: int
    acknowledged: bool
    acknowledged_by: Str
    acknowledged_at: Stamp
    already_acknowledged: bool | None = None


class ActivityItem(Reply):
    id: int
    event_type: str = Field(description="the earlier dashboard's type where one exists (eval_completed, "
                                        "regression, improvement, …), else the stored kind")
    kind: str = Field(description="the stored kind (eval_result, backfill, examples, alert, …)")
    model_id: Str
    checkpoint_id: Str
    dataset_name: Str
    actor: Str
    summary: str
    detail: Obj | None = Field(description="on alert events: value, previous_value and delta (= value − "
                                           "previous_value)")
    created_at: datetime


class ActivityReply(Reply):
    """Activity events, newest first."""
    events: list[ActivityItem]
    total: int
    limit: int
    offset: int
    next_before_id: Int


# ------------------------------------------------------------------ admin writes and lists


class OkReply(Reply):
    ok: bool


class SuiteWriteReply(OkReply):
    """The suite is stored."""
    suite_id: str
    created: bool | None = None
    dataset_names: list[str] | None = None


class BenchmarksWriteReply(OkReply):
    """Benchmark metadata is stored."""
    count: int
    dataset_names: list[str] | None = None


class RuleWriteReply(OkReply):
    """The promotion rule is stored."""
    rule_name: str
    created: bool | None = None


class RuleItem(Reply):
    rule_name: str
    model_id: Str
    suite_id: Str
    dataset_names: list[str] | None = None
    min_scores: dict[str, float]
    min_category_scores: dict[str, float] | None = None
    baseline_model_id: Str = None
    baseline_margin: Num = None
    no_regressions: bool
    description: Str
    created_at: Stamp = None
    updated_at: Stamp = None


class RulesReply(Reply):
    """The promotion rules."""
    rules: list[RuleItem]


class RuleDeleteReply(OkReply):
    """The rule is deleted (or was not there)."""
    rule_name: str
    deleted: Any


class WebhookItem(Reply):
    id: int
    url: str
    events: list[str]
    active: bool
    description: Str = None
    created_at: Stamp = None
    updated_at: Stamp = None
    n_delivered: Int = None
    n_failed: Int = None
    n_pending: Int = None


class WebhookWriteReply(OkReply):
    """The webhook is registered; `secret` is shown this once."""
    id: int
    secret: Str = None
    webhook: WebhookItem | None = None


class WebhooksReply(Reply):
    """Webhooks with their delivery counts."""
    webhooks: list[WebhookItem]


class WebhookActiveReply(OkReply):
    """The webhook's new state."""
    id: int
    active: bool
    changed: bool | None = None


class Delivery(Reply):
    id: int
    event_type: str
    status: str
    n_attempts: int
    next_attempt_at: Stamp = None
    last_status_code: Int = None
    last_error: Str = None
    created_at: datetime
    delivered_at: Stamp = None
    payload: Any = None
    attempts: list[Obj]


class DeliveriesReply(Reply):
    """A webhook's delivery log, newest first."""
    webhook_id: int
    deliveries: list[Delivery]


class ModelPatchReply(OkReply):
    """The model after the edit."""
    model_id: str
    changed: list[str] | None = None
    model: Obj | None = None


class DeleteReply(OkReply):
    """What was deleted, counted per kind."""
    deleted: dict[str, int]
    model_id: Str = None
    checkpoint_id: Str = None
