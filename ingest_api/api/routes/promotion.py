"""GET /api/models/{id}/promotion-status: is the latest (or a given) checkpoint ready to promote, and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from ...ops.promotion import promotion_status
from .. import replies as R
from ..deps import ConnDep
from ..replies import typed

router = APIRouter(prefix="/api", tags=["promotion"])


@router.get("/models/{model_id}/promotion-status", **typed(R.PromotionStatusReply))
def get_promotion_status(
    model_id: Annotated[str, Path(min_length=1, max_length=256)],
    conn: ConnDep,
    checkpoint_id: Annotated[str | None, Query(min_length=1, max_length=256,
                                               description="a checkpoint of the model; default the latest")] = None,
) -> dict:
    """Ready / blocked / no_rules / no_data, with every rule's conditions and their numbers."""
    return promotion_status(conn, model_id, checkpoint_id)
