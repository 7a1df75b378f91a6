"""Bearer-token dependencies: IngestAuth (ingest or admin token) and AdminAuth (admin token only)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError
from .settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Ingest or admin bearer token")


def _eq(a: str | None, b: str | None) -> bool:
    # Constant-time comparison; an unset token never matches.
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def role_of(token: str | None, settings: Settings) -> str | None:
    """The token rule, for the API and the dashboard alike: "admin" for the admin token, "ingest" for
    the ingest token, None for anything else (an unset token never matches)."""
    if _eq(token, settings.admin_token):
        return "admin"
    if _eq(token, settings.ingest_token):
        return "ingest"
    return None


def _role(request: Request, creds: HTTPAuthorizationCredentials | None) -> str:
    if creds is None or not creds.credentials:
        raise ApiError(401, "missing bearer token: send `Authorization: Bearer <token>`", field="Authorization")
    role = role_of(creds.credentials, request.app.state.settings)
    if role is None:
        raise ApiError(401, "invalid bearer token", field="Authorization")
    return role


# async: no I/O here, so FastAPI runs them on the event loop instead of hopping to a worker thread.
async def require_ingest(request: Request,
                   creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    return _role(request, creds)


async def require_admin(request: Request,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    role = _role(request, creds)
    if role != "admin":
        raise ApiError(403, "this token may ingest but not administer: use the admin token", field="Authorization")
    return role


IngestAuth = Annotated[str, Depends(require_ingest)]
AdminAuth = Annotated[str, Depends(require_admin)]
