"""GET /api/activity: what happened (ingest, backfill, alerts, acknowledgements, promotions, admin), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from .. import compat
from .. import replies as R
from ..deps import ConnDep
from ..replies import typed

router = APIRouter(prefix="/api", tags=["activity"])


@router.get("/activity", **typed(R.ActivityReply))
def get_activity(
    conn: ConnDep,
    model_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    event_type: Annotated[str | None, Query(min_length=1, max_length=100, description=(
        "only this type: an earlier-dashboard type (eval_completed, regression, improvement, new_best, "
        "promotion_ready, missing_evaluation) or a stored kind (eval_result, backfill, examples, alert, "
        "alert_reopened, alert_resolved, acknowledgement, promotion, admin)"))] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    before_id: Annotated[int | None, Query(ge=1, le=2**62, description="page after this event id")] = None,
    since: Annotated[datetime | None, Query(description="only events at or after this time (ISO 8601)")] = None,
) -> dict:
    """Activity events, newest first (filters: model_id, event_type; pages: limit + offset or before_id).
    `event_type` uses the earlier dashboard's names where one exists, `kind` is the stored kind;
    alert events carry `detail.delta` (new value − previous checkpoint's)."""
    return compat.activity(conn, model_id=model_id, event_type=event_type, limit=limit, offset=offset,
                              before_id=before_id, since=since)
