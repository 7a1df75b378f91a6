"""Dashboard benchmark: each page's AppTest render time (cold and warm cache) on an LLM360-scale
database, and DuckDB's postgres scanner against plain Postgres for the example-level aggregations.

    python bench/bench_dashboard.py                        # throwaway embedded DB, llm360 demo (slow)
    python bench/bench_dashboard.py --database-url URL     # an already loaded database
    python bench/bench_dashboard.py --scale small --repeat 5

Cold: the page's first run after every st.cache_data cache is cleared (the process has imported
everything and the connection pool is open, as in a running server). Warm: the same page rerun.
Targets (issue 6): Observatory and Model detail ≤ 2 s cold, ≤ 0.5 s warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APP = str(ROOT / "dashboard" / "app.py")
TARGETS = {"observatory": (2.0, 0.5), "model": (2.0, 0.5)}


def _pages(url: str) -> list[tuple[str, dict]]:
    """Each page with a representative selection (the heaviest sensible one for the model pages)."""
    import psycopg

    with psycopg.connect(url) as c:
        model = c.execute("select model_id from v_models where model_type = 'training' "
                          "order by n_checkpoints desc, model_id limit 1").fetchone()[0]
        ds = c.execute("select dataset_name from v_run_example_stats s join v_eval_runs r using (eval_run_id) "
                       "where r.model_id = %s group by 1 order by count(*) desc, 1 limit 1", (model,)).fetchone()[0]
        cps = [r[0] for r in c.execute("select checkpoint_id from v_checkpoints where model_id = %s "
                                       "order by training_step desc limit 2", (model,)).fetchall()]
        run = c.execute("select eval_run_id from v_latest_scores where model_id = %s and dataset_name = %s",
                        (model, ds)).fetchone()[0]
    return [
        ("observatory", {}),
        ("model", {"model": model}),
        ("leaderboard", {"dataset": ds}),
        ("compare", {"a": cps[1], "b": cps[0], "dataset": ds}),
        ("examples", {"run": run}),
        ("activity", {}),
        ("sql", {"q": "select model_id, count(*) from v_latest_scores group by 1"}),
    ]


def time_page(page: str, params: dict) -> tuple[float, float, list[str]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    if page == "observatory":
        at.query_params.update(params)
    else:
        at.run()  # registers the pages (st.navigation)
        at.query_params.clear()
        at.query_params.update(params)
        at.switch_page(f"app_pages/{page}.py")
    st.cache_data.clear()
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.run()
    warm = time.perf_counter() - t0
    problems = [str(e.value)[:200] for e in at.exception] + [str(e.value)[:200] for e in at.error]
    return cold, warm, problems


def bench_pages(url: str, repeat: int) -> list[dict]:
    os.environ["DATABASE_URL"] = url
    pages = _pages(url)
    for page, params in pages:  # imports, pool, compiled scripts: what a running server already has
        time_page(page, params)
    out = []
    for page, params in pages:
        colds, warms, problems = [], [], []
        for _ in range(repeat):
            c, w, p = time_page(page, params)
            colds.append(c)
            warms.append(w)
            problems += p
        out.append({"page": page, "cold_s": statistics.median(colds), "warm_s": statistics.median(warms),
                    "cold_max_s": max(colds), "warm_max_s": max(warms), "problems": sorted(set(problems))})
    return out


# ------------------------------------------------------------------ DuckDB vs Postgres


def _duck(url: str):
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


def bench_duckdb(url: str, repeat: int) -> list[dict]:
    import psycopg

    pg = psycopg.connect(url, autocommit=True)
    model, ds = pg.execute("""select r.model_id, r.dataset_name from v_run_example_stats s
                              join v_eval_runs r using (eval_run_id) where r.model_type = 'training'
                              group by 1, 2 order by count(*) desc, 1, 2 limit 1""").fetchone()
    runs = [r[0] for r in pg.execute("""select r.eval_run_id from v_eval_runs r join v_run_example_stats s
                                        using (eval_run_id) where r.model_id = %s and r.dataset_name = %s
                                        and r.is_current order by r.training_step""", (model, ds)).fetchall()]
    n_rows = pg.execute("select count(*) from example_results").fetchone()[0]
    in_list = ", ".join(f"'{r}'" for r in runs)
    cases = {
        # The example browser's "slices across checkpoints": one model × dataset, every checkpoint.
        "slices across a model's runs": (
            (("select s.eval_run_id, s.slice, s.n_examples, s.n_correct from v_example_slices s "
             "where s.eval_run_id = any(%s) and s.dimension = 'topic'"), (runs,)),
            f"""select eval_run_id, coalesce(topic, 'unspecified') as slice, count(*) as n_examples,
                       count(*) filter (where is_correct) as n_correct
                  from pg.example_results where eval_run_id in ({in_list}) group by all"""),
        # Flipped examples between the last two checkpoints (compare & diff).
        "flips between two runs": (
            (("select example_idx, flip from v_example_pairs where eval_run_id_a = %s and eval_run_id_b = %s "
             "and flip <> 'same'"), (runs[-2], runs[-1])),
            f"""select a.example_idx,
                       case when a.is_correct and not b.is_correct then 'right_to_wrong' else 'wrong_to_right' end
                  from pg.example_results a join pg.example_results b using (example_idx)
                 where a.eval_run_id = '{runs[-2]}' and b.eval_run_id = '{runs[-1]}'
                   and a.is_correct <> b.is_correct"""),
        # Everything: accuracy by dataset × difficulty over every example row.
        f"all {n_rows:,} example rows by dataset × difficulty": (
            (("select r.dataset_name, coalesce(x.difficulty, 'unspecified') d, count(*), "
             "count(*) filter (where x.is_correct) from example_results x join eval_runs r using (eval_run_id) "
             "group by 1, 2"), None),
            """select r.dataset_name, coalesce(x.difficulty, 'unspecified') d, count(*),
                      count(*) filter (where x.is_correct)
                 from pg.example_results x join pg.eval_runs r using (eval_run_id) group by all"""),
    }
    out = []
    con = _duck(url)
    for name, ((pq, params), dq) in cases.items():
        tp, td = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            a = pg.execute(pq, params).fetchall()
            tp.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = con.execute(dq).fetchall()
            td.append(time.perf_counter() - t0)
        assert len(a) == len(b), (name, len(a), len(b))
        out.append({"case": name, "rows": len(a), "postgres_ms": 1000 * statistics.median(tp),
                    "duckdb_ms": 1000 * statistics.median(td)})
    # Connecting and loading the extension is paid per process (or per cached connection).
    t0 = time.perf_counter()
    _duck(url).close()
    out.append({"case": "duckdb connect + LOAD + ATTACH (once)", "rows": 0, "postgres_ms": None,
                "duckdb_ms": 1000 * (time.perf_counter() - t0)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="an already loaded database (else a throwaway embedded one)")
    ap.add_argument("--scale", default="llm360", choices=["small", "llm360"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-duckdb", action="store_true")
    args = ap.parse_args()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    if args.database_url:
        ctx = nullcontext(args.database_url)
    else:
        from bench.common import embedded_db

        ctx = embedded_db("eval360-bench-dash-")
    with ctx as url:
        if not args.database_url:
            from ingest_api.ingest.demo import load_demo_data

            print(load_demo_data(url, scale=args.scale, seed=0), flush=True)
        import psycopg

        with psycopg.connect(url) as c:
            n = c.execute("""select (select count(*) from models), (select count(*) from checkpoints),
                                    (select count(*) from eval_runs), (select count(*) from example_results)""").fetchone()
        print(f"database: {n[0]} models, {n[1]} checkpoints, {n[2]} eval runs, {n[3]:,} example rows; "
              f"median of {args.repeat}")
        rows = bench_pages(url, args.repeat)
        print(f"\n{'page':<13}{'cold s':>9}{'warm s':>9}{'cold max':>10}{'warm max':>10}  target (cold/warm)")
        ok = True
        for r in rows:
            tgt = TARGETS.get(r["page"])
            mark = ""
            if tgt:
                good = r["cold_s"] <= tgt[0] and r["warm_s"] <= tgt[1]
                ok &= good
                mark = f"  ≤{tgt[0]:g} / ≤{tgt[1]:g} {'ok' if good else 'MISSED'}"
            print(f"{r['page']:<13}{r['cold_s']:>9.2f}{r['warm_s']:>9.2f}{r['cold_max_s']:>10.2f}"
                  f"{r['warm_max_s']:>10.2f}{mark}")
            for p in r["problems"]:
                print(f"   ! {p}")
        if not args.skip_duckdb:
            print(f"\n{'example-level aggregation':<52}{'rows':>7}{'postgres ms':>13}{'duckdb ms':>11}")
            for r in bench_duckdb(url, args.repeat):
                pgms = "" if r["postgres_ms"] is None else f"{r['postgres_ms']:.1f}"
                print(f"{r['case']:<52}{r['rows']:>7}{pgms:>13}{r['duckdb_ms']:>11.1f}")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
