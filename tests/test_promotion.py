"""Promotion gates: verdicts on crafted data, the promotion_ready event, GET /api/models/{id}/promotion-status."""

from __future__ import annotations

import pytest

from tests.conftest import q
from tests.plugins.alert_data import post

pytestmark = pytest.mark.usefixtures("alerts_inline")

M = "k2"


def _rule(client, admin_headers, **rule):
    r = client.post("/api/admin/promotion-rules", json=rule, headers=admin_headers)
    assert r.status_code == 200, r.text


def _status(client, model=M, **params):
    r = client.get(f"/api/models/{model}/promotion-status", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_no_data_no_rules_unknown(client, db, ingest_headers, admin_headers):
    assert client.get("/api/models/nope/promotion-status").status_code == 404
    post(client, ingest_headers, M, 1000, "gsm8k", 0.7)
    s = _status(client)
    assert s["overall"] == "no_rules" and s["checkpoint_id"] == f"{M}__step-1000" and s["training_step"] == 1000
    assert set(s) >= {"model_id", "checkpoint_id", "training_step", "overall", "rules"}
    client.delete(f"/api/checkpoints/{M}__step-1000", headers=admin_headers)
    assert _status(client)["overall"] == "no_data"


def test_new_rule_promotes_a_checkpoint_that_already_passes(client, db, ingest_headers, admin_headers):
    post(client, ingest_headers, M, 1000, "gsm8k", 0.7)
    post(client, ingest_headers, M, 2000, "gsm8k", 0.7)
    _rule(client, admin_headers, rule_name="floor", model_id=M, min_scores={"gsm8k": 0.6})
    assert q(db, "select checkpoint_id from promotions") == [{"checkpoint_id": f"{M}__step-2000"}]


def test_min_scores_pass_and_fail_with_numbers(client, db, ingest_headers, admin_headers):
    post(client, ingest_headers, M, 1000, "gsm8k", 0.55)
    _rule(client, admin_headers, rule_name="floor", model_id=M, min_scores={"gsm8k": 0.6, "mmlu": 0.5},
          no_regressions=False, description="floors")
    s = _status(client)
    assert s["overall"] == "blocked"
    rule = s["rules"][0]
    assert rule["rule_name"] == "floor" and rule["passed"] is False and rule["description"] == "floors"
    assert rule["failures"] == ["mmlu: no completed result", "gsm8k: accuracy (avg over 1) 0.55 ≥ 0.6 required"]
    cond = next(c for c in rule["conditions"] if c["kind"] == "min_score")
    assert (cond["dataset"], cond["value"], cond["threshold"], cond["passed"]) == ("gsm8k", 0.55, 0.6, False)
    assert q(db, "select count(*) n from promotions")[0]["n"] == 0
    post(client, ingest_headers, M, 2000, "gsm8k", 0.65)
    post(client, ingest_headers, M, 2000, "mmlu", 0.52)
    s = _status(client)
    assert s["overall"] == "ready" and s["checkpoint_id"] == f"{M}__step-2000" and s["promoted"] is True
    # The verdict for a given (older) checkpoint, by id or alias.
    assert _status(client, checkpoint_id=f"{M}__step-1000")["overall"] == "blocked"
    assert client.get(f"/api/models/{M}/promotion-status", params={"checkpoint_id": "other__step-1"}).status_code == 404


def test_promotion_ready_fires_once_with_activity_and_webhook(client, db, ingest_headers, admin_headers):
    client.post("/api/admin/webhooks", json={"url": "https://hooks.example.com/p", "events": ["promotion_ready"],
                                             "active": True}, headers=admin_headers)
    _rule(client, admin_headers, rule_name="floor", min_scores={"gsm8k": 0.6}, no_regressions=False)
    post(client, ingest_headers, M, 1000, "gsm8k", 0.7)
    for _ in range(2):  # re-posts do not promote twice
        post(client, ingest_headers, M, 1000, "gsm8k", 0.7)
    alerts = client.get("/api/alerts", params={"type": "promotion_ready"}).json()["alerts"]
    assert [(a["checkpoint_id"], a["dataset_name"], a["severity"]) for a in alerts] == [(f"{M}__step-1000", None,
                                                                                         "info")]
    assert q(db, "select checkpoint_id from promotions") == [{"checkpoint_id": f"{M}__step-1000"}]
    assert q(db, "select count(*) n from activity where event_type = 'promotion'")[0]["n"] == 1
    d = q(db, "select event_type, payload from webhook_deliveries")
    assert len(d) == 1 and d[0]["event_type"] == "promotion_ready" and "text" in d[0]["payload"]
    # A baseline is not in the scope of a rule for "all training models".
    post(client, ingest_headers, "gpt-4o", 0, "gsm8k", 0.9, model_type="baseline", checkpoint_id="gpt-4o",
         training_step=None)
    assert _status(client, "gpt-4o")["overall"] == "no_rules"


def test_category_and_baseline_conditions(client, db, ingest_headers, admin_headers):
    client.post("/api/admin/benchmark-metadata", headers=admin_headers, json={"benchmarks": [
        {"dataset_name": "gsm8k", "category": "math"}, {"dataset_name": "aime", "category": "math"},
        {"dataset_name": "mmlu", "category": "knowledge"}]})
    post(client, ingest_headers, "gpt-4o", 0, "gsm8k", 0.80, model_type="baseline", checkpoint_id="gpt-4o",
         training_step=None)
    post(client, ingest_headers, "gpt-4o", 0, "mmlu", 0.70, model_type="baseline", checkpoint_id="gpt-4o",
         training_step=None)
    post(client, ingest_headers, M, 1000, "gsm8k", 0.78)
    post(client, ingest_headers, M, 1000, "aime", 0.30)
    post(client, ingest_headers, M, 1000, "mmlu", 0.60)
    _rule(client, admin_headers, rule_name="vs-gpt", model_id=M, dataset_names=["gsm8k", "aime", "mmlu"],
          min_category_scores={"math": 0.5}, baseline_model_id="gpt-4o", baseline_margin=0.05,
          no_regressions=False)
    rule = _status(client)["rules"][0]
    by = {(c["kind"], c.get("dataset") or c.get("category")): c for c in rule["conditions"]}
    cat = by[("min_category_score", "math")]
    assert cat["passed"] is True and abs(cat["value"] - 0.54) < 1e-9 and cat["n_datasets"] == 2
    assert by[("baseline", "gsm8k")]["passed"] is True  # 0.78 >= 0.80 - 0.05
    mm = by[("baseline", "mmlu")]
    assert mm["passed"] is False and abs(mm["threshold"] - 0.65) < 1e-9 and mm["baseline"] == 0.70
    assert ("baseline", "aime") not in by  # the baseline has no aime result: not a condition
    assert rule["passed"] is False and len(rule["failures"]) == 1 and rule["failures"][0].startswith("mmlu:")


def test_no_regressions_against_previous_promoted(client, db, ingest_headers, admin_headers):
    post(client, ingest_headers, M, 1000, "gsm8k", 0.70)
    _rule(client, admin_headers, rule_name="steady", model_id=M, dataset_names=["gsm8k", "mmlu"],
          no_regressions=True)
    assert q(db, "select count(*) n from promotions")[0]["n"] == 0  # mmlu missing
    post(client, ingest_headers, M, 1000, "mmlu", 0.60)
    assert _status(client)["overall"] == "ready"  # nothing earlier to regress from
    # step 2000: gsm8k significantly below the promoted step 1000 (n = 1000 each).
    for d, v in (("gsm8k", 0.60), ("mmlu", 0.61)):
        post(client, ingest_headers, M, 2000, d, v)
    s = _status(client)
    assert s["overall"] == "blocked"
    f = s["rules"][0]["failures"]
    assert len(f) == 1 and f[0].startswith("gsm8k: significantly worse than step 1000 (previous promoted")
    cond = next(c for c in s["rules"][0]["conditions"] if c["kind"] == "no_regressions")
    assert cond["q_value"] < 0.05 and cond["reference"] == f"{M}__step-1000"
    # step 3000 recovers to the promoted level: ready, and compared with step 1000 (promoted), not 2000.
    for d, v in (("gsm8k", 0.69), ("mmlu", 0.60)):
        post(client, ingest_headers, M, 3000, d, v)
    s = _status(client)
    assert s["overall"] == "ready"
    cond = next(c for c in s["rules"][0]["conditions"] if c["kind"] == "no_regressions")
    assert cond["reference"] == f"{M}__step-1000" and cond["passed"] is True
    assert [r["checkpoint_id"] for r in q(db, "select checkpoint_id from promotions order by promoted_at, 1")] == [
        f"{M}__step-1000", f"{M}__step-3000"]


def test_rule_without_datasets_waits_for_the_previous_checkpoints_datasets(client, db, ingest_headers,
                                                                           admin_headers):
    _rule(client, admin_headers, rule_name="any", no_regressions=True)
    for d in ("gsm8k", "mmlu", "bbh"):
        post(client, ingest_headers, M, 1000, d, 0.6)
    post(client, ingest_headers, M, 2000, "gsm8k", 0.6)  # the other two not evaluated yet
    s = _status(client)
    assert s["overall"] == "blocked"
    assert sorted(s["rules"][0]["failures"]) == ["bbh: no completed result", "mmlu: no completed result"]
    assert q(db, "select count(*) n from promotions where checkpoint_id = %s", (f"{M}__step-2000",))[0]["n"] == 0
    for d in ("mmlu", "bbh"):
        post(client, ingest_headers, M, 2000, d, 0.6)
    assert _status(client)["overall"] == "ready"
    assert q(db, "select count(*) n from promotions where checkpoint_id = %s", (f"{M}__step-2000",))[0]["n"] == 1
