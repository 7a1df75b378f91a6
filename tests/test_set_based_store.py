"""The set-based write path (sql/functions/50_store_results.sql): a batch is stored as if its results were posted one
by one; a failing batch leaves nothing; group commit answers each post on its own; the read-side
facts queued by writes are drained before reads and in the background."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from ingest_api.core.db import make_async_pool, make_pool
from ingest_api.core.errors import ApiError
from ingest_api.ingest.batcher import ResultBatcher
from ingest_api.ingest.schemas import EvalResultIn
from tests.conftest import INGEST, q
from tests.helpers import minimal_payload
from tests.plugins.views import facts, rebuilt


def _mixed(model: str) -> list[dict]:
    """Results that exercise every rule of the write: new runs, a re-post with other metrics, one run
    posted twice, two new runs of one cell, metadata merged, a posted alias, a category, a baseline."""
    ck = f"{model}__step-100"

    def p(**over):
        return minimal_payload(model_id=model, display_name=model.upper(), **over)

    return [
        p(checkpoint_id=ck, dataset_name="a", eval_run_id=f"{model}-r1", metrics={"accuracy": 0.5, "f1": 0.4},
          metadata={"x": 1}, checkpoint_path="/ck/100"),
        p(checkpoint_id=ck, dataset_name="b", eval_run_id=f"{model}-r2", metrics={"accuracy": 0.6},
          metadata={"y": 2}, category="math", recipe_tags=["sft"]),
        p(checkpoint_id=ck, dataset_name="a", eval_run_id=f"{model}-r1", metrics={"accuracy": 0.55},
          sample_count=200),                                     # same run again: metrics replaced
        p(checkpoint_id=ck, dataset_name="b", eval_run_id=f"{model}-r3", metrics={"accuracy": 0.65}),  # supersedes r2
        p(checkpoint_id=ck, dataset_name="b", eval_run_id=f"{model}-r4", metrics={"accuracy": 0.7},
          metadata={"x": 3}, status="failed"),                  # and r3
        p(checkpoint_id=f"{model}_step200", training_step=200, dataset_name="a",
          metrics={"accuracy": 0.7}, owner="other", param_count=7),  # alias spelling, derived run id
    ]


def _state(db: str, model: str) -> dict:
    def norm(v):
        return v.replace(model, "M").replace(model.upper(), "M") if isinstance(v, str) else v

    def rows(sql):
        return sorted(tuple(norm(x) for x in r.values()) for r in q(db, sql, {"m": model}))

    return {
        "models": rows("select display_name, owner, model_type, param_count from models where model_id = %(m)s"),
        "checkpoints": rows("select checkpoint_id, training_step, checkpoint_path, metadata::text, training_run, "
                            "recipe_tags::text from checkpoints where model_id = %(m)s"),
        "aliases": rows("select alias, a.checkpoint_id from checkpoint_aliases a join checkpoints c "
                        "using (checkpoint_id) where c.model_id = %(m)s"),
        "runs": rows("select checkpoint_id, dataset_name, is_current, status, sample_count, metadata::text, "
                     "case when eval_run_id like 'run-%%' then 'derived' else eval_run_id end "
                     "from eval_runs where model_id = %(m)s"),
        "results": rows("select r.checkpoint_id, r.dataset_name, r.is_current, e.metric_name, e.metric_value, "
                        "e.is_primary, e.ci_lower from eval_results e join eval_runs r using (eval_run_id) "
                        "where r.model_id = %(m)s"),
        "categories": rows("select dataset_name, category from benchmark_metadata where category is not null"),
    }


def test_a_batch_is_stored_as_if_posted_one_by_one(client, db, ingest_headers):
    for p in _mixed("seq"):
        assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
    r = client.post("/api/ingest/eval-results", json={"results": _mixed("bat")}, headers=ingest_headers)
    assert r.status_code == 200, r.text
    seq, bat = _state(db, "seq"), _state(db, "bat")
    assert bat == seq
    # and what that state is, checked by hand
    assert [x[1:4] for x in seq["runs"] if x[0] == "M__step-100" and x[1] == "b"] == [
        ("b", False, "completed"), ("b", False, "completed"), ("b", True, "failed")]
    assert ("M__step-100", 100, "/ck/100", '{"x": 3, "y": 2}', None, "{sft}") in seq["checkpoints"]
    assert seq["models"] == [("M", "other", "training", 7)]
    assert {m[3] for m in seq["results"] if m[1] == "a" and m[0] == "M__step-100"} == {"accuracy"}
    assert ("M_step200", "M__step-200") in seq["aliases"]
    replies = r.json()["results"]
    assert [x["is_new_run"] for x in replies] == [True, True, False, True, True, True]
    assert [x["checkpoint_id"] for x in replies][-1] == "bat__step-200"
    assert facts(db) == rebuilt(db)


def test_a_conflict_anywhere_in_a_batch_stores_nothing_and_names_the_result(client, db, ingest_headers):
    client.post("/api/ingest/eval-result", json=minimal_payload(eval_run_id="taken", dataset_name="x"),
                headers=ingest_headers)
    before = q(db, "select count(*) n from eval_runs")[0]["n"]
    batch = [minimal_payload(dataset_name="d1", eval_run_id="fresh-1"),
             minimal_payload(dataset_name="d2", eval_run_id="taken"),  # belongs to dataset x
             minimal_payload(dataset_name="d3", eval_run_id="fresh-3")]
    r = client.post("/api/ingest/eval-results", json={"results": batch}, headers=ingest_headers)
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "results[1].eval_run_id"
    assert "already belongs to checkpoint" in r.json()["error"]["message"]
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == before
    assert q(db, "select count(*) n from activity where dataset_name in ('d1', 'd3')")[0]["n"] == 0
    # within the batch too: one run id for two datasets
    r = client.post("/api/ingest/eval-results", json={"results": [
        minimal_payload(dataset_name="d1", eval_run_id="twice"), minimal_payload(dataset_name="d2",
                                                                                 eval_run_id="twice")]},
        headers=ingest_headers)
    assert r.status_code == 409 and r.json()["error"]["field"] == "results[1].eval_run_id"
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == before


@pytest.mark.parametrize("path", ["thread", "event_loop"])
def test_group_commit_fails_only_the_bad_result(db, settings, path):
    """The batcher's fallback: a batch holding a conflicting result is stored again one by one
    (both ways of storing: from a worker thread, and from the event loop on the async pool)."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into models (model_id, display_name) values ('other', 'Other')")
        c.execute("insert into checkpoints (checkpoint_id, model_id, training_step) "
                  "values ('k2-think-v2__step-9', 'other', 9)")
    good1 = EvalResultIn(**minimal_payload(dataset_name="g1"))
    bad = EvalResultIn(**minimal_payload(checkpoint_id="k2-think-v2__step-9", dataset_name="g2"))
    good2 = EvalResultIn(**minimal_payload(dataset_name="g3"))
    batch = [(good1, "ingest", None), (bad, "admin", None), (good2, "ingest", None)]
    pool = make_pool(db, settings)
    try:
        if path == "thread":
            out = ResultBatcher(pool)._store(batch)
        else:
            async def run():
                apool = make_async_pool(db, settings)
                await apool.open(wait=True)
                try:
                    return await ResultBatcher(pool, apool=apool)._store_async(batch)
                finally:
                    await apool.close()

            out = asyncio.run(run())
    finally:
        pool.close()
    assert isinstance(out[1], ApiError) and out[1].status == 409 and out[1].field == "checkpoint_id"
    assert [o.dataset_name for o in (out[0], out[2])] == ["g1", "g3"]
    assert sorted(r["dataset_name"] for r in q(db, "select dataset_name from eval_runs")) == ["g1", "g3"]
    assert {r["actor"] for r in q(db, "select actor from activity where dataset_name = 'g1'")} == {"ingest"}


