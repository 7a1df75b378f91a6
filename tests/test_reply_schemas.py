"""Every operation is typed: a non-empty 200 schema in /api/openapi.json, and the replies keep to it.

The routes declare their reply models for documentation only (ingest_api/replies.py: the read path
serialises raw rows once, unvalidated, for speed), so conformance is checked here: a reply of every
operation on a populated database (tests/tour.py) is validated against the operation's 200 schema,
and a deliberately wrong reply is shown to fail both this check and the fuzz test's.
"""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from tests.tour import build_tour, send

METHODS = ("get", "post", "put", "patch", "delete")


pytestmark = pytest.mark.usefixtures("alerts_inline")

def _spec(client) -> dict:
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    return r.json()


def _ok_schema(spec: dict, template: str, method: str) -> dict:
    return spec["paths"][template][method]["responses"]["200"]["content"]["application/json"]["schema"]


def _validator(spec: dict, schema: dict) -> Draft202012Validator:
    # The operation's schema with the document's components beside it, so its $refs resolve.
    return Draft202012Validator({**schema, "components": spec["components"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def _nullable(schema: dict) -> bool:
    return schema.get("type") == "null" or any(_nullable(s) for s in schema.get("anyOf", []))


def _errors(spec: dict, template: str, method: str, body, nulls_dropped: bool = False) -> list[str]:
    """Where `body` breaks the operation's 200 schema. nulls_dropped: the document drops null values
    from its examples, so a missing key whose schema allows null is no error there."""
    v = _validator(spec, _ok_schema(spec, template, method))

    def dropped_null(e) -> bool:
        if e.validator == "required":
            props = e.schema.get("properties", {})
            return all(_nullable(_resolve(spec, props.get(k, {}))) for k in e.validator_value if k not in e.instance)
        if e.validator == "anyOf":  # one branch failing only on dropped nulls
            branches: dict = {}
            for sub in e.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
            return any(all(dropped_null(x) for x in subs) for subs in branches.values())
        return False

    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(body)
            if not (nulls_dropped and dropped_null(e))][:5]


def _resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_every_operation_declares_a_typed_200_reply(client):
    spec = _spec(client)
    comps = spec["components"]["schemas"]
    untyped = []
    n = 0
    for path, ops in spec["paths"].items():
        for method in METHODS:
            if method not in ops:
                continue
            n += 1
            try:
                schema = _ok_schema(spec, path, method)
            except KeyError:
                untyped.append(f"{method.upper()} {path}: no 200 JSON schema")
                continue
            ref = schema.get("$ref", "")
            target = comps.get(ref.rsplit("/", 1)[-1]) if ref else schema
            if not target or not target.get("properties") or not target.get("required"):
                untyped.append(f"{method.upper()} {path}: 200 schema has no declared keys ({schema})")
    assert n >= 37
    assert not untyped, "\n".join(untyped)


def test_every_reply_of_the_tour_conforms(client, ingest_headers, admin_headers):
    spec = _spec(client)
    calls = build_tour(client, ingest_headers, admin_headers)
    covered = {(c.method.lower(), c.template) for c in calls}
    every = {(m, p) for p, ops in spec["paths"].items() for m in METHODS if m in ops}
    assert every - covered == set(), "operations the tour does not call (add them to tests/tour.py)"
    problems = []
    for c in calls:
        r = send(client, c, ingest_headers, admin_headers)
        if r.status_code != 200:
            problems.append(f"{c.method} {c.path} {c.params}: HTTP {r.status_code} {r.text[:300]}")
            continue
        errs = _errors(spec, c.template, c.method.lower(), r.json())
        if errs:
            problems.append(f"{c.method} {c.path} {c.params}: " + "; ".join(errs))
    assert not problems, "\n".join(problems)


def test_documented_examples_conform(client):
    spec = _spec(client)
    bad = []
    for path, ops in spec["paths"].items():
        for method in METHODS:
            content = ops.get(method, {}).get("responses", {}).get("200", {}).get("content", {})
            example = content.get("application/json", {}).get("example")
            if example is not None:
                errs = _errors(spec, path, method, example, nulls_dropped=True)
                if errs:
                    bad.append(f"{method.upper()} {path}: " + "; ".join(errs))
    assert not bad, "\n".join(bad)


def _break_models_reply(monkeypatch):
    """A deliberately wrong reply: /api/models answers model ids as numbers and no `is_pinned`."""
    from ingest_api.read import catalog

    def wrong(conn, **kw):
        return [{"model_id": 7, "display_name": "x", "model_type": "training"}]

    monkeypatch.setattr(catalog, "list_models", wrong)


def test_a_wrong_reply_fails_the_conformance_check(client, monkeypatch):
    spec = _spec(client)
    good = client.get("/api/models").json()
    assert _errors(spec, "/api/models", "get", good) == []
    _break_models_reply(monkeypatch)
    bad = client.get("/api/models")
    assert bad.status_code == 200  # not validated at run time (speed): the tests are the check
    errs = _errors(spec, "/api/models", "get", bad.json())
    assert errs and any("is not of type 'string'" in e for e in errs), errs


def test_a_wrong_reply_fails_the_fuzz_tests_check(app, client, monkeypatch):
    """The same broken reply through schemathesis' response_schema_conformance (tests/test_fuzz_openapi.py's
    check): it raises, so the fuzz test cannot pass over a reply that breaks its schema."""
    import schemathesis
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    op = schema["/api/models"]["GET"]
    case = op.Case(query={})
    case.validate_response(case.call(), checks=[response_schema_conformance])  # the real reply passes
    _break_models_reply(monkeypatch)
    with pytest.raises(BaseException) as failed:  # schemathesis raises an exception group of failures
        case.validate_response(case.call(), checks=[response_schema_conformance])
    assert failed.type.__name__ == "FailureGroup"
    assert "Response violates schema" in str(failed.value) and "is not of type" in _all_text(failed.value)


def _all_text(exc: BaseException) -> str:
    parts = [str(exc)]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(_all_text(sub))
    return "\n".join(parts)
