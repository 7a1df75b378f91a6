"""Read-API benchmark on an LLM360-scale database (not a test).

Loads 10 training models × 100 checkpoints + 5 baselines on 40 datasets (≈36,000 eval runs,
≈95,000 metric rows, ≥5,000,000 example rows), generated here and written with COPY into a
fresh embedded PostgreSQL, then reports p50/p95 of every read endpoint next to the bare SQL
behind it (the exact statements the endpoint ran, replayed on one connection).

Requests go to `eval360 api` running as its own process (uvicorn), through a lean keep-alive
HTTP client, so routing, validation and JSON are included and the client costs little.

    .venv/bin/python bench/bench_read.py [--examples 5000000] [--repeat 30] [--json bench/out/read.json]
    .venv/bin/python bench/bench_read.py --data-dir /tmp/read-db   # load once, re-run on the same data
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest_api.core import sqlrows
from ingest_api.core.db import embedded_url, flush_facts, migrate
from ingest_api.ops import promotion
from ingest_api.read import catalog, compare, diagnosis, examples, heatmap, leaderboard
from ingest_api.read.activity import list_activity
from ingest_api.read.alerts import list_alerts
from ingest_api.stats import wilson_interval_array

TARGETS_MS = {"heatmap": 25, "leaderboard": 10, "models": 10, "diagnosis": 30, "model scores": 50,
              "slices (10k run)": 50}
CATEGORIES = ["math", "code", "knowledge", "reasoning", "instruction", "long_context"]
TOPICS = ["algebra", "geometry", "number_theory", "probability", "physics", "biology", "history", "logic"]


# ------------------------------------------------------------------ data


def _tsv(v) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    s = str(v)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _copy(conn: psycopg.Connection, table: str, cols: list[str], rows) -> int:
    buf = io.StringIO()
    n = 0
    for r in rows:
        buf.write("\t".join(_tsv(v) for v in r))
        buf.write("\n")
        n += 1
    with conn.cursor() as cur, cur.copy(f"copy {table} ({', '.join(cols)}) from stdin") as cp:
        cp.write(buf.getvalue())
    return n


def load(url: str, *, n_examples_target: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    n_models, n_ckpt, n_base, n_ds = 10, 100, 5, 40
    datasets = ["mmlu_pro_10k"] + [f"bench_{i:02d}" for i in range(1, n_ds)]
    cats = {d: CATEGORIES[i % len(CATEGORIES)] for i, d in enumerate(datasets)}
    # Example counts: one 10,000-example dataset, the rest spread from 30 to a few thousand.
    ex_models, ex_ckpts = n_models, 5  # example rows for the 5 latest checkpoints of each model + baselines
    # ~80% of those runs exist and completed (missing, pending, failed ones have no examples).
    runs_with_ex = ex_models * ex_ckpts * 0.8 + n_base
    rest = np.geomspace(30, 6000, n_ds - 1)
    need = n_examples_target / runs_with_ex - 10_000
    rest = np.maximum(30, np.round(rest * need / rest.sum())).astype(int)
    sizes = {d: (10_000 if i == 0 else int(rest[i - 1])) for i, d in enumerate(datasets)}
    ds_diff = {d: rng.normal(0, 1) for d in datasets}
    easiness = {d: rng.random(sizes[d]) for d in datasets}

    t0 = time.perf_counter()
    models, ckpts, runs, results, ex_runs = [], [], [], [], []
    base_time = np.datetime64("2026-06-01T00:00:00")
    run_no = 0

    def add_run(model_id, cid, ds, p, status, created, current=True, with_ex=False):
        nonlocal run_no
        run_no += 1
        rid = f"r{run_no:06d}"
        n = sizes[ds]
        runs.append((rid, cid, model_id, ds, status, current, "accuracy (avg over 8)", n, str(created), "bench"))
        if status == "completed":
            lo, hi = wilson_interval_array([p], [n])
            se = math.sqrt(p * (1 - p) / n)
            results.append((rid, "accuracy (avg over 8)", p, True, True, 0, n, lo[0], hi[0], se))
            results.append((rid, "bootstrap_std (avg over 8)", 0.02 + 0.01 * rng.random(), False, False, 1, n,
                            None, None, None))
            if rng.random() < 0.6:
                results.append((rid, "accuracy (pass@1)", p, False, True, 2, n, lo[0], hi[0], se))
            if with_ex:
                ex_runs.append((rid, ds, p))
        return rid

    for mi in range(n_models):
        mid = f"train-{mi:02d}"
        models.append((mid, f"Train {mi}", "training", f"owner-{mi % 3}", 7_000_000_000))
        ability = rng.normal(0, 0.5)
        for k in range(1, n_ckpt + 1):
            step = k * 1000
            cid = f"{mid}__step-{step}"
            created = base_time + np.timedelta64(mi * 1000 + k * 60, "m")
            ckpts.append((cid, mid, step, f"/ckpt/{mid}/step-{step}", str(created)))
            for d in datasets:
                # ~10% of (checkpoint, dataset) never evaluated; the newest checkpoints are still running.
                if rng.random() < 0.10:
                    continue
                logit = ability + ds_diff[d] + 1.2 * math.log(step / 20_000) + rng.normal(0, 0.05)
                p = float(np.clip(1 / (1 + math.exp(-logit)) + rng.normal(0, 0.01), 0.001, 0.999))
                status = "completed"
                if k == n_ckpt and rng.random() < 0.3:
                    status = rng.choice(["pending", "running"])
                elif rng.random() < 0.01:
                    status = "failed"
                elif rng.random() < 0.005:
                    status = "invalidated"
                if rng.random() < 0.02:  # an older, superseded run of the same checkpoint and dataset
                    add_run(mid, cid, d, p, "completed", created, current=False)
                add_run(mid, cid, d, p, status, created + np.timedelta64(1, "m"),
                        with_ex=k > n_ckpt - ex_ckpts)
    for bi in range(n_base):
        mid = f"baseline-{bi}"
        models.append((mid, f"Baseline {bi}", "baseline", "external", None))
        cid = f"{mid}__baseline"
        created = base_time - np.timedelta64(bi + 1, "D")
        ckpts.append((cid, mid, None, None, str(created)))
        ability = rng.normal(0.3, 0.5)
        for d in datasets:
            p = float(np.clip(1 / (1 + math.exp(-(ability + ds_diff[d] + 1.0))), 0.001, 0.999))
            add_run(mid, cid, d, p, "completed", created, with_ex=True)

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # bulk load: skip FK checks and triggers
        _copy(conn, "models", ["model_id", "display_name", "model_type", "owner", "param_count"], models)
        _copy(conn, "checkpoints", ["checkpoint_id", "model_id", "training_step", "checkpoint_path", "created_at"],
              ckpts)
        _copy(conn, "benchmark_metadata", ["dataset_name", "category"], [(d, cats[d]) for d in datasets])
        _copy(conn, "eval_runs", ["eval_run_id", "checkpoint_id", "model_id", "dataset_name", "status", "is_current",
                                  "primary_metric", "sample_count", "created_at", "source"], runs)
        _copy(conn, "eval_results", ["eval_run_id", "metric_name", "metric_value", "is_primary", "is_score",
                                     "metric_order", "n_samples", "ci_lower", "ci_upper", "stderr"], results)
        t_meta = time.perf_counter() - t0
        # Example rows: indexes dropped during the load and rebuilt after (a bulk build is faster).
        conn.execute("alter table example_results drop constraint example_results_eval_run_id_example_idx_key")
        n_ex = 0
        cols = ["eval_run_id", "example_idx", "is_correct", "score", "input_preview", "output_preview",
                "ground_truth", "topic", "difficulty", "subtask"]
        diff_names = np.array(["easy", "medium", "hard"])
        topics = np.array(TOPICS)
        with conn.cursor() as cur, cur.copy(f"copy example_results ({', '.join(cols)}) from stdin") as cp:
            for rid, ds, p in ex_runs:
                e = easiness[ds]
                n = len(e)
                # A harder topic (index 1) makes failures concentrate somewhere, as in real data.
                idx = np.arange(n)
                topic_i = idx % len(TOPICS)
                shift = np.where(topic_i == 1, 0.15, 0.0)
                correct = (e + shift + rng.normal(0, 0.05, n)) < p
                diff_i = np.minimum((e * 3).astype(int), 2)
                lines = [f"{rid}\t{i}\t{'t' if c else 'f'}\t{'1' if c else '0'}\tQ{i} of {ds}: compute the value\t"
                         f"The answer is {i % 97}\t{i % 89}\t{t}\t{dn}\t\\N\n"
                         for i, c, t, dn in zip(idx.tolist(), correct.tolist(), topics[topic_i].tolist(),
                                                diff_names[diff_i].tolist())]
                cp.write("".join(lines))
                n_ex += n
        conn.execute("alter table example_results add constraint example_results_eval_run_id_example_idx_key "
                     "unique (eval_run_id, example_idx)")
        t1 = time.perf_counter()
        # The triggers were off: derive the read-side facts (score_facts, model_dataset_facts,
        # example_run_stats with outcome bits) in one pass, as the migration does.
        conn.execute("select eval360_rebuild_read_facts()")
        t_facts = time.perf_counter() - t1
        conn.execute("set session_replication_role = origin")
        conn.execute("vacuum analyze")
        counts = conn.execute("""select (select count(*) from models), (select count(*) from checkpoints),
                                        (select count(*) from eval_runs), (select count(*) from eval_results),
                                        (select count(*) from example_results)""").fetchone()
    return {"models": counts[0], "checkpoints": counts[1], "eval_runs": counts[2], "metric_rows": counts[3],
            "example_rows": counts[4], "load_seconds": round(time.perf_counter() - t0, 1),
            "metadata_seconds": round(t_meta, 1),
            "facts_seconds": round(t_facts, 1), "big_run": next(r for r, d, _ in ex_runs if d == "mmlu_pro_10k")}


def reuse_info(url: str) -> dict:
    with psycopg.connect(url) as c:
        counts = c.execute("""select (select count(*) from models), (select count(*) from checkpoints),
                                     (select count(*) from eval_runs), (select count(*) from eval_results),
                                     (select count(*) from example_results)""").fetchone()
        big = c.execute("select eval_run_id from v_run_example_stats where n_examples = 10000 "
                        "order by eval_run_id limit 1").fetchone()[0]
    return {"models": counts[0], "checkpoints": counts[1], "eval_runs": counts[2], "metric_rows": counts[3],
            "example_rows": counts[4], "big_run": big}


# ------------------------------------------------------------------ timing


class Recorder:
    """Records the statements a query function runs, to replay them as 'bare SQL'.

    Every statement of the readers (ingest_api/read/) goes through core.sqlrows: rows, records or tuples,
    or batch (several statements in one round trip; replayed one by one here).
    """

    HELPERS = ("rows", "records", "tuples", "batch")

    def __init__(self):
        self.calls: list[tuple] = []
        self._orig = {name: getattr(sqlrows, name) for name in self.HELPERS}

    def __enter__(self):
        def recording(orig):
            def rec(conn, query, params=None):
                self.calls.append((query, params))
                return orig(conn, query, params)
            return rec

        def recording_batch(orig):
            def rec(conn, statements):
                self.calls.extend((query, params) for query, params, _ in statements)
                return orig(conn, statements)
            return rec
        for name, orig in self._orig.items():
            setattr(sqlrows, name, (recording_batch if name == "batch" else recording)(orig))
        return self

    def __exit__(self, *a):
        for name, orig in self._orig.items():
            setattr(sqlrows, name, orig)


class _RecordingCursor:
    def __init__(self, cur, calls: list):
        self._cur, self._calls = cur, calls

    def execute(self, query, params=None, **kw):
        self._calls.append((query, params))
        self._cur.execute(query, params, **kw)
        return self

    def __enter__(self):
        self._cur.__enter__()
        return self

    def __exit__(self, *a):
        return self._cur.__exit__(*a)

    def __iter__(self):
        return iter(self._cur)

    def __getattr__(self, name):
        return getattr(self._cur, name)


class RecordingConn:
    """For functions outside ingest_api/read/ (promotion): a connection that records every
    statement run through it (execute, or a cursor's execute), to replay them as 'bare SQL'."""

    def __init__(self, conn):
        self._conn, self.calls = conn, []

    def execute(self, query, params=None, **kw):
        self.calls.append((query, params))
        return self._conn.execute(query, params, **kw)

    def cursor(self, *a, **kw):
        return _RecordingCursor(self._conn.cursor(*a, **kw), self.calls)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=5_000_000, help="example rows to load (≥ 5,000,000 at scale)")
    ap.add_argument("--repeat", type=int, default=30, help="timed requests per endpoint")
    ap.add_argument("--json", default=str(ROOT / "bench" / "out" / "read.json"), help="write results here")
    ap.add_argument("--data-dir", help="keep the database here; reuse it when already loaded")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    keep = bool(args.data_dir)
    tmp = Path(args.data_dir) if keep else Path(tempfile.mkdtemp(prefix="eval360-bench-read-"))
    try:
        url = embedded_url(tmp)
        migrate(url)
        with psycopg.connect(url) as c:
            loaded = c.execute("select count(*) from models").fetchone()[0] > 0
        if loaded:
            info = reuse_info(url)
            print(f"reusing the database in {tmp}", flush=True)
        else:
            print(f"loading into {tmp} …", flush=True)
            info = load(url, n_examples_target=args.examples)
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("insert into suites (suite_id, display_name, dataset_names) values "
                          "('core', 'Core', array(select dataset_name from benchmark_metadata "
                          "order by dataset_name limit 12))")
                # What the ingest path would also have written: an activity row per result, the
                # alerts of a model (judged here for train-03), and a promotion rule to check.
                c.execute("""insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary,
                                                   detail, created_at)
                             select 'eval_result', model_id, checkpoint_id, dataset_name, 'bench',
                                    dataset_name || ': ' || primary_metric, jsonb_build_object('eval_run_id', eval_run_id),
                                    created_at
                               from eval_runs""")
                c.execute("""insert into promotion_rules (rule_name, model_id, suite_id, min_scores, baseline_model_id,
                                                          baseline_margin)
                             values ('release', 'train-03', 'core', '{"bench_01": 0.3, "bench_02": 0.3}',
                                     'baseline-0', 0.0)""")
            from ingest_api.ops import alerts as alert_rules

            with psycopg.connect(url, row_factory=dict_row) as c:
                flush_facts(c)
                alert_rules.reevaluate_model(c, "train-03")
        print(f"data: {info['models']} models, {info['checkpoints']} checkpoints, {info['eval_runs']:,} eval runs, "
              f"{info['metric_rows']:,} metric rows, {info['example_rows']:,} example rows"
              + (f", loaded in {info['load_seconds']} s" if "load_seconds" in info else ""), flush=True)
        big = info["big_run"]
        a_ck, b_ck = "train-03__step-99000", "train-03__step-100000"
        from common import KeepAlive, api_server

        endpoints = [
            ("models", "/api/models",
             lambda c: catalog.list_models(c, order="newest", legacy_keys=True)),
            ("model detail", "/api/models/train-03", lambda c: catalog.get_model(c, "train-03")),
            ("model scores", "/api/models/train-03/scores", lambda c: catalog.model_scores_json(c, "train-03")),
            ("scores, columns", "/api/models/train-03/scores?shape=columns",
             lambda c: catalog.model_scores_json(c, "train-03", shape="columns")),
            ("diagnosis", "/api/models/train-03/diagnosis", lambda c: diagnosis.diagnosis(c, "train-03")),
            ("checkpoint", f"/api/checkpoints/{b_ck}", lambda c: catalog.get_checkpoint(c, b_ck)),
            ("datasets", "/api/datasets", lambda c: catalog.list_datasets(c)),
            ("leaderboard", "/api/datasets/bench_07/leaderboard?score=latest",
             lambda c: leaderboard.leaderboard(c, "bench_07")),
            ("leaderboard best", "/api/datasets/bench_07/leaderboard?score=best",
             lambda c: leaderboard.leaderboard(c, "bench_07", score="best")),
            ("heatmap", "/api/heatmap?score=latest", lambda c: heatmap.heatmap(c)),
            ("heatmap best", "/api/heatmap?score=best", lambda c: heatmap.heatmap(c, score="best")),
            ("suite heatmap", "/api/suites/core/heatmap?score=latest",
             lambda c: heatmap.heatmap(c, suite_datasets=catalog.get_suite(c, "core")["dataset_names"])),
            ("compare curves", "/api/compare?models=train-01,train-02,train-03&dataset=bench_05",
             lambda c: compare.compare_curves(c, ["train-01", "train-02", "train-03"], "bench_05")),
            ("compare profile", "/api/compare?models=train-01,train-02,baseline-0&common_only=true",
             lambda c: compare.category_profile(c, ["train-01", "train-02", "baseline-0"], common_only=True)),
            ("diff", f"/api/diff?checkpoint_a={a_ck}&checkpoint_b={b_ck}",
             lambda c: compare.diff_checkpoints(c, a_ck, b_ck)),
            ("filters", "/api/filters", lambda c: catalog.filters(c)),
            ("suites", "/api/suites", lambda c: catalog.list_suites(c)),
            ("eval run", f"/api/eval-runs/{big}", lambda c: examples.get_eval_run(c, big)),
            ("examples page", f"/api/eval-runs/{big}/examples?correct=false&limit=50",
             lambda c: examples.run_examples(c, big, correct=False)),
            ("examples search", f"/api/eval-runs/{big}/examples?q=answer%20is%2042&limit=50",
             lambda c: examples.run_examples(c, big, search="answer is 42")),
            ("slices (10k run)", f"/api/eval-runs/{big}/slices", lambda c: examples.run_slices(c, big)),
            ("promotion status", "/api/models/train-03/promotion-status",
             lambda c: promotion.promotion_status(c, "train-03")),
            ("alerts", "/api/alerts", lambda c: list_alerts(c)),
            ("alerts, a model", "/api/alerts?model_id=train-03&status=all",
             lambda c: list_alerts(c, model_id="train-03", status="all")),
            ("activity", "/api/activity", lambda c: list_activity(c)),
            ("activity, a model", "/api/activity?model_id=train-03",
             lambda c: list_activity(c, model_id="train-03")),
        ]
        rows = []
        load_avg = os.getloadavg()[0]
        with api_server(url) as base, psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            client = KeepAlive(base, {})
            for name, path, fn in endpoints:
                for _ in range(3):
                    status, content = client.get(path)
                    assert status == 200, (path, status, content[:300])
                size = len(content)
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                sql_times = []
                if fn is not None:
                    with Recorder() as rec:
                        fn(conn)
                    stmts = rec.calls
                    if not stmts:  # not a reader of ingest_api/read/: record at the connection
                        recording = RecordingConn(conn)
                        fn(recording)
                        stmts = recording.calls
                    for _ in range(3):
                        for q, p in stmts:
                            conn.execute(q, p).fetchall()
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        for q, p in stmts:
                            conn.execute(q, p).fetchall()
                        sql_times.append((time.perf_counter() - t) * 1000)
                row = {"endpoint": name, "path": path, "p50_ms": round(pct(times, 0.5), 2),
                       "p95_ms": round(pct(times, 0.95), 2), "bytes": size,
                       "sql_p50_ms": round(pct(sql_times, 0.5), 2) if sql_times else None,
                       "sql_p95_ms": round(pct(sql_times, 0.95), 2) if sql_times else None,
                       "target_p95_ms": TARGETS_MS.get(name)}
                row["meets_target"] = None if row["target_p95_ms"] is None else row["p95_ms"] <= row["target_p95_ms"]
                rows.append(row)
                print(f"  {name:<18} p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms", flush=True)

        print()
        hdr = f"{'endpoint':<18} {'p50 ms':>8} {'p95 ms':>8} {'SQL p50':>8} {'SQL p95':>8} {'KB':>8} {'target':>7}  ok"
        print(hdr)
        print("-" * len(hdr))
        for r in rows:
            sql50 = f"{r['sql_p50_ms']:8.2f}" if r["sql_p50_ms"] is not None else f"{'-':>8}"
            sql95 = f"{r['sql_p95_ms']:8.2f}" if r["sql_p95_ms"] is not None else f"{'-':>8}"
            tgt = f"{r['target_p95_ms']:>7}" if r["target_p95_ms"] else f"{'':>7}"
            ok = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
            print(f"{r['endpoint']:<18} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {sql50} {sql95} "
                  f"{r['bytes'] / 1024:8.1f} {tgt}  {ok}")
        print(f"\n(p50/p95 over {args.repeat} requests to `eval360 api` over keep-alive HTTP; 'SQL' = the same "
              f"statements replayed on one psycopg connection; load average {load_avg:.1f} on "
              f"{os.cpu_count()} CPUs at the start)")
        out = {"data": info, "repeat": args.repeat, "endpoints": rows, "load_average": load_avg,
               "summary": {"median_of_p50s": statistics.median(r["p50_ms"] for r in rows)}}
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(out, indent=2))
            print(f"wrote {args.json}")
        return 0
    finally:
        if not keep:
            try:
                from ingest_api.core import db as _db
                srv = _db._embedded.pop(str(tmp.resolve()), None)
                if srv is not None:
                    srv.cleanup()
            except Exception as exc:  # noqa: BLE001 - best-effort cleanup of a temp server
                print(f"(could not stop the temporary server: {exc})")
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