def test_concurrent_posts_each_get_their_own_answer(live_server, db):
    q(db, "select 1")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into models (model_id, display_name) values ('other', 'Other')")
        c.execute("insert into checkpoints (checkpoint_id, model_id, training_step) "
                  "values ('k2-think-v2__step-9', 'other', 9)")
    posts = [minimal_payload(dataset_name=f"d{i}", metrics={"accuracy": i / 100}) for i in range(40)]
    posts[7] = minimal_payload(checkpoint_id="k2-think-v2__step-9", dataset_name="bad7")
    posts[29] = minimal_payload(checkpoint_id="k2-think-v2__step-9", dataset_name="bad29")
    gate = threading.Barrier(8)

    def send(chunk):
        out = []
        with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {INGEST}"}, timeout=60) as c:
            gate.wait()
            for p in chunk:
                r = c.post("/api/ingest/eval-result", json=p)
                out.append((p["dataset_name"], r.status_code, r.json()))
        return out

    with ThreadPoolExecutor(8) as ex:
        replies = [x for part in ex.map(send, [posts[i::8] for i in range(8)]) for x in part]
    by_ds = {ds: (status, body) for ds, status, body in replies}
    assert {ds for ds, (s, _) in by_ds.items() if s == 409} == {"bad7", "bad29"}
    assert all(s == 200 for ds, (s, _) in by_ds.items() if not ds.startswith("bad"))
    assert all(b["dataset_name"] == ds for ds, (s, b) in by_ds.items() if s == 200)  # each its own reply
    stored = q(db, "select dataset_name, count(*) n from eval_runs group by dataset_name")
    assert sorted(r["dataset_name"] for r in stored) == sorted(f"d{i}" for i in range(40) if i not in (7, 29))
    assert all(r["n"] == 1 for r in stored)


