"""Security: every admin route refuses the ingest token (403) and no token (401); tokens never reach logs."""

from __future__ import annotations

import logging
import re

import pytest

from ingest_api.core.auth import require_admin, require_ingest
from tests.conftest import ADMIN, INGEST
from tests.helpers import minimal_payload


def _all_routes(routes):
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:  # FastAPI keeps included routers as such
            yield from _all_routes(inner.routes)
        else:
            yield route


def _routes_needing(app, dep) -> list[tuple[str, str]]:
    out = []
    for route in _all_routes(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        stack = list(dependant.dependencies)
        found = False
        while stack:
            d = stack.pop()
            if d.call is dep:
                found = True
                break
            stack.extend(d.dependencies)
        if found:
            for m in sorted(route.methods):
                out.append((m, route.path))
    return out


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_admin_route_refuses_ingest_token_and_no_token(client, app, db):
    routes = _routes_needing(app, require_admin)
    assert routes, "no admin routes found"
    for method, path in routes:
        r = client.request(method, _concrete(path), json={}, headers={"Authorization": f"Bearer {INGEST}"})
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        r = client.request(method, _concrete(path), json={})
        assert r.status_code == 401, (method, path, r.status_code)
        r = client.request(method, _concrete(path), json={}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401, (method, path, r.status_code)


def test_ingest_routes_are_guarded(app):
    paths = {p for _, p in _routes_needing(app, require_ingest)}
    assert {"/api/ingest/eval-result", "/api/ingest/eval-results", "/api/ingest/examples"} <= paths


def test_tokens_never_written_to_logs(client, db, caplog):
    caplog.set_level(logging.DEBUG)
    client.post("/api/ingest/eval-result", json=minimal_payload(), headers={"Authorization": f"Bearer {INGEST}"})
    client.post("/api/ingest/eval-result", json={}, headers={"Authorization": f"Bearer {INGEST}"})
    client.post("/api/ingest/eval-result", json=minimal_payload(), headers={"Authorization": "Bearer wrong-token-x"})
    client.get("/api/health", headers={"Authorization": f"Bearer {ADMIN}"})
    text = "\n".join(r.getMessage() + " " + str(r.args) for r in caplog.records)
    assert caplog.records, "expected some log output to inspect"
    for secret in (INGEST, ADMIN, "wrong-token-x"):
        assert secret not in text


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs"])
def test_docs_served(client, path):
    assert client.get(path).status_code == 200
