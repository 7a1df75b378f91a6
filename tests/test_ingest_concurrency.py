"""Concurrent posts of the same checkpoint through a real uvicorn server leave exactly one copy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import INGEST, q
from tests.helpers import minimal_payload, scheduler_payload


def test_eight_threads_same_checkpoint_one_copy(live_server, db):
    headers = {"Authorization": f"Bearer {INGEST}"}
    # same checkpoint, spelled two ways, same dataset, no run id: one checkpoint, one run
    payloads = [minimal_payload(checkpoint_id=cid) for cid in
                ["k2-think-v2__step-5000", "k2-think-v2__k2moe375b-mid1-checkpoint_0005000"] * 4]

    def post(p):
        with httpx.Client(base_url=live_server, timeout=30) as c:
            return c.post("/api/ingest/eval-result", json=p, headers=headers).status_code

    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(post, payloads * 3))
    assert codes == [200] * 24
    assert q(db, "select count(*) n from models")[0]["n"] == 1
    assert q(db, "select count(*) n from checkpoints")[0]["n"] == 1
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == 1
    assert q(db, "select count(*) n from eval_results")[0]["n"] == 1


def test_eight_threads_distinct_runs_one_current(live_server, db):
    headers = {"Authorization": f"Bearer {INGEST}"}

    def post(i):
        with httpx.Client(base_url=live_server, timeout=30) as c:
            return c.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id=f"r{i}"),
                          headers=headers).status_code

    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(post, range(16)))
    assert codes == [200] * 16
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == 16
    assert q(db, "select count(*) n from eval_runs where is_current")[0]["n"] == 1
