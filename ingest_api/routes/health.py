"""GET /api/health: liveness with the database reachable (200) or not (503)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .. import __version__
from .. import replies as R
from ..errors import error_response
from ..replies import typed

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", **typed(R.HealthReply))
def health(request: Request):
    """200 with the database reachable, 503 when it is not."""
    try:
        with request.app.state.pool.connection(timeout=2.0) as conn:
            conn.execute("select 1")
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        return error_response(503, "database unreachable", code="unavailable")
    return JSONResponse({"ok": True, "status": "ok", "database": "ok", "version": __version__})