def test_writes_queue_facts_and_a_reader_drains_them(client, db, ingest_headers):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(), headers=ingest_headers)
    run = r.json()["eval_run_id"]
    # straight from the tables (no reader has flushed yet, and the background drainer waits 250 ms)
    pending = {x["eval_run_id"] for x in q(db, "select eval_run_id from facts_pending")}
    facts = {x["eval_run_id"] for x in q(db, "select eval_run_id from score_facts")}
    assert run in pending or run in facts
    h = client.get("/api/heatmap")
    assert h.status_code == 200
    assert q(db, "select count(*) n from facts_pending")[0]["n"] == 0
    assert q(db, "select eval_run_id from score_facts") == [{"eval_run_id": run}]
    assert "k2-think-v2" in h.text


def test_flush_queues_on_one_lock_and_the_no_wait_form_gives_up(db):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into facts_pending (eval_run_id) values ('ghost')")
    with psycopg.connect(db) as holder, psycopg.connect(db, autocommit=True) as other:
        holder.execute("select pg_advisory_xact_lock(360000002)")
        assert other.execute("select eval360_flush_facts(null, false)").fetchone()[0] == -1
        other.execute("set statement_timeout = 300")
        with pytest.raises(psycopg.errors.QueryCanceled):
            other.execute("select eval360_flush_facts()")  # waits for the holder
        holder.rollback()
        assert other.execute("select eval360_flush_facts()").fetchone()[0] == 1
        assert other.execute("select count(*) from facts_pending").fetchone()[0] == 0


def test_background_drainer_refreshes_facts_without_any_reader(live_server, db):
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {INGEST}"}, timeout=60) as c:
        for ds in ("a", "b", "c"):
            assert c.post("/api/ingest/eval-result", json=minimal_payload(dataset_name=ds)).status_code == 200
    deadline = time.time() + 20
    with psycopg.connect(db, autocommit=True, row_factory=dict_row) as conn:
        while conn.execute("select count(*) n from facts_pending").fetchone()["n"] and time.time() < deadline:
            time.sleep(0.1)
        assert conn.execute("select count(*) n from facts_pending").fetchone()["n"] == 0
        assert conn.execute("select count(*) n from score_facts").fetchone()["n"] == 3
