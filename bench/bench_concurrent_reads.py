"""Concurrent reads against ONE API worker (issue 12 §3): N clients at once, all must be answered 200.

Starts a throwaway embedded PostgreSQL (or uses --database-url), a real `eval360 api` process with one
worker, posts a small data set, then fires N concurrent GET requests (one connection per request,
all sent at the same moment) while /api/health is polled every 100 ms. Prints total time, p50/p95/max
latency, the status counts, and every health answer seen during the burst; beside them, the same-run
reference: one request alone, and the bare SQL of the endpoint on one connection.

    .venv/bin/python bench/bench_concurrent_reads.py [--clients 300] [--rounds 3] [--path /api/models]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import INGEST, api_server, embedded_db, pct


def seed(base: str, models: int = 6, steps: int = 5, datasets: int = 8) -> int:
    headers = {"Authorization": f"Bearer {INGEST}"}
    n = 0
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        for m in range(models):
            for s in range(1, steps + 1):
                for d in range(datasets):
                    r = c.post("/api/ingest/eval-result", json={
                        "model_id": f"conc-m{m}", "display_name": f"Conc {m}", "owner": "bench",
                        "checkpoint_id": f"conc-m{m}__step-{s * 100}",
                        "dataset_name": f"conc-ds{d}", "eval_run_id": f"conc-{m}-{s}-{d}", "sample_count": 500,
                        "metrics": {"accuracy": ((m + s + d) % 10) / 10}})
                    r.raise_for_status()
                    n += 1
    return n


async def burst(base: str, path: str, clients: int, health_period_s: float = 0.1) -> dict:
    """N concurrent GETs, each on its own connection, released together; health polled meanwhile."""
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(300.0), limits=limits) as c:
        gate = asyncio.Event()
        lat: list[float] = []
        statuses: collections.Counter = collections.Counter()
        errors: list[str] = []
        health: list[tuple[int, str]] = []
        done = asyncio.Event()

        async def one() -> None:
            await gate.wait()
            t = time.perf_counter()
            try:
                r = await c.get(path)
                statuses[r.status_code] += 1
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
            except httpx.HTTPError as exc:
                statuses[exc.__class__.__name__] += 1
                errors.append(repr(exc))
            lat.append(time.perf_counter() - t)

        async def poll_health() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(300.0)) as hc:
                while not done.is_set():
                    try:
                        r = await hc.get("/api/health")
                        health.append((r.status_code, r.json().get("database", r.json().get("detail"))))
                    except httpx.HTTPError as exc:
                        health.append((0, exc.__class__.__name__))
                    await asyncio.sleep(health_period_s)

        tasks = [asyncio.create_task(one()) for _ in range(clients)]
        hp = asyncio.create_task(poll_health())
        await asyncio.sleep(0.2)  # every task waits at the gate
        t0 = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        total = time.perf_counter() - t0
        done.set()
        await hp
    return {"clients": clients, "total_s": round(total, 3), "p50_ms": round(pct(lat, 50) * 1000, 1),
            "p95_ms": round(pct(lat, 95) * 1000, 1), "max_ms": round(max(lat) * 1000, 1),
            "statuses": {str(k): v for k, v in statuses.items()}, "errors": len(errors),
            "first_errors": errors[:3], "health": dict(collections.Counter(f"{s} {d}" for s, d in health))}


def reference(base: str, url: str, path: str, repeat: int = 30) -> dict:
    alone = []
    with httpx.Client(base_url=base, timeout=30) as c:
        for _ in range(repeat):
            t = time.perf_counter()
            c.get(path).raise_for_status()
            alone.append(time.perf_counter() - t)
    bare = []
    from ingest_api.read import catalog

    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(repeat):
            t = time.perf_counter()
            catalog.list_models(conn)
            bare.append(time.perf_counter() - t)
    return {"one_request_alone_p50_ms": round(statistics.median(alone) * 1000, 2),
            "bare_sql_p50_ms": round(statistics.median(bare) * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--path", default="/api/models")
    ap.add_argument("--database-url", default=None, help="a migrated database (default: a throwaway embedded one)")
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    ctx = nullcontext(args.database_url) if args.database_url else embedded_db("eval360-bench-conc-")
    with ctx as url, api_server(url, workers=1) as base:
        n = seed(base)
        ref = reference(base, url, args.path)
        rounds = [asyncio.run(burst(base, args.path, args.clients)) for _ in range(args.rounds)]
    out = {"path": args.path, "results_seeded": n, "reference": ref, "rounds": rounds}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    bad = sum(r["errors"] for r in rounds) + sum(v for r in rounds for k, v in r["health"].items()
                                                if not k.startswith("200"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
