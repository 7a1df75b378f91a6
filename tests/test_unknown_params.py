"""No silent parameter: on every operation an undeclared query parameter is a 422 that names it and lists
the accepted ones (the operation's declared query parameters, read from the OpenAPI document)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Query

METHODS = ("get", "post", "put", "patch", "delete")


def test_every_operation_rejects_an_unknown_parameter(client, admin_headers):
    spec = client.get("/api/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in METHODS:
            if method not in ops:
                continue
            declared = sorted(p["name"] for p in ops[method].get("parameters", []) if p["in"] == "query")
            r = client.request(method, concrete, params={"no_such_param": "1"}, headers=admin_headers)
            assert r.status_code == 422, (method, path, r.status_code, r.text)
            body = r.json()
            assert "`no_such_param`" in body["message"], body
            assert body["error"]["code"] == "unknown_parameter" and body["error"]["field"] == "no_such_param"
            assert body["error"]["unknown"] == ["no_such_param"]
            assert body["error"]["accepted"] == declared, (method, path)
            for name in declared:
                assert name in body["message"]
            checked += 1
    assert checked >= 37


def test_known_and_aliased_parameters_still_work(client):
    assert client.get("/api/heatmap", params={"score": "latest"}).status_code == 200
    assert client.get("/api/heatmap", params={"suite_id": "nope"}).status_code == 404  # the alias is read
    assert client.get("/api/alerts", params={"type": "regression", "alert_type": "regression"}).status_code == 200
    r = client.get("/api/heatmap", params={"suite": "a", "suite_id": "b"})
    assert r.status_code == 422 and "disagree" in r.json()["message"]


def test_several_unknown_parameters_are_all_named(client):
    r = client.get("/api/models", params={"modeltype": "training", "ownr": "x", "owner": "y"})
    assert r.status_code == 422
    assert r.json()["error"]["unknown"] == ["modeltype", "ownr"]
    assert "`modeltype`, `ownr`" in r.json()["message"]


def test_an_endpoint_added_later_is_covered(app, client):
    """Routes other modules add after the app is built get the check too, with their own parameters."""
    router = APIRouter(prefix="/api")

    @router.get("/later")
    def later(q: str | None = Query(None, alias="query-text"), limit: int = 5) -> dict:
        return {"ok": True, "q": q, "limit": limit}

    app.include_router(router)
    assert client.get("/api/later", params={"query-text": "x", "limit": 2}).json() == {"ok": True, "q": "x",
                                                                                       "limit": 2}
    r = client.get("/api/later", params={"q": "x"})
    assert r.status_code == 422 and r.json()["error"]["accepted"] == ["limit", "query-text"]
