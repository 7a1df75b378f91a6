"""Default mode: ingest queues the judgement in its own transaction; the worker judges within seconds."""

from __future__ import annotations

import pytest

from ingest_api.ops.worker import run_worker
from tests.conftest import q
from tests.plugins.alert_data import open_alerts, post

pytestmark = pytest.mark.usefixtures("alerts_deferred")

def test_ingest_queues_and_worker_raises_the_same_alert(client, db, ingest_headers):
    for step, v in ((1000, 0.70), (2000, 0.70)):
        for d, base in (("gsm8k", v), ("mmlu", 0.60)):
            post(client, ingest_headers, "k2", step, d, base)
    post(client, ingest_headers, "k2", 3000, "gsm8k", 0.58)
    post(client, ingest_headers, "k2", 3000, "mmlu", 0.60)
    # Nothing judged in the request…
    assert open_alerts(client) == []
    # …but every posted cell is queued, in the transaction that stored it (never lost).
    queued = {(r["checkpoint_id"], r["dataset_name"]) for r in q(db, "select * from alert_recheck")}
    assert ("k2__step-3000", "gsm8k") in queued and len(queued) == 6
    assert run_worker(db, once=True) == 0
    got = open_alerts(client, type="regression")
    assert [(a["checkpoint_id"], a["dataset_name"], a["severity"]) for a in got] == [
        ("k2__step-3000", "gsm8k", "critical")]
    assert q(db, "select count(*) n from alert_recheck")[0]["n"] == 0
    # Draining again changes nothing (no duplicate).
    assert run_worker(db, once=True) == 0
    assert len(open_alerts(client, type="regression")) == 1
