"""Pydantic models in (request bodies) and out (replies)."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..core.ids import Ident
from .metrics import default_primary, is_unit_interval_metric
from .naming import posted_step

MAX_INT4 = 2**31 - 1
MAX_INT8 = 2**63 - 1

# Ids appear in URL paths: no whitespace, slashes, or URL metacharacters.
ShortText = Annotated[str, Field(max_length=1000)]
LongText = Annotated[str, Field(max_length=200_000)]


def _no_nul(v: Any, path: str = "") -> Any:
    """Postgres text/jsonb cannot hold NUL; JSON objects cannot hold NaN. Reject / clean recursively."""
    if isinstance(v, str):
        if "\x00" in v:
            raise ValueError(f"{path or 'value'} contains a NUL character")
        return v
    if isinstance(v, dict):
        return {_no_nul(str(k), path): _no_nul(x, f"{path}.{k}" if path else str(k)) for k, x in v.items()}
    if isinstance(v, list):
        return [_no_nul(x, f"{path}[{i}]") for i, x in enumerate(v)]
    return v


def _json_safe(v: Any) -> Any:
    """jsonb holds no NaN/Infinity: free-form objects keep such values as null."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v



# jsonb keeps a number as a decimal: a float of 2^63 or more comes back as an integer past 64 bits,
# which no reply can carry (the same hole as such an integer posted as is; README, "Validation rules").
_JSON_FLOAT_LIMIT = 2.0**63


def _json_readable(v: Any, path: str) -> Any:
    """Refuse numbers a free-form JSON object could not be read back with (ValueError naming the path)."""
    stack = [(v, path)]
    while stack:
        x, where = stack.pop()
        if isinstance(x, float) and math.isfinite(x) and abs(x) >= _JSON_FLOAT_LIMIT:
            raise ValueError(f"{where}: number {x!r} is too large to store in a JSON object field "
                             "(magnitude must be below 2^63); send it as a string")
        if isinstance(x, dict):
            stack.extend((y, f"{where}.{k}") for k, y in x.items())
        elif isinstance(x, list):
            stack.extend((y, f"{where}[{i}]") for i, y in enumerate(x))
    return v


