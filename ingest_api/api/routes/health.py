"""GET /api/health: 200 while the database answers (even when requests are queued), 503 when it is
unreachable or refuses the credentials, with the pool's load either way."""

from __future__ import annotations

import functools
import threading
import time

import anyio
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from ... import __version__
from ...core.credentials import CredentialSource, is_auth_failure
from ...core.db import checkout, release
from ...read.alerts import backlog
from .. import replies as R
from ..deps import DbGate, QueueTimeout
from ..replies import typed

router = APIRouter(prefix="/api", tags=["health"])

_MESSAGES = {"unreachable": "database unreachable",
             "auth_failed": "database refused the credentials (authentication failed; refreshing did not help)"}
_direct_lock = threading.Lock()
_direct_cache: dict[int, tuple[float, tuple[str, dict | None]]] = {}


def _direct_probe(source: CredentialSource) -> tuple[str, dict | None]:
    """A connection of its own, outside the pool (the pool is busy): does the database answer?
    One at a time per process, and remembered for a second."""
    with _direct_lock:
        hit = _direct_cache.get(id(source))
        if hit and time.monotonic() - hit[0] < 1.0:
            return hit[1]
        try:
            with source.connect(connect_timeout=3, autocommit=True) as conn:
                state = ("ok", backlog(conn))
        except psycopg.OperationalError as exc:
            state = ("auth_failed" if is_auth_failure(exc) else "unreachable"), None
        _direct_cache[id(source)] = (time.monotonic(), state)
        return state


async def _probe(gate: DbGate, source: CredentialSource) -> tuple[str, dict | None]:
    """(ok | auth_failed | unreachable, the alert backlog when the database answered)."""
    if gate.saturated:
        # requests are queued: ask on a connection of its own rather than queue behind them
        return await anyio.to_thread.run_sync(_direct_probe, source)
    try:
        # A short wait for a slot: a long queue means saturation, not an unreachable database.
        async with gate.slot(timeout=1.0):
            with anyio.CancelScope(shield=True):
                conn = await gate.run(functools.partial(checkout, gate.pool, flush=False, timeout=2.0))
                failure: BaseException | None = None
                try:
                    queued = await gate.run(backlog, conn)
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    await gate.run(release, gate.pool, conn, failure)
        return "ok", queued
    except QueueTimeout:
        pass  # busy: the direct probe below tells busy from unreachable
    except PoolTimeout:
        if source.last_connect in ("auth_failed", "unreachable"):
            return source.last_connect, None
    except psycopg.OperationalError as exc:
        return ("auth_failed" if is_auth_failure(exc) or source.auth_failed else "unreachable"), None
    return await anyio.to_thread.run_sync(_direct_probe, source)


@router.get("/health", **typed(R.HealthReply))
async def health(request: Request):
    """200 with the database reachable (`saturated` says whether requests are queued for it), 503 when
    it is unreachable (`database: "unreachable"`) or refuses the credentials (`"auth_failed"`)."""
    gate: DbGate = request.app.state.db_gate
    source: CredentialSource = request.app.state.credentials
    state, queued = await _probe(gate, source)
    # The alert judge's backlog (issue 14): queued checks and the age of the oldest, so "no alerts" can be
    # told from "not judged yet". Null when the database could not be asked.
    info = {"database": state, "saturated": gate.saturated, "pool": gate.stats(), "credentials": source.state(),
            "version": __version__, "alerts_pending": queued["pending"] if queued else None,
            "alerts_lag_s": queued["lag_s"] if queued else None}
    if state == "ok":
        return JSONResponse({"ok": True, "status": "ok", **info})
    message = _MESSAGES[state]
    return JSONResponse({"ok": False, "error": {"status": 503, "code": "unavailable", "message": message},
                         "detail": message, **info}, status_code=503, headers={"Retry-After": "2"})
