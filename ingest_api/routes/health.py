"""GET /api/health: liveness with the database reachable (200) or not (503)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .. import __version__
from ..errors import error_response

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health")
def health(request: Request):
    """200 with the database reachable, 503 when it is not."""
    try:
        with request.app.state.pool.connection(timeout=2.0) as conn:
            conn.execute("select 1")
            # Alert backlog (issue 14): queued checks not judged yet and the age of the oldest, so
            # "no alerts" can be told from "not judged yet".
            from ..alerts import backlog

            alerts_backlog = backlog(conn)
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        return error_response(503, "database unreachable", code="unavailable")
    return JSONResponse({"ok": True, "status": "ok", "database": "ok", "version": __version__,
                         "alerts_pending": alerts_backlog["pending"], "alerts_lag_s": alerts_backlog["lag_s"]})
