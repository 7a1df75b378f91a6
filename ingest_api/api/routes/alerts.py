"""GET /api/alerts (filters) and POST /api/alerts/{id}/acknowledge (admin token; idempotent)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query

from ...core.auth import AdminAuth
from ...ops import admin
from ...read.alerts import list_alerts
from .. import replies as R
from ..deps import ConnDep
from ..replies import typed

router = APIRouter(prefix="/api", tags=["alerts"])

AlertType = Literal["regression", "improvement", "new_best", "promotion_ready", "missing_evaluation"]


@router.get("/alerts", **typed(R.AlertsReply))
def get_alerts(
    conn: ConnDep,
    model_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    type: Annotated[AlertType | None, Query(description="alert type")] = None,
    alert_type: Annotated[AlertType | None, Query(description="same as `type`")] = None,
    severity: Annotated[Literal["critical", "warning", "info"] | None, Query()] = None,
    acknowledged: Annotated[bool | None, Query()] = None,
    checkpoint_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    dataset_name: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    status: Annotated[Literal["open", "resolved", "all"], Query(
        description="open (default): conditions that hold on the current data; resolved: no longer hold")] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    since: Annotated[datetime | None, Query(description="only alerts raised at or after this time (ISO 8601)")] = None,
) -> dict:
    """Alerts, newest first; filters: model, type, severity, acknowledged, checkpoint, dataset, status, since."""
    return list_alerts(conn, model_id=model_id, alert_type=type or alert_type, severity=severity,
                            acknowledged=acknowledged, checkpoint_id=checkpoint_id, dataset_name=dataset_name,
                            status=status, limit=limit, offset=offset, since=since)


@router.post("/alerts/{alert_id}/acknowledge", **typed(R.AckReply))
def acknowledge(alert_id: Annotated[int, Path(ge=1, le=2**62)], conn: ConnDep, role: AdminAuth,
                body: Annotated[admin.AckIn | None, Body()] = None) -> dict:
    """Acknowledge an alert, recording who and when; acknowledging again changes nothing."""
    by = (body and (body.by or body.acknowledged_by)) or role
    with conn.transaction():
        return admin.acknowledge_alert(conn, alert_id, by, body.note if body else None)
