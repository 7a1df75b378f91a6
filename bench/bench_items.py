"""Example analytics across training (issue 17): PostgreSQL against DuckDB, in one run, at scale.

Loads the LLM360-scale tree (10 training models × 100 checkpoints + 5 baselines) with example rows
on EVERY run, on --datasets datasets of --examples examples each (default 4 × 1,250: 1,005 runs per
dataset, ≈5,000,000 example rows; the full tree is 40 datasets, ≈50,000,000 rows). Each question reads
one model × dataset (100 runs) or one dataset (1,005 runs), so its work is the same at 4 or 40
datasets: only the table's total size (index depth, cache) changes.

For each question, three engines side by side (median and p95 over --repeat calls, rotating over
models or datasets):
  * PostgreSQL as served: ingest_api/items.py (outcome bits per run, numpy) — and the HTTP endpoint;
  * PostgreSQL over example rows (SQL window functions / group-by, no bits): the plain-SQL way;
  * DuckDB over a columnar copy (Parquet, one file per completed run's model × dataset, hive layout,
    as `eval360 export --parquet` writes it; examples of a completed run never change);
  * DuckDB with the postgres scanner (postgres_query: PostgreSQL filters by index, DuckDB aggregates).
Then the write side: results/s and examples/s (next to raw COPY of the same rows) on an empty
database and on this one.

    .venv/bin/python bench/bench_items.py [--datasets 4] [--examples 1250] [--repeat 20] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import example_rows, payloads, post_examples, post_serial, raw_copy
from common import INGEST, KeepAlive, api_server, embedded_db

from ingest_api.core.db import embedded_url, flush_facts, migrate
from ingest_api.read import items

TARGETS_MS = {"slice trends": 200, "item histories (first page)": 300, "dataset items": 1000,
              # the read benchmark's endpoints (bench_read.py), at this table size
              "heatmap": 25, "leaderboard": 10, "a model's scores": 50, "slices of one run": 50}
TOPICS = ["algebra", "geometry", "number_theory", "probability", "physics", "biology", "history", "logic"]
N_MODELS, N_CKPT, N_BASE = 10, 100, 5
NULL = "\\N"  # COPY text format


# ------------------------------------------------------------------ data


def load(url: str, n_ds: int, n_ex: int, seed: int = 17) -> dict:
    rng = np.random.default_rng(seed)
    datasets = [f"items_{i:02d}" for i in range(n_ds)]
    t0 = time.perf_counter()
    models, ckpts, runs, ex_runs = [], [], [], []
    for mi in range(N_MODELS + N_BASE):
        base = mi >= N_MODELS
        mid = f"baseline-{mi - N_MODELS}" if base else f"train-{mi:02d}"
        models.append(f"{mid}\t{mid.upper()}\t{'baseline' if base else 'training'}\tbench\n")
        ability = rng.normal(0.3 if base else 0, 0.5)
        steps = [None] if base else [k * 1000 for k in range(1, N_CKPT + 1)]
        for step in steps:
            cid = f"{mid}__baseline" if step is None else f"{mid}__step-{step}"
            ckpts.append(f"{cid}\t{mid}\t{NULL if step is None else step}\n")
            for d in datasets:
                rid = f"{mid}-{step or 0}-{d}"
                runs.append(f"{rid}\t{cid}\t{mid}\t{d}\tcompleted\tt\taccuracy\t{n_ex}\tbench\n")
                ex_runs.append((rid, d, ability, step))
    difficulty = {d: rng.normal(0, 1.5, n_ex) for d in datasets}
    broken = {d: rng.random(n_ex) < 0.01 for d in datasets}  # a wrong ground truth: nobody solves these
    topic_i = np.arange(n_ex) % len(TOPICS)
    topic_arr = np.array(TOPICS)[topic_i]
    diff_arr = np.array(["easy", "medium", "hard"])[np.minimum(((difficulty[datasets[0]] + 3) / 2).astype(int), 2)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # bulk load: triggers off, facts rebuilt after
        with conn.cursor() as cur:
            for table, cols, lines in (
                    ("models", "model_id, display_name, model_type, owner", models),
                    ("checkpoints", "checkpoint_id, model_id, training_step", ckpts),
                    ("eval_runs", ("eval_run_id, checkpoint_id, model_id, dataset_name, status, is_current, "
                                   "primary_metric, sample_count, source"), runs)):
                with cur.copy(f"copy {table} ({cols}) from stdin") as cp:
                    cp.write("".join(lines))
        conn.execute("alter table example_results drop constraint example_results_eval_run_id_example_idx_key")
        n_rows = 0
        t_copy = time.perf_counter()
        acc = {}
        with conn.cursor() as cur, cur.copy("copy example_results (eval_run_id, example_idx, is_correct, score, "
                                            "input_preview, topic, difficulty, subtask) from stdin") as cp:
            buf = []
            for rid, d, ability, step in ex_runs:
                progress = 0.0 if step is None else 1.2 * math.log(step / 20_000)
                # geometry declines late in training while the rest rises: a slice that diverges
                drift = np.where(topic_i == 1, -0.02 * (step or 0) / 1000, 0.0)
                p = 1 / (1 + np.exp(-(ability + progress - difficulty[d] + drift)))
                ok = (rng.random(n_ex) < p) & ~broken[d]
                acc[rid] = ok.mean()
                okc = np.where(ok, "t\t1", "f\t0")
                buf.append("".join(f"{rid}\t{i}\t{o}\tQ{i} of {d}: compute the value\t{t}\t{dn}\t\\N\n"
                                   for i, o, t, dn in zip(range(n_ex), okc.tolist(), topic_arr.tolist(),
                                                          diff_arr.tolist())))
                if len(buf) >= 50:
                    cp.write("".join(buf))
                    buf = []
                n_rows += n_ex
            if buf:
                cp.write("".join(buf))
        t_copy = time.perf_counter() - t_copy
        with conn.cursor() as cur, cur.copy("copy eval_results (eval_run_id, metric_name, metric_value, is_primary, "
                                            "is_score, n_samples) from stdin") as cp:
            cp.write("".join(f"{rid}\taccuracy\t{a}\tt\tt\t{n_ex}\n" for rid, a in acc.items()))
        t_idx = time.perf_counter()
        conn.execute("alter table example_results add constraint example_results_eval_run_id_example_idx_key "
                     "unique (eval_run_id, example_idx)")
        t_idx = time.perf_counter() - t_idx
        t_facts = time.perf_counter()
        conn.execute("select eval360_rebuild_read_facts()")
        conn.execute("select eval360_rebuild_slice_stats()")
        t_facts = time.perf_counter() - t_facts
        conn.execute("set session_replication_role = origin")
        conn.execute("vacuum analyze")
        size = conn.execute("select pg_size_pretty(pg_total_relation_size('example_results'))").fetchone()[0]
    return {"datasets": n_ds, "examples_per_run": n_ex, "eval_runs": len(runs), "example_rows": n_rows,
            "load_seconds": round(time.perf_counter() - t0, 1), "copy_seconds": round(t_copy, 1),
            "index_seconds": round(t_idx, 1), "facts_seconds": round(t_facts, 1), "example_table_size": size}


# ------------------------------------------------------------------ the questions in SQL (for the other engines)

SLICE_SQL = """select eval_run_id, coalesce(topic, 'unspecified') as slice, count(*) as n,
       count(*) filter (where correct) as n_correct
  from {src} group by 1, 2"""

HISTORY_SQL = """with o as (
  select example_idx, training_step, correct,
         lag(correct) over (partition by example_idx order by training_step nulls last, eval_run_id) as prev
    from {src}),
