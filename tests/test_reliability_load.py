"""Load: 16 concurrent clients post 2,000 eval results and 200,000 examples with overlaps and
repeats, through a real API process; afterwards every acknowledged write is there exactly once."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import INGEST, q
from tests.plugins.servers import api_process

pytestmark = pytest.mark.slow

N_RESULTS = 2000
N_RUNS_WITH_EXAMPLES = 20
N_EXAMPLES_PER_RUN = 10_000
BATCH = 2_000


@pytest.fixture
def two_worker_api(db, tmp_path):
    """`eval360 api` with two worker processes and a pool of 16."""
    with api_process(db, tmp_path, "--workers", "2", EVAL360_POOL_MAX="16") as base:
        yield base


def _result(i: int) -> dict:
    model, rest = divmod(i, 500)
    step, ds = divmod(rest, 25)
    return {"model_id": f"load-m{model}", "display_name": f"Load {model}", "owner": "load",
            "checkpoint_id": f"load-m{model}__step-{(step + 1) * 100}", "dataset_name": f"ds-{ds:02d}",
            "eval_run_id": f"load-run-{i}", "sample_count": 1000,
            "metrics": {"accuracy (avg over 4)": (i % 100) / 100, "bootstrap_std (avg over 4)": 0.01,
                        "accuracy (pass@4)": 0.9}}


def test_sixteen_clients_overlaps_and_repeats(two_worker_api, db):
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {INGEST}", "Content-Type": "application/json"}
    # Every result once, 25% of them again (repeats), shuffled across 16 clients.
    posts = list(range(N_RESULTS)) + rng.sample(range(N_RESULTS), N_RESULTS // 4)
    rng.shuffle(posts)
    statuses: list[int] = []

    def post_results(chunk: list[int]) -> None:
        with httpx.Client(base_url=two_worker_api, headers=headers, timeout=120) as c:
            for i in chunk:
                statuses.append(c.post("/api/ingest/eval-result", content=json.dumps(_result(i))).status_code)

    with ThreadPoolExecutor(16) as ex:
        list(ex.map(post_results, [posts[k::16] for k in range(16)]))
    assert set(statuses) == {200}, sorted(set(statuses))

    # Examples: 20 runs × 10,000 rows in batches of 2,000; every batch sent twice, plus batches
    # that straddle two neighbours (overlapping index ranges), all in random order.
    runs = [f"load-run-{i}" for i in range(N_RUNS_WITH_EXAMPLES)]
    batches = []
    for run in runs:
        for start in range(0, N_EXAMPLES_PER_RUN, BATCH):
            batches += [(run, start, BATCH)] * 2
        batches.append((run, BATCH // 2, BATCH))  # overlaps the first two batches
    rng.shuffle(batches)
    ex_status: list[int] = []

    def body(run: str, start: int, n: int) -> bytes:
        return json.dumps({"eval_run_id": run, "examples": [
            {"example_idx": i, "correct": (i * 7) % 3 == 0, "input_preview": f"q{i}", "output_preview": f"a{i}",
             "topic": f"t{i % 5}", "difficulty": "easy"} for i in range(start, start + n)]}).encode()

    def post_examples(chunk) -> None:
        with httpx.Client(base_url=two_worker_api, headers=headers, timeout=120) as c:
            for run, start, n in chunk:
                ex_status.append(c.post("/api/ingest/examples", content=body(run, start, n)).status_code)

    with ThreadPoolExecutor(16) as ex:
        list(ex.map(post_examples, [batches[k::16] for k in range(16)]))
    assert set(ex_status) == {200}, sorted(set(ex_status))

    assert q(db, "select count(*) n, count(distinct eval_run_id) d from eval_runs") == [{"n": N_RESULTS, "d": N_RESULTS}]
    assert q(db, "select count(*) n from eval_results")[0]["n"] == 3 * N_RESULTS
    assert q(db, "select count(*) n from eval_runs where is_current")[0]["n"] == N_RESULTS
    assert q(db, "select count(*) n from checkpoints")[0]["n"] == 4 * 20
    ex = q(db, "select count(*) n, count(distinct (eval_run_id, example_idx)) d from example_results")[0]
    assert ex == {"n": N_RUNS_WITH_EXAMPLES * N_EXAMPLES_PER_RUN, "d": N_RUNS_WITH_EXAMPLES * N_EXAMPLES_PER_RUN}
    # Values are what was posted (a spot check that is independent of the write path).
    assert q(db, "select metric_value from eval_results where eval_run_id = 'load-run-1234' and is_primary") == [
        {"metric_value": 0.34}]
    per_run = q(db, "select eval_run_id, sum(score) s from example_results group by 1")
    expected = sum(1 for i in range(N_EXAMPLES_PER_RUN) if (i * 7) % 3 == 0)
    assert {r["s"] for r in per_run} == {expected}


# ---------------------------------------------------------------- 300 concurrent reads, one worker (issue 12 §3)

N_CONCURRENT_READS = 300


@pytest.fixture
def one_worker_api(db, tmp_path):
    """`eval360 api` with ONE worker process and the default pool (10 connections)."""
    with api_process(db, tmp_path, EVAL360_POOL_MAX=None, EVAL360_POOL_TIMEOUT_S=None,
                     EVAL360_QUEUE_TIMEOUT_S=None) as base:
        yield base


def test_300_concurrent_reads_on_one_worker_all_succeed(one_worker_api):
    """Every one of 300 simultaneous GET /api/models is answered 200 (queued, not refused), and
    /api/health answers 200 throughout, saying the database is ok (with the queue in its pool stats).

    Before: the handlers' threads (40) all waited for one of the pool's 10 connections while the
    requests holding those connections waited for a thread; the pool timeout broke the deadlock
    with 503s (256 of 300), and the health check said "database unreachable"."""
    import asyncio
    import collections

    base = one_worker_api
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {INGEST}"}, timeout=60) as c:
        for i in range(40):
            assert c.post("/api/ingest/eval-result", json=_result(i)).status_code == 200

    async def burst() -> tuple[collections.Counter, list, list]:
        limits = httpx.Limits(max_connections=N_CONCURRENT_READS + 4, max_keepalive_connections=0)
        statuses: collections.Counter = collections.Counter()
        bodies: list[str] = []
        health: list[tuple[int, dict]] = []
        gate, done = asyncio.Event(), asyncio.Event()
        async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
            async def one() -> None:
                await gate.wait()
                try:
                    r = await client.get("/api/models")
                    statuses[r.status_code] += 1
                    if r.status_code != 200:
                        bodies.append(r.text[:300])
                except httpx.HTTPError as exc:
                    statuses[exc.__class__.__name__] += 1

            async def poll_health() -> None:
                async with httpx.AsyncClient(base_url=base, timeout=300) as hc:
                    while not done.is_set():
                        r = await hc.get("/api/health")
                        health.append((r.status_code, r.json()))
                        await asyncio.sleep(0.05)

            tasks = [asyncio.create_task(one()) for _ in range(N_CONCURRENT_READS)]
            await asyncio.sleep(0.3)  # all of them wait at the gate
            hp = asyncio.create_task(poll_health())
            t0 = time.perf_counter()
            gate.set()
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - t0
            done.set()
            await hp
        print(f"\n{N_CONCURRENT_READS} concurrent GET /api/models on one worker: {dict(statuses)} in "
              f"{elapsed:.2f} s; {len(health)} health checks meanwhile: "
              f"{dict(collections.Counter((s, h.get('database'), h.get('saturated')) for s, h in health))}")
        return statuses, bodies, health

    statuses, bodies, health = asyncio.run(burst())
    assert statuses == {200: N_CONCURRENT_READS}, (dict(statuses), bodies[:3])
    assert health and all(s == 200 and h["database"] == "ok" for s, h in health), health[:5]
    assert {"max", "open", "idle", "requests_active", "requests_queued"} <= set(health[0][1]["pool"])
