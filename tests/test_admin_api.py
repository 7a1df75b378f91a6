"""Admin API: the auth matrix of every admin route, validation, cascades with counts, idempotent writes."""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.plugins.alert_data import post, post_examples

pytestmark = pytest.mark.usefixtures("alerts_inline")

BAD = {"Authorization": "Bearer not-a-token"}

# (method, path, json body) of every admin route; ids that exist after _world().
ADMIN_ROUTES = [
    ("post", "/api/admin/suites", {"suite_id": "core", "display_name": "Core", "dataset_names": ["gsm8k"]}),
    ("post", "/api/admin/benchmark-metadata", {"benchmarks": [{"dataset_name": "gsm8k", "category": "math"}]}),
    ("post", "/api/admin/promotion-rules", {"rule_name": "r1", "min_scores": {"gsm8k": 0.5}}),
    ("get", "/api/admin/promotion-rules", None),
    ("delete", "/api/admin/promotion-rules/r0", None),
    ("post", "/api/admin/webhooks", {"url": "https://hooks.example.com/x", "events": ["regression"],
                                     "active": True}),
    ("get", "/api/admin/webhooks", None),
    ("post", "/api/admin/webhooks/1/deactivate", None),
    ("post", "/api/admin/webhooks/1/activate", None),
    ("get", "/api/admin/webhooks/1/deliveries", None),
    ("patch", "/api/models/k2", {"is_pinned": True}),
    ("delete", "/api/checkpoints/k2__step-1000", None),
    ("delete", "/api/models/k2", None),
    ("post", "/api/alerts/1/acknowledge", {"by": "alice"}),
]


def _world(client, ingest_headers, admin_headers):
    """A model with three checkpoints, a regression alert, a rule r0 and webhook 1."""
    for s, v in ((1000, 0.7), (2000, 0.7), (3000, 0.55)):
        post(client, ingest_headers, "k2", s, "gsm8k", v)
        post(client, ingest_headers, "k2", s, "mmlu", 0.6)
    assert client.post("/api/admin/promotion-rules", json={"rule_name": "r0", "min_scores": {"gsm8k": 0.9}},
                       headers=admin_headers).status_code == 200
    assert client.post("/api/admin/webhooks", json={"url": "https://hooks.example.com/y", "events": ["regression"],
                                                    "active": True}, headers=admin_headers).status_code == 200


def _call(client, method, path, body, headers):
    kw = {"headers": headers}
    if body is not None:
        kw["json"] = body
    return client.request(method.upper(), path, **kw)


