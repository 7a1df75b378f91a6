"""Cost of one example row by the value of its index (issue 12 §3): the write path's own function
(ingest.store_examples: COPY, the example triggers, the outcome bit strings), one row per post,
against a reference measured in the same run (a bare INSERT of the same row into a table without
triggers). The API refuses indexes past EVAL360_MAX_EXAMPLE_IDX (default 1,000,000); this calls the
write path directly so larger ones can be measured.

    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_example_idx.py [--repo PATH] [--idx 1000000 ...]

--repo runs another checkout's ingest_api and migrations (e.g. main, to compare before/after).
Without DATABASE_URL an embedded PostgreSQL is started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import time
from pathlib import Path

import psycopg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--idx", type=int, nargs="+", default=[1_000, 1_000_000, 10_000_000])
    args = ap.parse_args()
    sys.path.insert(0, args.repo)
    from ingest_api.core.db import migrate
    from ingest_api.ingest.schemas import EvalResultIn, ExampleIn
    from ingest_api.ingest.store import store_eval_result, store_examples

    with contextlib.ExitStack() as stack:
        server = os.environ.get("DATABASE_URL")
        if not server:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from common import embedded_db

            server = stack.enter_context(embedded_db())
        name = f"bench_exidx_{secrets.token_hex(4)}"
        with psycopg.connect(server, autocommit=True) as c:
            c.execute(f"create database {name}")
        url = psycopg.conninfo.make_conninfo(server, dbname=name)
        try:
            migrate(url)
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("create table ref_rows (eval_run_id text, example_idx int, is_correct bool)")
            print(f"repo {args.repo}")
            print("| example_idx | 1st post to a run (s) | 2nd post, same run, idx 0 (s) | bare INSERT (s) |")
            print("|---:|---:|---:|---:|")
            for idx in args.idx:
                run = f"run-{idx}"
                with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
                    store_eval_result(conn, EvalResultIn(
                        model_id="m", display_name="M", owner="o", checkpoint_id=f"m__step-{idx}",
                        dataset_name="d", metrics={"accuracy": 0.5}, eval_run_id=run))
                    conn.commit()
                    times = []
                    for i in (idx, 0):
                        t0 = time.perf_counter()
                        store_examples(conn, run, [ExampleIn(example_idx=i, correct=True)])
                        conn.commit()
                        times.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    conn.execute("insert into ref_rows values (%s, %s, true)", (run, idx))
                    conn.commit()
                    ref = time.perf_counter() - t0
                print(f"| {idx:,} | {times[0]:.3f} | {times[1]:.3f} | {ref:.4f} |")
        finally:
            with psycopg.connect(server, autocommit=True) as c:
                c.execute(f"drop database if exists {name} with (force)")


if __name__ == "__main__":
    main()