def _metric_value(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError("metric values must be numbers, not booleans")  # noqa: TRY004 - pydantic wants ValueError
    if isinstance(v, (int, float)):
        return float(v) if not isinstance(v, int) or abs(v) < 1e308 else float("inf")
    if isinstance(v, str):
        s = v.strip().lower()
        if s in {"nan", "+nan", "-nan"}:
            return float("nan")
        if s in {"inf", "+inf", "infinity", "+infinity"}:
            return float("inf")
        if s in {"-inf", "-infinity"}:
            return float("-inf")
        try:
            return float(s)
        except ValueError:
            raise ValueError(f"metric value {v!r} is not a number") from None
    raise ValueError("metric values must be numbers")


MetricValue = Annotated[float | None, BeforeValidator(_metric_value)]


class _In(BaseModel):
    # Unknown keys are ignored so that newer schedulers keep working against this server.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return _no_nul(data)
        return data


class EvalResultIn(_In):
    """One (checkpoint, dataset) result as the Eval360-V2 scheduler posts it."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{
                "model_id": "k2-think-v2", "display_name": "K2 Think v2", "owner": "varad",
                "checkpoint_id": "k2-think-v2__step-5000", "dataset_name": "aime-2026",
                "metrics": {"accuracy (avg over 32)": 0.8145833333333333,
                            "bootstrap_std (avg over 32)": 0.0553745659313310,
                            "accuracy (pass@1)": 0.8145833333333333},
                "model_type": "training", "training_step": 5000, "sample_count": 30,
            }]
        },
    )

    model_id: Ident
    display_name: Annotated[str, Field(min_length=1, max_length=300)]
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    checkpoint_id: Ident
    dataset_name: Ident
    metrics: dict[Annotated[str, Field(min_length=1, max_length=300)], MetricValue]

    model_type: Literal["training", "baseline"] = "training"
    training_step: Annotated[int, Field(ge=0, le=MAX_INT8)] | None = None
    checkpoint_path: Annotated[str, Field(max_length=4096)] | None = None
    primary_metric: Annotated[str, Field(max_length=300)] | None = None
    eval_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    eval_run_id: Ident | None = None
    harness_commit: ShortText | None = None
    grader_type: ShortText | None = None
    grader_version: ShortText | None = None
    prompt_template: LongText | None = None
    inference_config: dict[str, Any] | None = None
    dataset_version: ShortText | None = None
    dataset_split: Annotated[str, Field(min_length=1, max_length=200)] = "test"
    sample_count: Annotated[int, Field(ge=0, le=MAX_INT4)] | None = None
    seed: Annotated[int, Field(ge=-MAX_INT8, le=MAX_INT8)] | None = None
    status: Literal["pending", "running", "completed", "failed", "invalidated"] = "completed"
    error_message: LongText | None = None
    training_run: ShortText | None = None
    recipe_tags: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=200)
    ci_lower: float | None = None
    ci_upper: float | None = None
    stderr: float | None = None
    category: ShortText | None = None
    subcategory: ShortText | None = None
    param_count: Annotated[int, Field(ge=0, le=MAX_INT8)] | None = None

    @field_validator("metrics")
    @classmethod
    def _metrics_nonempty(cls, v: dict) -> dict:
        if not v:
            raise ValueError("must hold at least one metric")
        return v  # at most EVAL360_MAX_METRICS: checked by the route (api/routes/ingest.py)

    @field_validator("metrics")
    @classmethod
    def _proportions_in_unit_interval(cls, v: dict) -> dict:
        for name, x in v.items():
            if x is not None and math.isfinite(x) and is_unit_interval_metric(name) and not 0.0 <= x <= 1.0:
                raise ValueError(f"metric {name!r} = {x!r} is outside [0, 1]: its name says it is a proportion "
                                 "(accuracy, pass@k, exact match, f1, precision, recall, ...)")
        return v

    @field_validator("training_step")
    @classmethod
    def _step_agrees_with_id(cls, v: int | None, info: ValidationInfo) -> int | None:
        cid, mid = info.data.get("checkpoint_id"), info.data.get("model_id")
        if v is not None and cid and mid and info.data.get("model_type") != "baseline":
            spelled = posted_step(mid, cid)
            if spelled is not None and spelled != v:
                raise ValueError(f"checkpoint_id {cid!r} says step {spelled} but training_step is {v}")
        return v

    @field_validator("eval_config", "metadata", "inference_config")
    @classmethod
    def _json_objects(cls, v: dict | None, info: ValidationInfo) -> dict | None:
        return None if v is None else _json_readable(_json_safe(v), info.field_name)

    @field_validator("ci_lower", "ci_upper", "stderr")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        return v if v is None or math.isfinite(v) else None

    @field_validator("ci_lower", "ci_upper")
    @classmethod
    def _interval_holds_its_value(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is None or not math.isfinite(v):
            return v
        name = info.field_name
        lo = info.data.get("ci_lower")
        if name == "ci_upper" and lo is not None and lo > v:
            raise ValueError(f"ci_upper {v!r} is below ci_lower {lo!r}")
        metrics = info.data.get("metrics") or {}
        primary = info.data.get("primary_metric") or (default_primary(list(metrics)) if metrics else None)
        value = metrics.get(primary)
        if value is not None and math.isfinite(value) and (v > value if name == "ci_lower" else v < value):
            raise ValueError(f"{name} {v!r} is {'above' if name == 'ci_lower' else 'below'} the value of "
                             f"{primary!r} ({value!r}): an interval must contain its value")
        return v

    @field_validator("stderr")
    @classmethod
    def _stderr_not_negative(cls, v: float | None) -> float | None:
        if v is not None and math.isfinite(v) and v < 0:
            raise ValueError(f"stderr {v!r} is negative")
        return v

    @model_validator(mode="after")
    def _primary_known(self) -> EvalResultIn:
        if self.primary_metric is not None and self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not one of the posted metrics")
        if self.ci_lower is not None and self.ci_upper is not None and self.ci_lower > self.ci_upper:
            raise ValueError("ci_lower must not exceed ci_upper")
        return self


class EvalResultOut(BaseModel):
    ok: bool = True
    checkpoint_id: str
    dataset_name: str
    eval_run_id: str
    model_id: str
    training_step: int | None = None
    posted_checkpoint_id: str
    is_new_run: bool
    is_current: bool
    n_metrics: int
    metrics_without_value: list[str] = []


class EvalResultBatchIn(_In):
    """Many results in one call (the backfill): stored in one transaction, all or nothing."""

    results: list[EvalResultIn] = Field(min_length=1, max_length=5000)
    source: Literal["api", "backfill", "demo"] = "api"


class EvalResultBatchOut(BaseModel):
    ok: bool = True
    count: int
    results: list[EvalResultOut]


def _text(v: Any) -> Any:
    """Ground truths and row fields come as numbers or lists too: keep them as text."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


Text = Annotated[Annotated[str, Field(max_length=100_000)] | None, BeforeValidator(_text)]
Label = Annotated[Annotated[str, Field(max_length=500)] | None, BeforeValidator(_text)]


class ExampleIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    example_idx: Annotated[int, Field(ge=0, le=MAX_INT4)]
    correct: StrictBool | None = None  # true / false / null only: "yes" or 1 is not a boolean
    score: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    input_preview: Text = None
    output_preview: Text = None
    ground_truth: Text = None
    error_tag: Label = None
    topic: Label = None
    difficulty: Label = None
    subtask: Label = None
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_readable(cls, v: dict | None) -> dict | None:
        return None if v is None else _json_readable(v, "metadata")

    @model_validator(mode="after")
    def _graded(self) -> ExampleIn:
        if self.correct is None and self.score is None:
            raise ValueError("needs `correct` (true/false) or `score` (0..1)")
        return self


class ExamplesIn(BaseModel):
    """Per-example results of one eval run (the scheduler sends batches of 100; up to the limit here)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{
            "eval_run_id": "abc123",
            "examples": [{"example_idx": 0, "correct": True, "input_preview": "Solve: What is 2+2?",
                          "output_preview": "The answer is 4.", "ground_truth": "4", "error_tag": None,
                          "topic": "arithmetic", "difficulty": "easy", "subtask": None, "metadata": {}}],
        }]},
    )

    eval_run_id: Ident
    examples: list[ExampleIn]


class ExamplesOut(BaseModel):
    ok: bool = True
    eval_run_id: str
    count: int
