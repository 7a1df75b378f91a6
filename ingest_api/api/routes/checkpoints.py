"""GET /api/checkpoints/{id} and /api/diff (two checkpoints compared)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ...core.errors import not_found
from ...read import catalog, compare
from .. import replies as R
from ..deps import ConnDep
from ..replies import reply, typed

router = APIRouter(prefix="/api", tags=["checkpoints"])

# An alias several models posted names no one checkpoint (catalog.resolve_checkpoint).
_AMBIGUOUS = {409: {"description": "An alias that several models posted: the candidates are listed; use the "
                                   "checkpoint id"}}



def _typed(model, example=None) -> dict:
    """typed(), plus the 409 of an ambiguous alias."""
    out = typed(model, example)
    out["responses"].update(_AMBIGUOUS)
    return out


CkptQ = Annotated[str, Query(min_length=1, max_length=256, description="checkpoint id or a posted alias")]


@router.get("/checkpoints/{checkpoint_id}", **_typed(R.CheckpointReply))
def get_checkpoint(
    checkpoint_id: Annotated[str, Path(min_length=1, max_length=256, description="checkpoint id or alias")],
    conn: ConnDep,
) -> Response:
    """A checkpoint and every metric of its current eval runs."""
    out = catalog.get_checkpoint(conn, checkpoint_id)
    if out is None:
        raise not_found("checkpoint", checkpoint_id)
    return reply(out)


@router.get("/diff", **_typed(R.DiffReply, {"checkpoint_a": {"checkpoint_id": "m__step-1000", "model_id": "m", "training_step": 1000},
    "checkpoint_b": {"checkpoint_id": "m__step-2000", "model_id": "m", "training_step": 2000},
    "alpha": 0.05, "correction": "benjamini_hochberg across datasets",
    "datasets": [{"dataset_name": "gsm8k", "score_a": 0.5, "score_b": 0.6, "delta": 0.1, "significance": "uncertain",
                  "metric_name": "accuracy", "n_a": 100, "n_b": 100, "ci_a": [0.4, 0.6], "ci_b": [0.5, 0.69],
                  "eval_run_id_a": "run-1", "eval_run_id_b": "run-2", "is_higher_better": True,
                  "direction": "unchanged", "effect_ci_lower": 0.01, "effect_ci_upper": 0.19, "n_paired": 100,
                  "test": "mcnemar_midp", "p_value": 0.04, "q_value": 0.08, "delta_ci_lower": 0.01,
                  "delta_ci_upper": 0.19, "n_right_to_wrong": 2, "n_wrong_to_right": 12,
                  "flips": [{"example_idx": 3, "flip": "wrong_to_right"}]}],
    "summary": {"total": 1, "improved": 0, "regressed": 0, "unchanged": 1, "missing": 0}}))
def get_diff(
    conn: ConnDep, checkpoint_a: CkptQ, checkpoint_b: CkptQ,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="false discovery rate for significance")] = 0.05,
    flips_limit: Annotated[int, Query(ge=0, le=500, description="flipped examples listed per dataset")] = 20,
) -> Response:
    """Per-dataset delta b − a with interval and BH-corrected significance; flipped examples when available."""
    for name, ident in (("checkpoint_a", checkpoint_a), ("checkpoint_b", checkpoint_b)):
        if catalog.resolve_checkpoint(conn, ident) is None:
            raise not_found(name, ident)
    out = compare.diff_checkpoints(conn, checkpoint_a, checkpoint_b, alpha=alpha, flips_limit=flips_limit)
    if out is None:  # deleted between the two reads
        raise not_found("checkpoint", f"{checkpoint_a} / {checkpoint_b}")
    return reply(out)
