"""create_app(): settings, the pool (opened in the lifespan), routers, the one error shape."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import __version__, errors
from .db import make_pool, resolve_database_url
from .errors import error_response
from .settings import Settings, get_settings

log = logging.getLogger("eval360.app")

ROUTER_MODULES = ["health", "ingest", "models", "checkpoints", "datasets", "heatmap", "compare", "eval_runs",
                  "alerts", "activity", "suites", "promotion", "admin"]


class BodyLimit:
    """413 for bodies over the limit, checked on Content-Length and while streaming (chunked)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    resp = error_response(413, f"request body over the limit of {limit} bytes; send smaller batches")
                    return await resp(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            resp = error_response(413, f"request body over the limit of {limit} bytes; send smaller batches")
            await resp(scope, receive, send)


class _TooLarge(Exception):
    pass


def _include_routers(app: FastAPI) -> None:
    import importlib

    for name in ROUTER_MODULES:
        try:
            mod = importlib.import_module(f"ingest_api.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ingest_api.routes.{name}":
                continue  # resource not built yet
            raise
        app.include_router(mod.router)


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.require_tokens()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        url = database_url or resolve_database_url(settings)
        app.state.database_url = url
        app.state.pool = make_pool(url, settings)
        try:
            yield
        finally:
            app.state.pool.close()

    app = FastAPI(
        title="Eval360 dashboard API",
        version=__version__,
        description="Scores of LLM checkpoints on benchmarks: ingest from the Eval360-V2 scheduler and the "
                    "backfill, reads for the dashboard and scripts, admin for suites, rules and webhooks.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        root_path=settings.root_path,
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    _include_routers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` / multi-worker runs: settings and DATABASE_URL from the environment."""
    return create_app(Settings.from_env())