@pytest.mark.parametrize("method,path,body", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_auth_matrix(client, db, ingest_headers, admin_headers, method, path, body):
    _world(client, ingest_headers, admin_headers)
    before = q(db, "select (select count(*) from activity) a, (select count(*) from models) m, "
                   "(select count(*) from checkpoints) c, (select count(*) from suites) s")[0]
    for headers, want in (({}, 401), (BAD, 401), (ingest_headers, 403)):
        r = _call(client, method, path, body, headers)
        assert r.status_code == want, (headers, r.text)
        assert r.json()["ok"] is False and r.json()["error"]["status"] == want
    # Nothing was written by the refused calls.
    assert q(db, "select (select count(*) from activity) a, (select count(*) from models) m, "
                 "(select count(*) from checkpoints) c, (select count(*) from suites) s")[0] == before
    r = _call(client, method, path, body, admin_headers)
    assert r.status_code == 200, r.text


def test_suite_create_update_and_validation(client, db, admin_headers):
    body = {"suite_id": "core", "display_name": "Core", "description": "the usual",
            "dataset_names": ["gsm8k", "mmlu", "gsm8k"]}
    r = client.post("/api/admin/suites", json=body, headers=admin_headers)
    assert r.status_code == 200 and r.json() == {"ok": True, "suite_id": "core", "created": True,
                                                 "dataset_names": ["gsm8k", "mmlu"]}
    r = client.post("/api/admin/suites", json={**body, "dataset_names": ["bbh"]}, headers=admin_headers)
    assert r.json()["created"] is False
    assert q(db, "select dataset_names from suites")[0]["dataset_names"] == ["bbh"]
    suites = client.get("/api/suites").json()["suites"]
    assert [s["suite_id"] for s in suites] == ["core"]
    for bad in ({"suite_id": "core", "display_name": "C"}, {**body, "dataset_names": []},
                {**body, "suite_id": "a/b"}, {**body, "suite_id": ""}, {**body, "surprise": 1}, [1, 2]):
        r = client.post("/api/admin/suites", json=bad, headers=admin_headers)
        assert r.status_code == 422, (bad, r.text)
    r = client.post("/api/admin/suites", content=b"{not json", headers={**admin_headers,
                                                                       "Content-Type": "application/json"})
    assert r.status_code == 422
    assert q(db, "select count(*) n from activity where detail->>'action' = 'suite_upsert'")[0]["n"] == 2


def test_benchmark_metadata_bulk_upsert_keeps_unsent_fields(client, db, admin_headers):
    r = client.post("/api/admin/benchmark-metadata", headers=admin_headers, json={"benchmarks": [
        {"dataset_name": "gsm8k", "category": "math", "subcategory": "grade-school", "primary_metric": "acc",
         "chance_level": 0.0, "description": "GSM8K"},
        {"dataset_name": "toxigen", "category": "safety", "is_higher_better": False}]})
    assert r.status_code == 200 and r.json()["ok"] and r.json()["count"] == 2
    r = client.post("/api/admin/benchmark-metadata", headers=admin_headers,
                    json={"benchmarks": [{"dataset_name": "gsm8k", "category": "reasoning"}]})
    assert r.json()["count"] == 1
    rows = {x["dataset_name"]: x for x in q(db, "select * from benchmark_metadata")}
    assert rows["gsm8k"]["category"] == "reasoning" and rows["gsm8k"]["subcategory"] == "grade-school"
    assert rows["gsm8k"]["primary_metric"] == "acc" and rows["gsm8k"]["chance_level"] == 0.0
    assert rows["toxigen"]["is_higher_better"] is False and rows["gsm8k"]["is_higher_better"] is True
    for bad in ({"benchmarks": []}, {"benchmarks": [{"category": "x"}]}, {},
                {"benchmarks": [{"dataset_name": "x", "is_higher_better": "maybe"}]}):
        assert client.post("/api/admin/benchmark-metadata", json=bad, headers=admin_headers).status_code == 422


def test_promotion_rules_create_list_update(client, db, ingest_headers, admin_headers):
    post(client, ingest_headers, "k2", 1000, "gsm8k", 0.7)
    client.post("/api/admin/suites", json={"suite_id": "core", "display_name": "Core", "dataset_names": ["gsm8k"]},
                headers=admin_headers)
    rule = {"rule_name": "ship", "model_id": "k2", "suite_id": "core", "min_scores": {"gsm8k": 0.6},
            "no_regressions": True, "description": "ship it"}
    r = client.post("/api/admin/promotion-rules", json=rule, headers=admin_headers)
    assert r.status_code == 200 and r.json() == {"ok": True, "rule_name": "ship", "created": True}
    r = client.post("/api/admin/promotion-rules", json={**rule, "min_scores": {"gsm8k": 0.65}}, headers=admin_headers)
    assert r.json()["created"] is False
    rules = client.get("/api/admin/promotion-rules", headers=admin_headers).json()["rules"]
    assert len(rules) == 1
    assert {k: rules[0][k] for k in ("rule_name", "model_id", "suite_id", "min_scores", "no_regressions",
                                     "description")} == {**rule, "min_scores": {"gsm8k": 0.65}}
    for bad, field in (({**rule, "model_id": "nope"}, "model_id"), ({**rule, "suite_id": "nope"}, "suite_id"),
                       ({**rule, "baseline_model_id": "nope"}, "baseline_model_id"),
                       ({**rule, "min_scores": {"gsm8k": "high"}}, None), ({"min_scores": {}}, None),
                       ({**rule, "baseline_margin": -1}, None)):
        r = client.post("/api/admin/promotion-rules", json=bad, headers=admin_headers)
        assert r.status_code == 422, r.text
        if field:
            assert r.json()["error"]["field"] == field
    assert client.delete("/api/admin/promotion-rules/ship", headers=admin_headers).status_code == 200
    assert client.delete("/api/admin/promotion-rules/ship", headers=admin_headers).status_code == 404


def test_patch_model(client, db, ingest_headers, admin_headers):
    post(client, ingest_headers, "k2", 1000, "gsm8k", 0.7)
    r = client.patch("/api/models/k2", json={"display_name": "K2 Think", "owner": "team-a", "param_count": 7_000_000,
                                             "is_pinned": True}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["model_id"] == "k2" and r.json()["changed"] == ["display_name", "is_pinned", "owner",
                                                                    "param_count"]
    m = q(db, "select * from models")[0]
    assert (m["display_name"], m["owner"], m["param_count"], m["is_pinned"]) == ("K2 Think", "team-a", 7_000_000,
                                                                                  True)
    again = client.patch("/api/models/k2", json={"is_pinned": True}, headers=admin_headers)
    assert again.status_code == 200 and again.json()["changed"] == []  # idempotent, no activity
    assert q(db, "select count(*) n from activity where detail->>'action' = 'model_patch'")[0]["n"] == 1
    assert client.patch("/api/models/k2", json={"param_count": None}, headers=admin_headers).status_code == 200
    assert q(db, "select param_count from models")[0]["param_count"] is None
    for bad in ({"param_count": -1}, {"is_pinned": "yes"}, {"display_name": None}, {"model_type": "other"},
                {"colour": "red"}, {"display_name": ""}):
        r = client.patch("/api/models/k2", json=bad, headers=admin_headers)
        assert r.status_code == 422, (bad, r.text)
    assert client.patch("/api/models/nope", json={"is_pinned": True}, headers=admin_headers).status_code == 404


def _counts(db, model=None, checkpoint=None):
    tables = ["models", "checkpoints", "checkpoint_aliases", "eval_runs", "eval_results", "example_results",
              "alerts", "promotions", "promotion_rules", "activity"]
    return {t: q(db, f"select count(*) n from {t}")[0]["n"] for t in tables}


def _rich_world(client, ingest_headers, admin_headers):
    for model in ("k2", "other"):
        for s, v in ((1000, 0.9), (2000, 0.9), (3000, 0.2)):
            out = post(client, ingest_headers, model, s, "gsm8k", v, n=20,
                       checkpoint_id=f"{model}-checkpoint_{s:07d}")  # an alias spelling
            post_examples(client, ingest_headers, out["eval_run_id"], [i % 10 < v * 10 for i in range(20)])
            post(client, ingest_headers, model, s, "mmlu", 0.6)
    client.post("/api/admin/promotion-rules", json={"rule_name": "k2-rule", "model_id": "k2", "min_scores": {}},
                headers=admin_headers)


def test_delete_checkpoint_cascades_with_counts(client, db, ingest_headers, admin_headers):
    _rich_world(client, ingest_headers, admin_headers)
    before = _counts(db)
    assert q(db, "select count(*) n from alerts where checkpoint_id = 'k2__step-3000'")[0]["n"] >= 1
    r = client.delete("/api/checkpoints/k2-checkpoint_0003000", headers=admin_headers)  # by alias
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["ok"] and got["checkpoint_id"] == "k2__step-3000"
    after = _counts(db)
    deleted = got["deleted"]
    assert deleted == {"checkpoints": 1, "checkpoint_aliases": 1, "eval_runs": 2, "eval_results": 2,
                       "example_results": 20, "alerts": deleted["alerts"], "promotions": 0,
                       "activity": deleted["activity"]}
    for t in ("checkpoints", "checkpoint_aliases", "eval_runs", "eval_results", "example_results"):
        assert before[t] - after[t] == deleted[t], t
    # alerts and activity: the checkpoint's rows went; the deletion event (and re-judged alerts) came.
    assert q(db, "select count(*) n from alerts where checkpoint_id = 'k2__step-3000'")[0]["n"] == 0
    assert q(db, "select count(*) n from activity where checkpoint_id = 'k2__step-3000'")[0]["n"] == 0
    assert after["activity"] >= before["activity"] - deleted["activity"] + 1
    assert after["alerts"] >= before["alerts"] - deleted["alerts"]
    assert q(db, "select count(*) n from checkpoints where model_id = 'other'")[0]["n"] == 3  # untouched
    assert client.delete("/api/checkpoints/k2__step-3000", headers=admin_headers).status_code == 404
    assert client.delete("/api/checkpoints/nope", headers=admin_headers).status_code == 404


def test_delete_model_cascades_with_counts(client, db, ingest_headers, admin_headers):
    _rich_world(client, ingest_headers, admin_headers)
    before = _counts(db)
    r = client.delete("/api/models/k2", headers=admin_headers)
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]
    after = _counts(db)
    assert deleted["models"] == 1 and deleted["checkpoints"] == 3 and deleted["eval_runs"] == 6
    assert deleted["example_results"] == 60 and deleted["promotion_rules"] == 1 and deleted["alerts"] >= 1
    for t, n in deleted.items():
        extra = 1 if t == "activity" else 0  # the deletion itself is recorded
        assert before[t] - after[t] + extra == n, t
    assert q(db, "select count(*) n from models")[0]["n"] == 1
    ev = client.get("/api/activity", params={"model_id": "k2"}).json()["events"]
    assert [e["detail"]["action"] for e in ev] == ["model_delete"]
    assert client.delete("/api/models/k2", headers=admin_headers).status_code == 404


def test_acknowledge_records_who_and_when_idempotently(client, db, ingest_headers, admin_headers):
    for s, v in ((1000, 0.7), (2000, 0.7), (3000, 0.55)):
        post(client, ingest_headers, "k2", s, "gsm8k", v)
    alert = client.get("/api/alerts", params={"type": "regression"}).json()["alerts"][0]
    r = client.post(f"/api/alerts/{alert['id']}/acknowledge", json={"by": "alice", "note": "known"},
                    headers=admin_headers)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["ok"] and first["alert_id"] == alert["id"] and first["acknowledged_by"] == "alice"
    assert first["acknowledged_at"] and first["already_acknowledged"] is False
    r2 = client.post(f"/api/alerts/{alert['id']}/acknowledge", json={"by": "bob"}, headers=admin_headers)
    assert r2.status_code == 200 and r2.json()["acknowledged_by"] == "alice"
    assert r2.json()["acknowledged_at"] == first["acknowledged_at"] and r2.json()["already_acknowledged"] is True
    r3 = client.post(f"/api/alerts/{alert['id']}/acknowledge", headers=admin_headers)  # no body at all
    assert r3.status_code == 200
    assert q(db, "select count(*) n from activity where event_type = 'acknowledgement'")[0]["n"] == 1
    listed = client.get("/api/alerts", params={"acknowledged": "true"}).json()["alerts"]
    assert [a["id"] for a in listed] == [alert["id"]] and listed[0]["acknowledged_by"] == "alice"
    assert client.get("/api/alerts", params={"acknowledged": "false", "type": "regression"}).json()["alerts"] == []
    assert client.post("/api/alerts/99999/acknowledge", headers=admin_headers).status_code == 404
    assert client.post("/api/alerts/abc/acknowledge", headers=admin_headers).status_code == 422


def test_alert_list_filters_and_shape(client, db, ingest_headers):
    for model in ("a", "b"):
        post(client, ingest_headers, model, 1000, "gsm8k", 0.6)
        post(client, ingest_headers, model, 2000, "gsm8k", 0.75)
    post(client, ingest_headers, "a", 3000, "gsm8k", 0.55)
    allr = client.get("/api/alerts").json()
    keys = {"id", "alert_type", "model_id", "checkpoint_id", "dataset_name", "severity", "message", "detail",
            "acknowledged", "created_at"}
    assert allr["alerts"] and all(keys <= set(a) for a in allr["alerts"])
    assert {a["model_id"] for a in client.get("/api/alerts", params={"model_id": "b"}).json()["alerts"]} == {"b"}
    assert {a["alert_type"] for a in client.get("/api/alerts", params={"type": "new_best"}).json()["alerts"]} == {
        "new_best"}
    crit = client.get("/api/alerts", params={"severity": "critical"}).json()["alerts"]
    assert [(a["model_id"], a["alert_type"]) for a in crit] == [("a", "regression")]
    for bad in ({"severity": "loud"}, {"type": "x"}, {"acknowledged": "perhaps"}, {"limit": 0}, {"status": "x"}):
        assert client.get("/api/alerts", params=bad).status_code == 422


def test_bad_input_never_500(client, db, ingest_headers, admin_headers):
    """NUL characters, lone surrogates, NaN / 1e400, ports out of range, malformed URLs and ids: a 4xx each."""
    post(client, ingest_headers, "k2", 1000, "gsm8k", 0.7)
    H = {**admin_headers, "Content-Type": "application/json"}
    cases = [
        ("post", "/api/admin/suites", '{"suite_id":"s","display_name":"a\\u0000b","dataset_names":["x"]}'),
        ("post", "/api/admin/suites", '{"suite_id":"s","display_name":"a\\ud800b","dataset_names":["x"]}'),
        ("post", "/api/admin/suites", '{"suite_id":"s\\ud800","display_name":"ab","dataset_names":["x"]}'),
        ("post", "/api/admin/benchmark-metadata", '{"benchmarks":[{"dataset_name":"x","description":"\\u0000"}]}'),
        ("post", "/api/admin/benchmark-metadata", '{"benchmarks":[{"dataset_name":"x","chance_level":NaN}]}'),
        ("post", "/api/admin/benchmark-metadata", '{"benchmarks":[{"dataset_name":"x","chance_level":1e400}]}'),
        ("post", "/api/admin/promotion-rules", '{"rule_name":"r","min_scores":{"x":1e400}}'),
        ("post", "/api/admin/promotion-rules", '{"rule_name":"r","description":"\\u0000","min_scores":{}}'),
        ("post", "/api/admin/promotion-rules", '{"rule_name":"r","min_category_scores":{"\\u0000":1}}'),
        ("post", "/api/admin/webhooks", '{"url":"http://a\\u0000b/","events":["regression"]}'),
        ("post", "/api/admin/webhooks", '{"url":"http://[::1/","events":["regression"]}'),
        ("post", "/api/admin/webhooks", '{"url":"http://h:99999/","events":["regression"]}'),
        ("post", "/api/admin/webhooks", '{"url":"http://h/","events":["regression"],"description":"\\ud800"}'),
        ("patch", "/api/models/k2", '{"display_name":"\\u0000"}'),
        ("patch", "/api/models/k2", '{"owner":"\\ud800"}'),
        ("patch", "/api/models/k2", '{"param_count":99999999999999999999999}'),
        ("post", "/api/alerts/1/acknowledge", '{"by":"\\u0000"}'),
        ("post", "/api/alerts/1/acknowledge", '"just a string"'),
        ("post", "/api/alerts/1/acknowledge", '[]'),
        ("delete", "/api/models/%00", None),
        ("delete", "/api/checkpoints/%00", None),
        ("get", "/api/alerts?model_id=%00", None),
        ("get", "/api/alerts?model_id=%ED%A0%80", None),
        ("get", "/api/activity?model_id=%00", None),
        ("get", "/api/activity?event_type=%00", None),
        ("get", "/api/models/k2/promotion-status?checkpoint_id=%00", None),
        ("get", "/api/models/%00/promotion-status", None),
        ("get", "/api/admin/webhooks/99999999999999999999/deliveries", None),
    ]
    bad = []
    for m, path, body in cases:
        r = client.request(m.upper(), path, content=body.encode() if body else None, headers=H)
        if r.status_code >= 500:
            bad.append((m, path, body, r.status_code))
    assert not bad, "\n".join(map(str, bad))
