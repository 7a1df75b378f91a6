"""Ingest throughput: eval-results/s (1 and 8 clients, keep-alive) and examples/s (batches of 5,000),
each next to a reference measured in the same run (bare SQL / raw COPY of the same rows).

    .venv/bin/python bench/bench_ingest.py [--results 2000] [--examples 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import INGEST, KeepAlive, api_server, embedded_db, table

HEAD = {"Authorization": f"Bearer {INGEST}", "Content-Type": "application/json"}


def payloads(n: int, model: str) -> list[dict]:
    out = []
    for i in range(n):
        step, ds = divmod(i, 40)
        out.append({
            "model_id": model, "display_name": model.upper(), "owner": "bench",
            "checkpoint_id": f"{model}__step-{(step + 1) * 500}", "dataset_name": f"dataset_{ds:02d}",
            "metrics": {"accuracy (avg over 8)": 0.5 + (i % 97) / 400, "bootstrap_std (avg over 8)": 0.02,
                        "accuracy (pass@1)": 0.5, "accuracy (pass@8)": 0.7},
            "training_step": (step + 1) * 500, "sample_count": 500, "harness_commit": "abc",
            "eval_config": {"temperature": 0.6}, "grader_type": "math",
        })
    return out


def post_serial(base: str, items: list[dict]) -> float:
    bodies = [json.dumps(p).encode() for p in items]
    c = KeepAlive(base, HEAD)
    try:
        t = time.perf_counter()
        for b in bodies:
            status, text = c.post("/api/ingest/eval-result", b)
            assert status == 200, text
        return time.perf_counter() - t
    finally:
        c.close()


def post_concurrent(base: str, items: list[dict], clients: int) -> float:
    chunks = [items[i::clients] for i in range(clients)]
    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(lambda ch: post_serial(base, ch), chunks))
    return time.perf_counter() - t


def until_visible(base: str) -> float:
    """Seconds until a reader sees every stored result: the first read after the posts refreshes
    whatever read-side facts the background drainer has not yet (sql/functions/40_facts.sql)."""
    t = time.perf_counter()
    r = httpx.get(base + "/api/heatmap", timeout=120)
    assert r.status_code == 200, r.text[:300]
    return time.perf_counter() - t


def bare_sql_results(url: str, items: list[dict]) -> float:
    """Reference: the same rows as plain INSERTs over one connection (no HTTP, no validation, no checks)."""
    with psycopg.connect(url) as conn:
        conn.execute("insert into models (model_id, display_name) values ('ref', 'ref')")
        t = time.perf_counter()
        for i, p in enumerate(items):
            cid = f"ref__{p['checkpoint_id']}"
            conn.execute("insert into checkpoints (checkpoint_id, model_id, training_step) values (%s, 'ref', %s) "
                         "on conflict do nothing", (cid, p["training_step"]))
            run = f"ref-run-{i}"
            conn.execute("insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name) "
                         "values (%s, %s, 'ref', %s)", (run, cid, p["dataset_name"]))
            with conn.cursor() as cur:
                cur.executemany("insert into eval_results (eval_run_id, metric_name, metric_value) values (%s,%s,%s)",
                                [(run, k, v) for k, v in p["metrics"].items()])
            conn.commit()
        return time.perf_counter() - t


def example_rows(n: int) -> list[dict]:
    return [{"example_idx": i, "correct": i % 3 == 0, "input_preview": f"Question {i}: " + "x" * 150,
             "output_preview": f"Answer {i} " + "y" * 150, "ground_truth": str(i % 10), "error_tag": None,
             "topic": f"topic{i % 7}", "difficulty": ["easy", "medium", "hard"][i % 3], "subtask": None,
             "metadata": {}} for i in range(n)]


def raw_copy(url: str, run_id: str, rows: list[dict], batch: int) -> float:
    cols = ("eval_run_id", "example_idx", "is_correct", "score", "input_preview", "output_preview",
            "ground_truth", "error_tag", "topic", "difficulty", "subtask", "metadata")
    tuples = [(run_id, e["example_idx"], e["correct"], 1.0 if e["correct"] else 0.0, e["input_preview"],
               e["output_preview"], e["ground_truth"], e["error_tag"], e["topic"], e["difficulty"], e["subtask"],
               json.dumps(e["metadata"])) for e in rows]
    with psycopg.connect(url) as conn:
        t = time.perf_counter()
        for i in range(0, len(tuples), batch):
            with conn.cursor() as cur, cur.copy(f"copy example_results ({', '.join(cols)}) from stdin") as cp:
                for row in tuples[i:i + batch]:
                    cp.write_row(row)
            conn.commit()
        return time.perf_counter() - t


def post_examples(base: str, run_id: str, rows: list[dict], batch: int) -> float:
    bodies = [json.dumps({"eval_run_id": run_id, "examples": rows[i:i + batch]}) for i in range(0, len(rows), batch)]
    with httpx.Client(base_url=base, headers=HEAD, timeout=120) as c:
        t = time.perf_counter()
        for b in bodies:
            r = c.post("/api/ingest/examples", content=b)
            assert r.status_code == 200, r.text
        return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=int, default=2000)
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--workers", type=int, default=1, help="API worker processes (default 1, as `eval360 api`)")
    a = ap.parse_args(argv)
    out = {}
    with embedded_db() as url, api_server(url, workers=a.workers) as base:
        # warm-up (connections, caches)
        post_serial(base, payloads(50, "warm"))
        n = a.results
        # Timed until a reader sees them all (not just until the last reply).
        t1 = post_serial(base, payloads(n, "one")) + until_visible(base)
        t8 = post_concurrent(base, payloads(n, "eight"), 8) + until_visible(base)
        tref = bare_sql_results(url, payloads(n, "ref"))
        rows = example_rows(a.examples)
        with httpx.Client(base_url=base, headers=HEAD) as c:
            for rid in ("ex-api", "ex-ref"):
                p = payloads(1, "ex")[0] | {"eval_run_id": rid, "dataset_name": rid}
                assert c.post("/api/ingest/eval-result", content=json.dumps(p)).status_code == 200
        te = post_examples(base, "ex-api", rows, a.batch)
        tc = raw_copy(url, "ex-ref", rows, a.batch)
        out = {
            "eval_results_per_s_1_client": n / t1,
            "eval_results_per_s_8_clients": n / t8,
            "eval_results_per_s_bare_sql": n / tref,
            "examples_per_s_api": a.examples / te,
            "examples_per_s_raw_copy": a.examples / tc,
            "examples_api_vs_copy": tc / te,
        }
    out["api_workers"] = a.workers
    rows_t = [
        {"what": "eval results, 1 client (keep-alive)", "figure": f"{out['eval_results_per_s_1_client']:.0f}/s",
         "reference": f"bare SQL inserts {out['eval_results_per_s_bare_sql']:.0f}/s", "target": "≥ 500/s"},
        {"what": "eval results, 8 clients", "figure": f"{out['eval_results_per_s_8_clients']:.0f}/s",
         "reference": "(earlier dashboard: 388/s)", "target": "≥ 1,000/s"},
        {"what": f"examples, batches of {a.batch}", "figure": f"{out['examples_per_s_api']:.0f}/s",
         "reference": f"raw COPY {out['examples_per_s_raw_copy']:.0f}/s ({100 * out['examples_api_vs_copy']:.0f}%)",
         "target": "≥ 50% of COPY"},
    ]
    print(table(rows_t, ["what", "figure", "reference", "target"]))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
