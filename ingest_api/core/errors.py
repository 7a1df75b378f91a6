"""The one error shape. Every JSON error of the API goes through `error_response`."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("eval360.errors")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "invalid_request", 500: "internal_error",
          503: "unavailable"}


class ApiError(Exception):
    """Raise from handlers and core functions: becomes {"ok": false, "error": {...}}."""

    def __init__(self, status: int, message: str, *, field: str | None = None, code: str | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or _CODES.get(status, "error")
        self.extra = extra or {}


def not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, f"{kind} {ident!r} not found", field=kind)


def error_response(status: int, message: str, *, field: str | None = None, code: str | None = None,
                   errors: list[dict] | None = None, headers: dict | None = None,
                   extra: dict | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "ok": False,
        "error": {"status": status, "code": code or _CODES.get(status, "error"), "message": message},
        # `detail` too: clients written against FastAPI's default error shape read it.
        "detail": message,
        # `message`: the text to print. Clients of the earlier dashboard printed `error`, which is now
        # an object; `message` (top level) is the one field documented for display (docs/api.md).
        "message": message,
    }
    if field:
        body["error"]["field"] = field
    if errors:
        body["error"]["errors"] = errors
    if extra:
        body["error"].update({k: v for k, v in extra.items() if k not in body["error"]})
    return JSONResponse(body, status_code=status, headers=headers)


def _loc(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (("." if out else "") + p)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.message, field=exc.field, code=exc.code, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        errs = []
        for e in exc.errors()[:20]:
            loc = _loc(e.get("loc", ()))
            msg = str(e.get("msg", "invalid"))
            if e.get("type") == "json_invalid":
                loc, msg = "body", "body is not valid JSON: " + str(e.get("ctx", {}).get("error", msg))
            errs.append({"field": loc, "message": msg, "type": e.get("type")})
        first = errs[0] if errs else {"field": "body", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        if len(errs) > 1:
            message += f" (and {len(errs) - 1} more)"
        return error_response(422, message, field=first["field"], errors=errs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        msg = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        status = exc.status_code
        if status == 404 and msg == "Not Found":
            msg = "no such endpoint"
        if status == 400 and "parsing the body" in msg:
            # FastAPI's answer to a body it cannot decode (bad UTF-8, nesting too deep): an invalid body.
            status, msg = 422, "body: not valid JSON (undecodable bytes or nesting too deep)"
            return error_response(status, msg, field="body")
        return error_response(status, msg, headers=getattr(exc, "headers", None))

    @app.exception_handler(PoolTimeout)
    async def _pool(request: Request, exc: PoolTimeout):
        source = getattr(request.app.state, "credentials", None)
        if source is not None and source.auth_failed:
            return error_response(503, "database unavailable: it refused the credentials (being refreshed); "
                                       "retry shortly", headers={"Retry-After": "2"})
        if exc.__class__.__name__ == "QueueTimeout":
            return error_response(503, f"server busy: {exc}; retry later", headers={"Retry-After": "5"})
        return error_response(503, "database unavailable: no connection could be had in time",
                              headers={"Retry-After": "2"})

    @app.exception_handler(psycopg.OperationalError)
    async def _operational(_: Request, exc: psycopg.OperationalError):
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return error_response(503, "query took too long and was cancelled (statement timeout)",
                                  headers={"Retry-After": "5"})
        from .credentials import is_auth_failure

        if is_auth_failure(exc):
            log.warning("database refused the credentials")
            return error_response(503, "database unavailable: it refused the credentials (being refreshed); "
                                       "retry shortly", headers={"Retry-After": "2"})
        log.warning("database error: %s", exc.__class__.__name__)
        return error_response(503, "database unavailable; retry later", headers={"Retry-After": "2"})

    @app.exception_handler(psycopg.DataError)
    async def _data(_: Request, exc: psycopg.DataError):
        # A value the database cannot hold (out of range, bad encoding) that validation let through.
        diag = getattr(exc, "diag", None)
        detail = (diag.message_primary if diag else None) or "value not accepted by the database"
        return error_response(422, f"invalid value: {detail}")

    @app.exception_handler(psycopg.IntegrityError)
    async def _integrity(_: Request, exc: psycopg.IntegrityError):
        diag = getattr(exc, "diag", None)
        detail = (diag.message_primary if diag else None) or "conflicts with stored data"
        return error_response(409, f"conflict: {detail}")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal error (logged on the server)")
