"""A/B latency of two checkouts of the API on the same database, requests interleaved (not a test).

Both `eval360 api` processes run side by side, on one database or (--data-dir-b) each on its own copy
of the same data, migrated by its own checkout (when the two differ in sql/); each round sends every
path to A, then to B (alternating which goes first), so load from other processes on the machine
falls on both alike. Reports p50/p95 per path and side, and the ratio B/A of the medians.

    .venv/bin/python bench/bench_ab.py --a /tmp/api-base --b . --data-dir /tmp/api-bench-db \\
        --path /api/heatmap?score=latest --path /api/models --rounds 100

--data-dir: a database loaded by bench/bench_read.py (its embedded PostgreSQL data directory);
--data-dir-b: B's own, loaded by B's bench/bench_read.py with the same seed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import ADMIN, INGEST, KeepAlive, free_port, pct

from ingest_api.core.db import embedded_url


def start(checkout: Path, url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, EVAL360_INGEST_TOKEN=INGEST, EVAL360_ADMIN_TOKEN=ADMIN,
               EVAL360_LOG_LEVEL="WARNING", PYTHONPATH=str(checkout))
    proc = subprocess.Popen([sys.executable, "-m", "ingest_api.cli", "api", "--port", str(port), "--no-migrate",
                             "--quiet"], cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{checkout}: API did not start: " + (proc.stderr.read().decode()[-2000:] if proc.stderr else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="checkout A (the reference)")
    ap.add_argument("--b", required=True, help="checkout B")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--data-dir-b", help="B's own database (default: A's)")
    ap.add_argument("--path", action="append", required=True, help="a GET path (repeatable)")
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    url = embedded_url(Path(args.data_dir))
    urls = {"A": url, "B": embedded_url(Path(args.data_dir_b)) if args.data_dir_b else url}
    sides = {"A": Path(args.a).resolve(), "B": Path(args.b).resolve()}
    procs, clients = [], {}
    try:
        for name, checkout in sides.items():
            proc, base = start(checkout, urls[name])
            procs.append(proc)
            clients[name] = KeepAlive(base, {})
        times: dict[tuple[str, str], list[float]] = {(p, s): [] for p in args.path for s in sides}
        for p in args.path:  # warm up
            for s in sides:
                for _ in range(5):
                    status, body = clients[s].get(p)
                    assert status == 200, (s, p, status, body[:200])
        for i in range(args.rounds):
            order = ["A", "B"] if i % 2 == 0 else ["B", "A"]
            for p in args.path:
                for s in order:
                    t = time.perf_counter()
                    clients[s].get(p)
                    times[(p, s)].append((time.perf_counter() - t) * 1000)
        print(f"{'path':40} {'A p50':>8} {'A p95':>8} {'B p50':>8} {'B p95':>8} {'B/A p50':>8}")
        for p in args.path:
            a, b = times[(p, "A")], times[(p, "B")]
            print(f"{p:40} {pct(a, 50):8.2f} {pct(a, 95):8.2f} {pct(b, 50):8.2f} {pct(b, 95):8.2f} "
                  f"{pct(b, 50) / pct(a, 50):8.2f}")
        print(f"(ms over {args.rounds} interleaved rounds; A = {sides['A']}, B = {sides['B']}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end)")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
