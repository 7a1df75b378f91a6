"""GET /api/checkpoints/{id} and /api/diff (two checkpoints compared)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from .. import queries
from ..deps import ConnDep
from ..errors import not_found
from .models import reply

router = APIRouter(prefix="/api", tags=["checkpoints"])

CkptQ = Annotated[str, Query(min_length=1, max_length=256, description="checkpoint id or a posted alias")]


@router.get("/checkpoints/{checkpoint_id}")
def get_checkpoint(
    checkpoint_id: Annotated[str, Path(min_length=1, max_length=256, description="checkpoint id or alias")],
    conn: ConnDep,
) -> Response:
    """A checkpoint and every metric of its current eval runs."""
    out = queries.get_checkpoint(conn, checkpoint_id)
    if out is None:
        raise not_found("checkpoint", checkpoint_id)
    return reply(out)


@router.get("/diff")
def get_diff(
    conn: ConnDep, checkpoint_a: CkptQ, checkpoint_b: CkptQ,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="false discovery rate for significance")] = 0.05,
    flips_limit: Annotated[int, Query(ge=0, le=500, description="flipped examples listed per dataset")] = 20,
) -> Response:
    """Per-dataset delta b − a with interval and BH-corrected significance; flipped examples when available."""
    for name, ident in (("checkpoint_a", checkpoint_a), ("checkpoint_b", checkpoint_b)):
        if queries.resolve_checkpoint(conn, ident) is None:
            raise not_found(name, ident)
    out = queries.diff_checkpoints(conn, checkpoint_a, checkpoint_b, alpha=alpha, flips_limit=flips_limit)
    if out is None:  # deleted between the two reads
        raise not_found("checkpoint", f"{checkpoint_a} / {checkpoint_b}")
    return reply(out)
