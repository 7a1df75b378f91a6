"""GET /api/activity: every ingest, alert, acknowledgement, promotion and admin change; newest first; by model."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from tests.conftest import q
from tests.plugins.alert_data import post

pytestmark = pytest.mark.usefixtures("alerts_inline")

def _events(client, **params) -> list[dict]:
    r = client.get("/api/activity", params=params)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def test_feed_records_everything_newest_first(client, db, ingest_headers, admin_headers):
    client.post("/api/admin/suites", json={"suite_id": "core", "display_name": "Core", "dataset_names": ["gsm8k"]},
                headers=admin_headers)
    for s, v in ((1000, 0.7), (2000, 0.7), (3000, 0.55)):
        post(client, ingest_headers, "k2", s, "gsm8k", v)
    client.post("/api/admin/promotion-rules", json={"rule_name": "floor", "min_scores": {"gsm8k": 0.5},
                                                    "no_regressions": False}, headers=admin_headers)
    alert = client.get("/api/alerts", params={"type": "regression"}).json()["alerts"][0]
    client.post(f"/api/alerts/{alert['id']}/acknowledge", json={"by": "alice"}, headers=admin_headers)
    client.patch("/api/models/k2", json={"is_pinned": True}, headers=admin_headers)
    ev = _events(client, limit=200)
    kinds = [e["kind"] for e in ev]
    for t in ("eval_result", "alert", "acknowledgement", "promotion", "admin"):
        assert t in kinds, t
    # event_type speaks the earlier dashboard's names where one exists (docs/api.md).
    types = [e["event_type"] for e in ev]
    for t in ("eval_completed", "regression", "acknowledgement", "promotion", "admin"):
        assert t in types, t
    assert "eval_result" not in types and "alert" not in types
    keys = {"id", "event_type", "kind", "model_id", "checkpoint_id", "dataset_name", "summary", "detail",
            "created_at"}
    assert all(keys <= set(e) for e in ev)
    # Newest first: the model patch was the last thing done.
    assert ev[0]["event_type"] == "admin" and ev[0]["detail"]["action"] == "model_patch"
    assert [e["id"] for e in ev] == sorted((e["id"] for e in ev), reverse=True)
    stamps = [e["created_at"] for e in ev]
    assert stamps == sorted(stamps, reverse=True)
    ack = next(e for e in ev if e["event_type"] == "acknowledgement")
    assert ack["actor"] == "alice" and ack["detail"]["alert_id"] == alert["id"]


def test_old_event_types_filter_and_carry_the_delta(client, db, ingest_headers):
    """The earlier SPA's "Regressions" filter: event_type=regression, with detail.delta (new − previous)."""
    for s, v in ((1000, 0.7), (2000, 0.7), (3000, 0.55), (4000, 0.72)):
        post(client, ingest_headers, "k2", s, "gsm8k", v)
    reg = _events(client, event_type="regression")
    assert len(reg) == 1 and reg[0]["kind"] == "alert" and reg[0]["checkpoint_id"] == "k2__step-3000"
    assert reg[0]["detail"]["delta"] == pytest.approx(0.55 - 0.7)
    assert (reg[0]["detail"]["value"], reg[0]["detail"]["previous_value"]) == (0.55, 0.7)
    imp = _events(client, event_type="improvement")
    assert [e["checkpoint_id"] for e in imp] == ["k2__step-4000"]
    assert imp[0]["detail"]["delta"] == pytest.approx(0.72 - 0.55)
    done = _events(client, event_type="eval_completed")
    assert len(done) == 4 and {e["kind"] for e in done} == {"eval_result"}
    # The stored kinds still filter.
    assert {e["event_type"] for e in _events(client, event_type="alert")} <= {"regression", "improvement",
                                                                              "new_best", "missing_evaluation"}
    assert len(_events(client, event_type="eval_result")) == 4


def test_filter_by_model_and_pagination(client, db, ingest_headers):
    for i in range(7):
        post(client, ingest_headers, "a", 1000 * (i + 1), "gsm8k", 0.6)
    post(client, ingest_headers, "b", 1000, "gsm8k", 0.6)
    assert {e["model_id"] for e in _events(client, model_id="b")} == {"b"}
    body = client.get("/api/activity", params={"model_id": "a", "limit": 3}).json()
    assert body["total"] == 7 and len(body["events"]) == 3
    page2 = client.get("/api/activity", params={"model_id": "a", "limit": 3, "offset": 3}).json()["events"]
    cursor = client.get("/api/activity", params={"model_id": "a", "limit": 3,
                                                 "before_id": body["next_before_id"]}).json()["events"]
    assert [e["id"] for e in page2] == [e["id"] for e in cursor]
    assert not {e["id"] for e in page2} & {e["id"] for e in body["events"]}
    assert _events(client, model_id="nobody") == []
    for bad in ({"limit": 0}, {"limit": 1000}, {"offset": -1}, {"before_id": "x"}):
        assert client.get("/api/activity", params=bad).status_code == 422


def test_alerts_and_feed_filter_by_a_time_window(client, db, ingest_headers):
    """`since` ("what happened overnight"): only what came at or after that time."""
    for s, v in ((1000, 0.7), (2000, 0.7), (3000, 0.55)):
        post(client, ingest_headers, "k2", s, "gsm8k", v)
    alerts = client.get("/api/alerts", params={"status": "all"}).json()["alerts"]
    assert alerts and _events(client, limit=200)
    # Everything moved a day back, then a window of the last hour: nothing; the last two days: everything.
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("update alerts set created_at = created_at - interval '1 day'")
        c.execute("update activity set created_at = created_at - interval '1 day'")
    now = q(db, "select now() as t")[0]["t"]
    hour_ago, two_days_ago = (now - timedelta(hours=h) for h in (1, 48))
    assert client.get("/api/alerts", params={"status": "all", "since": hour_ago.isoformat()}).json()["alerts"] == []
    assert _events(client, since=hour_ago.isoformat()) == []
    assert len(client.get("/api/alerts", params={"status": "all", "since": two_days_ago.isoformat()})
               .json()["alerts"]) == len(alerts)
    assert len(_events(client, since=two_days_ago.isoformat(), limit=200)) == len(_events(client, limit=200))
    assert client.get("/api/alerts", params={"since": "yesterday"}).status_code == 422
