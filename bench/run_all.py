"""`make bench`: every benchmark in one run, each figure next to its reference measured in the same run.

Runs, in order: ingest (bench_ingest.py), backfill (bench_backfill.py, a generated 10 × 100 × 40 tree),
alerts (bench_alerts.py: ingest with the worker on, judge clear rate; bench_alert_sim.py: the rule's simulation),
read API on an LLM360-scale database (bench_read.py: 15 models, 1,005 checkpoints, 40 datasets,
≥ 5,000,000 example rows), and dashboard page renders on that same database (bench_dashboard.py), then example analytics across
training, PostgreSQL against DuckDB (bench_items.py).
Writes bench/results.json and bench/results.md, and prints the Markdown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
OUT = ROOT / "bench" / "out"


def run(name: str, args: list[str], env: dict | None = None) -> dict:
    print(f"\n=== {name}: {' '.join(args)}", flush=True)
    t = time.perf_counter()
    proc = subprocess.run([PY, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t
    sys.stdout.write(proc.stdout[-6000:])
    if proc.returncode != 0:
        sys.stdout.write(proc.stderr[-3000:])
    return {"command": " ".join(["python", *args]), "seconds": round(secs, 1), "exit_code": proc.returncode,
            "output": proc.stdout[-20000:]}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict = {"started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": os.uname().nodename,
                     "cores": os.cpu_count(), "parts": {}}
    parts = results["parts"]
    parts["ingest"] = run("ingest", ["bench/bench_ingest.py", "--results", "2000", "--examples", "100000",
                                     "--json", str(OUT / "ingest.json")])
    parts["backfill"] = run("backfill", ["bench/bench_backfill.py", "--models", "10", "--checkpoints", "100",
                                         "--datasets", "40", "--no-rerun"])
    # Alerts (issue 14): LLM360-scale ingest with the worker running, the judge's clear rate next to the
    # store rate, and the seeded simulation of the rule beside the rule it replaced.
    parts["alerts"] = run("alerts", ["bench/bench_alerts.py", "--json", str(OUT / "alerts.json")])
    parts["alert_simulation"] = run("alert simulation", ["bench/bench_alert_sim.py", "--reps", "200",
                                                         "--json", str(OUT / "alert_sim.json")])
    data_dir = Path(tempfile.mkdtemp(prefix="eval360-bench-llm360-"))
    parts["read"] = run("read", ["bench/bench_read.py", "--data-dir", str(data_dir), "--repeat", "30",
                                 "--json", str(OUT / "read.json")])
    from ingest_api.core.db import _embedded, embedded_url

    url = embedded_url(data_dir)  # the same LLM360-scale database, for the dashboard renders
    try:
        parts["dashboard"] = run("dashboard", ["bench/bench_dashboard.py", "--database-url", url, "--repeat", "3"])
    finally:
        srv = _embedded.pop(str(data_dir.resolve()), None)
        if srv is not None:
            srv.cleanup()
    # Example analytics across training (issue 17): PostgreSQL vs DuckDB on the tree with example rows on
    # every run (4 datasets: ≈5 M rows, the per-question work of the 40-dataset ≈50 M tree; docs/views.md).
    parts["items"] = run("items", ["bench/bench_items.py", "--datasets", "4", "--examples", "1250",
                                   "--repeat", "20", "--json", str(OUT / "items.json")])
    for name, f in (("ingest", "ingest.json"), ("read", "read.json"), ("items", "items.json"),
                    ("alerts", "alerts.json"), ("alert_simulation", "alert_sim.json")):
        p = OUT / f
        if p.exists():
            parts[name]["figures"] = json.loads(p.read_text())
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2, default=str))
    md = [f"# make bench — {results['started_at']} ({results['cores']} cores), {results['total_seconds']} s", ""]
    for name, part in parts.items():
        md += [f"## {name} ({part['seconds']} s, exit {part['exit_code']})", "", "```", part["output"].strip(), "```", ""]
    (ROOT / "bench" / "results.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if all(p["exit_code"] == 0 for p in parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
