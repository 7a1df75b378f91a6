"""The write path refreshes the read-side facts once per result (once per batch for the backfill):
whatever path wrote the data, the facts equal a rebuild from the base tables."""

from __future__ import annotations

import psycopg

from tests.helpers import minimal_payload
from tests.plugins.views import facts, rebuilt


def test_single_posts_batches_and_reposts_leave_facts_equal_to_a_rebuild(client, db, ingest_headers):
    for step in (100, 200):
        for ds in ("a", "b"):
            p = minimal_payload(checkpoint_id=f"k2-think-v2__step-{step}", dataset_name=ds,
                                metrics={"accuracy (avg over 1)": step / 1000 + (ds == "b") / 10}, sample_count=100)
            assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
    batch = [minimal_payload(checkpoint_id=f"k2-think-v2__step-{s}", dataset_name=ds, eval_run_id=f"b-{s}-{ds}",
                             metrics={"accuracy (avg over 1)": 0.5}) for s in (200, 300) for ds in ("a", "c")]
    r = client.post("/api/ingest/eval-results", json={"results": batch, "source": "backfill"}, headers=ingest_headers)
    assert r.status_code == 200
    after = facts(db)
    # step 200 / a now has a newer current run from the batch: the facts point at it
    assert {f["eval_run_id"] for f in after[0] if f["checkpoint_id"] == "k2-think-v2__step-200"
            and f["dataset_name"] == "a"} == {"b-200-a"}
    assert len(after[0]) == 7 and len(after[1]) == 3
    assert after == rebuilt(db)


def test_checkpoint_metadata_update_keeps_facts_and_step_change_refreshes_them(client, db, ingest_headers):
    client.post("/api/ingest/eval-result", json=minimal_payload(), headers=ingest_headers)
    before = facts(db)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("update checkpoints set metadata = '{\"x\": 1}'")
    assert facts(db) == before
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("update checkpoints set training_step = 5001")
    steps = {f["training_step"] for f in facts(db)[0]}
    assert steps == {5001}
    assert facts(db) == rebuilt(db)
