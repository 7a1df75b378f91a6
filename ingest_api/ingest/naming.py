"""Checkpoint naming: step detection from folder/checkpoint names and the canonical id.

Shared by the ingest API and the backfill so both spell a checkpoint the same way.
"""

from __future__ import annotations

import re

# A trailing number after "-" or "_" (step-5000, checkpoint_0005000, global_step_5000,
# iter_0005000, checkpoint-5000) or glued to "step"/"iter" (step5000). "v2" is no step.
_STEP_RE = re.compile(r"(?:[-_]|step|iter)(\d+)$", re.IGNORECASE)


def detect_step(name: str) -> int | None:
    """Training step encoded at the end of a checkpoint folder or id, else None."""
    name = name.rstrip("/").rsplit("/", 1)[-1]
    m = _STEP_RE.search(name)
    return int(m.group(1)) if m else None


def canonical_checkpoint_id(model_id: str, model_type: str, posted_id: str | None,
                            training_step: int | None) -> tuple[str, int | None]:
    """(canonical id, step). `{model}__baseline` for baselines, `{model}__step-{N}` when a step is known."""
    if model_type == "baseline":
        return f"{model_id}__baseline", None
    step = training_step
    if step is None and posted_id:
        # Only the part after "model__" names the checkpoint: the model id may itself end in digits.
        tail = posted_id.split("__", 1)[1] if "__" in posted_id else posted_id
        if tail != model_id:
            step = detect_step(tail)
    if step is not None:
        return f"{model_id}__step-{step}", step
    return (posted_id or f"{model_id}__unknown"), None


def posted_step(model_id: str, posted_id: str) -> int | None:
    """The step a posted checkpoint id spells (as canonical_checkpoint_id reads it), else None."""
    tail = posted_id.split("__", 1)[1] if "__" in posted_id else posted_id
    return None if tail == model_id else detect_step(tail)


def named_models(model_id: str, posted_id: str) -> list[str]:
    """Other models a posted checkpoint id may name: each prefix before a `__` (`other__step-100` names
    `other`). None when the id is the model's own (`{model_id}` or `{model_id}__…`)."""
    if posted_id == model_id or posted_id.startswith(model_id + "__"):
        return []
    out, pos = [], posted_id.find("__")
    while pos > 0:
        out.append(posted_id[:pos])
        pos = posted_id.find("__", pos + 1)
    return [m for m in dict.fromkeys(out) if m != model_id]