s as (
  select example_idx, count(*) as n, count(*) filter (where correct) as k,
         count(*) filter (where prev is not null and prev <> correct) as flips,
         count(*) filter (where prev is not null and not prev and correct) as ups,
         count(*) filter (where prev and not correct) as downs,
         min(training_step) filter (where correct) as first_solved,
         max(training_step) filter (where prev and not correct) as last_lost,
         bool_or(correct) filter (where prev is null) as first_ok
    from o group by example_idx)
select *, case when k = 0 then 'never' when k = n then 'always'
               when flips = 1 and ups = 1 then 'learned'
               when (flips = 1 and downs = 1) or (flips = 2 and not first_ok and downs = 1) then 'forgotten'
               else 'unstable' end as label,
       count(*) over () as total
  from s order by example_idx limit 100"""

DATASET_SQL_DUCK = """select example_idx, count(*) as n_runs, count(*) filter (where correct) as n_solved,
       count(distinct model) as n_models, list(distinct model) filter (where correct) as models_solved,
       count(*) over () as total
  from {src} group by example_idx order by example_idx limit 100"""

DATASET_SQL_PG = """select example_idx, count(*) as n_runs, count(*) filter (where correct) as n_solved,
       count(distinct model) as n_models, array_agg(distinct model) filter (where correct) as models_solved,
       count(*) over () as total
  from {src} group by example_idx order by example_idx limit 100"""


def pg_rows_src(model: str | None, dataset: str) -> str:
    where = f"f.dataset_name = '{dataset}'" + (f" and f.model_id = '{model}'" if model else "")
    return (f"(select e.eval_run_id, f.training_step, f.model_id as model, e.example_idx, e.topic, "
            f"coalesce(e.is_correct, e.score >= 0.5) as correct from score_facts f "
            f"join example_results e on e.eval_run_id = f.eval_run_id where f.status = 'completed' and {where}) x")


def duck(url: str):
    import duckdb
    import duckdb_extension_postgres_scanner as pkg
    from psycopg.conninfo import conninfo_to_dict

    # The extension comes from the pinned wheel (site-packages), never from the network.
    ext = next(Path(pkg.__file__).parent.glob("extensions/*/postgres_scanner.duckdb_extension"))
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute(f"LOAD '{ext}'")
    dsn = " ".join(f"{k}={v}" for k, v in conninfo_to_dict(url).items() if v)
    con.execute(f"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)")
    return con


def scanner_src(model: str | None, dataset: str) -> str:
    inner = pg_rows_src(model, dataset).removeprefix("(").removesuffix(") x").replace("'", "''")
    return f"postgres_query('pg', '{inner}')"


def parquet_src(pq_dir: Path, model: str | None, dataset: str) -> str:
    part = f"model={model}" if model else "model=*"
    return (f"read_parquet('{pq_dir}/example_outcomes/{part}/dataset={dataset}/*.parquet', "
            f"hive_partitioning = true)")


# ------------------------------------------------------------------ timing


def timed(fn, repeat: int) -> dict:
    fn(0)  # warm-up
    ts = []
    for i in range(repeat):
        t = time.perf_counter()
        fn(i)
        ts.append(1000 * (time.perf_counter() - t))
    ts.sort()
    return {"p50": statistics.median(ts), "p95": ts[min(len(ts) - 1, math.ceil(0.95 * len(ts)) - 1)]}


def bench_reads(url: str, pq_dir: Path, datasets: list[str], repeat: int, *, duckdb: bool = True) -> list[dict]:
    trains = [f"train-{i:02d}" for i in range(N_MODELS)]

    def md(i):
        return trains[i % len(trains)], datasets[i % len(datasets)]

    def run_of(i):  # a run of a training checkpoint (the load's run ids: model-step-dataset)
        m, d = md(i)
        return f"{m}-{(1 + (7 * i) % N_CKPT) * 1000}-{d}"

    con = duck(url) if duckdb else None
    out = []
    with psycopg.connect(url, autocommit=True) as conn, api_server(url) as base:
        flush_facts(conn)
        http = KeepAlive(base, {"Authorization": f"Bearer {INGEST}"})

        def get(path):
            nonlocal http
            try:
                status, body = http.get(path)
            except OSError:  # uvicorn closes a keep-alive connection idle for 5 s (between questions)
                http.close()
                http = KeepAlive(base, {"Authorization": f"Bearer {INGEST}"})
                status, body = http.get(path)
            assert status == 200, body[:300]

        cases = {
            "slice trends": {
                "endpoint": lambda i: get(f"/api/models/{md(i)[0]}/slice-trends?dataset={md(i)[1]}&dimension=topic"),
                "postgres (served: items.py)": lambda i: items.slice_trends(conn, *md(i), "topic"),
                "postgres: its SQL alone (summary table)": lambda i: conn.execute(
                    "select eval_run_id, slice, n_examples, n_correct, n_graded, score_sum from v_example_slice_trends "
                    "where model_id = %s and dataset_name = %s and dimension = 'topic'", md(i)).fetchall(),
                "postgres SQL over example rows": lambda i: conn.execute(
                    SLICE_SQL.format(src=pg_rows_src(*md(i)))).fetchall(),
                "duckdb over parquet copy": lambda i: con.execute(
                    SLICE_SQL.format(src=parquet_src(pq_dir, *md(i)))).fetchall(),
                "duckdb postgres scanner": lambda i: con.execute(
                    SLICE_SQL.format(src=scanner_src(*md(i)))).fetchall(),
            },
            "item histories (first page)": {
                "endpoint": lambda i: get(f"/api/models/{md(i)[0]}/items?dataset={md(i)[1]}"),
                "postgres (served: items.py)": lambda i: items.model_items(conn, *md(i)),
                "postgres: its SQL alone (outcome bits)": lambda i: conn.execute(
                    "select eval_run_id, training_step, present_bits::text, outcome_bits::text "
                    "from v_example_run_outcomes where model_id = %s and dataset_name = %s", md(i)).fetchall(),
                "postgres SQL over example rows": lambda i: conn.execute(
                    HISTORY_SQL.format(src=pg_rows_src(*md(i)))).fetchall(),
                "duckdb over parquet copy": lambda i: con.execute(
                    HISTORY_SQL.format(src=parquet_src(pq_dir, *md(i)))).fetchall(),
                "duckdb postgres scanner": lambda i: con.execute(
                    HISTORY_SQL.format(src=scanner_src(*md(i)))).fetchall(),
            },
            "dataset items": {
                "endpoint": lambda i: get(f"/api/datasets/{datasets[i % len(datasets)]}/items"),
                "postgres (served: items.py)": lambda i: items.dataset_items(conn, datasets[i % len(datasets)]),
                "postgres: its SQL alone (outcome bits)": lambda i: conn.execute(
                    "select eval_run_id, model_id, present_bits::text, outcome_bits::text "
                    "from v_example_run_outcomes where dataset_name = %s", (datasets[i % len(datasets)],)).fetchall(),
                "postgres SQL over example rows": lambda i: conn.execute(
                    DATASET_SQL_PG.format(src=pg_rows_src(None, datasets[i % len(datasets)]))).fetchall(),
                "duckdb over parquet copy": lambda i: con.execute(
                    DATASET_SQL_DUCK.format(src=parquet_src(pq_dir, None, datasets[i % len(datasets)]))).fetchall(),
                "duckdb postgres scanner": lambda i: con.execute(
                    DATASET_SQL_DUCK.format(src=scanner_src(None, datasets[i % len(datasets)]))).fetchall(),
            },
            # The read benchmark's existing endpoints, on this table size (issue 17: they keep their targets).
            "heatmap": {
                "endpoint": lambda i: get("/api/heatmap?score=latest"),
                "postgres: its SQL alone (view)": lambda i: conn.execute("select * from v_heatmap_cells").fetchall(),
            },
            "leaderboard": {
                "endpoint": lambda i: get(f"/api/datasets/{datasets[i % len(datasets)]}/leaderboard?score=latest"),
                "postgres: its SQL alone (view)": lambda i: conn.execute(
                    "select * from v_latest_scores where dataset_name = %s", (datasets[i % len(datasets)],)).fetchall(),
            },
            "a model's scores": {
                "endpoint": lambda i: get(f"/api/models/{md(i)[0]}/scores"),
                "postgres: its SQL alone (view)": lambda i: conn.execute(
                    "select * from v_current_scores where model_id = %s", (md(i)[0],)).fetchall(),
            },
            "slices of one run": {
                "endpoint": lambda i: get(f"/api/eval-runs/{run_of(i)}/slices"),
                "postgres: its SQL alone (view)": lambda i: conn.execute(
                    "select * from v_example_slices where eval_run_id = %s", (run_of(i),)).fetchall(),
            },
        }
        for question, engines in cases.items():
            for engine, fn in engines.items():
                if con is None and engine.startswith("duckdb"):
                    continue
                # the heavy row-level variants get fewer calls (their p95 is then the max of few)
                n = repeat if "example rows" not in engine and "scanner" not in engine else max(5, repeat // 4)
                r = timed(fn, n)
                out.append({"question": question, "engine": engine, "calls": n, **r,
                            "target_ms": TARGETS_MS[question]})
                print(f"{question:<30}{engine:<42}{n:>6}{r['p50']:>10.1f}{r['p95']:>10.1f}", flush=True)
        http.close()
    if con is not None:
        con.close()
    return out


def bench_writes(url: str, n_results: int, n_examples: int) -> dict:
    """results/s and examples/s (and raw COPY of the same rows) through the API on this database."""
    import httpx

    rows = example_rows(n_examples)
    tag = f"{int(time.time())}"  # new ids on every run: a re-run on a kept database writes new rows
    with api_server(url) as base:
        post_serial(base, payloads(20, f"wwarm{tag}"))
        t = post_serial(base, payloads(n_results, f"wbench{tag}"))
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {INGEST}",
                                                  "Content-Type": "application/json"}) as c:
            for rid in (f"wex-api{tag}", f"wex-ref{tag}"):
                p = payloads(1, f"wex{tag}")[0] | {"eval_run_id": rid, "dataset_name": rid}
                assert c.post("/api/ingest/eval-result", content=json.dumps(p)).status_code == 200
        te = post_examples(base, f"wex-api{tag}", rows, 5000)
        tc = raw_copy(url, f"wex-ref{tag}", rows, 5000)
    # Leave the kept database as loaded: the next run's reads (the heatmap's cells above all) see the
    # same tree, not this run's extra models and datasets.
    from ingest_api.ops.admin import delete_model

    with psycopg.connect(url, row_factory=dict_row) as conn:
        gone = [r["model_id"] for r in conn.execute("select model_id from models where model_id like %s",
                                                    (f"w%{tag}",))]
        for m in gone:
            delete_model(conn, m, actor="bench")
    return {"results_per_s": n_results / t, "examples_per_s": n_examples / te, "copy_per_s": n_examples / tc,
            "api_vs_copy": tc / te}


def slice_trigger_cost(url: str, n_examples: int, rounds: int = 3) -> dict:
    """Raw COPY of the same rows with the slice triggers (sql/functions/10_example_facts.sql) on and off (alternating rounds,
    medians): what keeping example_slice_stats costs a write."""
    import httpx

    rows = example_rows(n_examples)
    tag = f"{int(time.time())}"
    on, off = [], []
    with api_server(url) as base, httpx.Client(base_url=base, headers={
            "Authorization": f"Bearer {INGEST}", "Content-Type": "application/json"}) as c:
        for k in range(rounds):
            for mode in ("on", "off"):
                rid = f"trig-{mode}-{k}-{tag}"
                p = payloads(1, f"trig{tag}")[0] | {"eval_run_id": rid, "dataset_name": rid}
                assert c.post("/api/ingest/eval-result", content=json.dumps(p)).status_code == 200
                with psycopg.connect(url, autocommit=True) as conn:
                    for t in ("ins", "del", "upd"):
                        conn.execute(f"alter table example_results {'enable' if mode == 'on' else 'disable'} "
                                     f"trigger example_results_slices_{t}")
                (on if mode == "on" else off).append(raw_copy(url, rid, rows, 5000))
    with psycopg.connect(url, autocommit=True) as conn:
        for t in ("ins", "del", "upd"):
            conn.execute(f"alter table example_results enable trigger example_results_slices_{t}")
        conn.execute("select eval360_rebuild_slice_stats()")  # the 'off' rounds left their runs uncounted
    return {"copy_per_s_with_slice_triggers": n_examples / statistics.median(on),
            "copy_per_s_without": n_examples / statistics.median(off)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=4)
    ap.add_argument("--examples", type=int, default=1250, help="examples per dataset (every run has them all)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--write-results", type=int, default=300)
    ap.add_argument("--write-examples", type=int, default=50_000)
    ap.add_argument("--data-dir", help="keep the database (and the parquet copy) here; reuse when loaded")
    ap.add_argument("--json", default=str(ROOT / "bench" / "out" / "items.json"))
    ap.add_argument("--postgres-only", action="store_true",
                    help="no Parquet copy and no DuckDB figures (PostgreSQL's at a size where the copy takes long)")
    ap.add_argument("--trigger-cost-only", action="store_true",
                    help="only the write cost of the slice triggers, on an empty database")
    args = ap.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    if args.trigger_cost_only:
        with embedded_db("eval360-bench-items-trig-") as u:
            r = slice_trigger_cost(u, args.write_examples)
        print(f"raw COPY of {args.write_examples} example rows, batches of 5,000, empty database: "
              f"{r['copy_per_s_with_slice_triggers']:.0f}/s with the slice triggers, "
              f"{r['copy_per_s_without']:.0f}/s without")
        return 0
    keep = bool(args.data_dir)
    tmp = Path(args.data_dir) if keep else Path(tempfile.mkdtemp(prefix="eval360-bench-items-"))
    result: dict = {"command": " ".join(["python", *sys.argv])}
    try:
        url = embedded_url(tmp)
        migrate(url)
        with psycopg.connect(url) as c:
            have = c.execute("select count(*) from example_results").fetchone()[0]
        if have == 0:
            info = load(url, args.datasets, args.examples)
        else:
            with psycopg.connect(url) as c:
                info = {"example_rows": have, "reused": True,
                        "eval_runs": c.execute("select count(*) from eval_runs").fetchone()[0]}
        print(f"data: {info}", flush=True)
        result["data"] = info
        datasets = [f"items_{i:02d}" for i in range(args.datasets)]
        pq_dir = tmp / "parquet"
        if not args.postgres_only and not (pq_dir / "example_outcomes").exists():
            from ingest_api.read.export import export_outcomes

            t = time.perf_counter()
            with psycopg.connect(url) as c:
                n = export_outcomes(c, pq_dir)
            secs = time.perf_counter() - t
            n_files = sum(1 for _ in (pq_dir / "example_outcomes").rglob("*.parquet"))
            result["parquet_copy"] = {"rows": n, "seconds": round(secs, 1), "files": n_files}
            print(f"parquet copy: {n} rows in {secs:.1f} s ({n_files} files)", flush=True)
        print(f"\n{'question':<30}{'engine':<42}{'calls':>6}{'p50 ms':>10}{'p95 ms':>10}")
        result["reads"] = bench_reads(url, pq_dir, datasets, args.repeat, duckdb=not args.postgres_only)
        print("\nwrites (API, one client; examples in batches of 5,000 next to raw COPY of the same rows):")
        big = bench_writes(url, args.write_results, args.write_examples)
        with embedded_db("eval360-bench-items-empty-") as empty_url:
            small = bench_writes(empty_url, args.write_results, args.write_examples)
        result["writes"] = {"empty_db": small, "large_db": big}
        for name, w in (("empty database", small), (f"{info['example_rows']:,}-row database", big)):
            print(f"  {name:<26} results {w['results_per_s']:>7.0f}/s   examples {w['examples_per_s']:>8.0f}/s   "
                  f"raw COPY {w['copy_per_s']:>8.0f}/s   API/COPY {100 * w['api_vs_copy']:.0f}% (target ≥ 50%)")
        print("\nsummary (p95 ms; served engine first):")
        for q_name, target in TARGETS_MS.items():
            rows = {r["engine"]: r["p95"] for r in result["reads"] if r["question"] == q_name}
            ok = rows["endpoint"] <= target
            print(f"  {q_name:<30} endpoint {rows['endpoint']:>8.1f} (target ≤ {target}: {'met' if ok else 'MISSED'})"
                  + "".join(f" | {e} {v:.1f}" for e, v in rows.items() if e != "endpoint"))
    finally:
        from ingest_api.core import db as _db

        srv = _db._embedded.pop(str(tmp.resolve()), None)
        if srv is not None:
            srv.cleanup()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
