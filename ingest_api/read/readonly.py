"""Ad-hoc read-only SQL (the dashboard's SQL page): one query, on a connection that logs in as the
eval360_reader role, with bounded results.

The boundary is the database role, not this module: the connection logs in as `eval360_reader`
(ingest_api/core/reader.py; the role in sql/migrations/0001_baseline.sql), which may SELECT the views and nothing else, is a member of
no role and so has no other identity to switch to, whatever text reaches the server. The
application never switches role on one of its own connections, and refuses a connection that
could read a base table (a DSN pointing at the owner by mistake).

What this module adds is convenience and bounds:

* a keyword screen with friendly early messages (`check_query`): not a security layer;
* one statement only: the text is sent with the extended protocol, which refuses several
  commands, inside a READ ONLY transaction with a local statement timeout;
* bounded results: at most `max_rows` rows and `max_bytes` bytes of text (the rows' text form,
  measured by the server). The query runs behind a server-side cursor that the server feeds
  row by row; past the byte budget the server sends the row's columns as NULL and the fetch
  stops there, so the process never holds more than about `max_bytes` of result;
* the transaction is always rolled back and the connection closed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ..core.db import flush_facts
from ..core.reader import READER_ROLE

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 20_000_000
FETCH_BATCH = 500
_ALLOWED_START = re.compile(r"^\s*(\(\s*)*(select|with|values|table|explain)\b", re.IGNORECASE)
# Friendly early refusals of what the role would refuse anyway.
_FORBIDDEN = re.compile(r"set_config|u&['\"]|\bset\s+role\b|\bsession_authorization\b|\breset\b|"
                        r"\bdblink|\bcopy\b|\blo_\w+\s*\(|\bpg_read|\bpg_ls_|\bpg_terminate|\bpg_cancel|"
                        r"\bpg_reload|\bpg_rotate|\bpg_sleep_until\b|\bpg_advisory", re.IGNORECASE)


class ReadOnlyQueryError(ValueError):
    """A query refused before it reached the database, or one the database refused (message for the user)."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool
    elapsed_ms: float
    max_rows: int
    max_bytes: int = DEFAULT_MAX_BYTES
    n_bytes: int = 0  # text bytes of the rows kept (as the server measured them)
    cut_by: str | None = None  # None, "rows" or "bytes": the limit that cut the result
    notices: list[str] = field(default_factory=list)

    def cut_message(self) -> str | None:
        """What the page says when the result was cut, else None."""
        if self.cut_by == "rows":
            return (f"The result was cut: the first {len(self.rows):,} rows are shown; the query returns more "
                    f"(limit {self.max_rows:,} rows).")
        if self.cut_by == "bytes":
            return (f"The result was cut: the first {len(self.rows):,} rows are shown; the next row would pass "
                    f"the limit of {self.max_bytes / 1e6:g} MB of text per query. Select fewer columns or rows.")
        return None


def _strip_comments_and_strings(q: str) -> str:
    """The query without comments and string literals (for screening keywords, not for running)."""
    out = re.sub(r"--[^\n]*", " ", q)
    out = re.sub(r"/\*.*?\*/", " ", out, flags=re.DOTALL)
    out = re.sub(r"\$([A-Za-z_]*)\$.*?\$\1\$", "''", out, flags=re.DOTALL)
    out = re.sub(r"'(?:[^']|'')*'", "''", out)
    return out


def check_query(query: str) -> str:
    """The query, trimmed of a final semicolon, if it looks like one read-only statement; else raises.

    Only a friendly early message: the database role is what refuses anything else."""
    q = (query or "").strip()
    while q.endswith(";"):
        q = q[:-1].rstrip()
    if not q:
        raise ReadOnlyQueryError("empty query: write a SELECT over the views (e.g. `select * from v_models`)")
    bare = _strip_comments_and_strings(q)
    if ";" in bare:
        raise ReadOnlyQueryError("one statement at a time: remove the ';' between statements")
    if not _ALLOWED_START.match(bare):
        raise ReadOnlyQueryError("only queries are allowed: SELECT, WITH, VALUES, TABLE or EXPLAIN")
    m = _FORBIDDEN.search(bare) or _FORBIDDEN.search(q.replace('"', ""))
    if m:
        raise ReadOnlyQueryError(f"not allowed on this page: {m.group(0)!r}")
    return q


def _db_error(exc: psycopg.Error, timeout_ms: int) -> ReadOnlyQueryError:
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return ReadOnlyQueryError(f"cancelled after {timeout_ms} ms (statement timeout): "
                                  "narrow the query or add a LIMIT")
    diag = getattr(exc, "diag", None)
    msg = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
    hint = diag.message_hint if diag and diag.message_hint else None
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        hint = hint or "this page reads the views (v_*) only"
    return ReadOnlyQueryError(msg + (f" (hint: {hint})" if hint else ""))


def connect_reader(url: str) -> psycopg.Connection:
    """A connection for ad-hoc SQL, refused unless its login is a plain reader: not a superuser, a
    member of no role, and unable to read any base table of the schema."""
    try:
        conn = psycopg.connect(url, autocommit=False, connect_timeout=10, application_name="eval360-sql")
    except psycopg.OperationalError as exc:
        raise ReadOnlyQueryError(
            f"cannot connect as the reader role {READER_ROLE} ({str(exc).strip()[:300]}): run `eval360 migrate`, "
            "and on a server set EVAL360_READER_DATABASE_URL (deploy/README.md)") from exc
    try:
        who, is_super, n_member, n_tables = conn.execute(
            """select session_user::text, r.rolsuper,
                      (select count(*) from pg_auth_members m where m.member = r.oid),
                      (select count(*) from pg_tables t where t.schemaname = current_schema()
                          and has_table_privilege(quote_ident(t.schemaname) || '.' || quote_ident(t.tablename), 'select'))
                 from pg_roles r where r.rolname = session_user""").fetchone()
        conn.rollback()
    except BaseException:
        conn.close()
        raise
    if is_super or n_member or n_tables:
        conn.close()
        raise ReadOnlyQueryError(
            f"refusing to run ad-hoc SQL as {who}: it " + ("is a superuser" if is_super else
                                                          "is a member of another role" if n_member else
                                                          "can read base tables")
            + f"; connect as {READER_ROLE} (EVAL360_READER_DATABASE_URL, `eval360 db-url --reader`)")
    return conn


def run_readonly(url: str, query: str, *, timeout_ms: int = 5_000, max_rows: int = DEFAULT_MAX_ROWS,
                 max_bytes: int = DEFAULT_MAX_BYTES, flush_url: str | None = None) -> QueryResult:
    """Run one read-only query on the reader's connection string `url`.

    At most max_rows rows and max_bytes bytes of text come back (cut_by says which limit cut the
    result). flush_url, the owner's connection string, brings the read-side facts up to date first
    (the reader itself may not write them)."""
    q = check_query(query)
    max_rows, max_bytes = max(1, int(max_rows)), max(1, int(max_bytes))
    t0 = time.perf_counter()
    notices: list[str] = []
    if flush_url:
        try:  # the views read the facts: bring them up to date with every write first
            with psycopg.connect(flush_url, connect_timeout=10) as fc:
                flush_facts(fc)
        except psycopg.Error as exc:
            notices.append(f"the read-side facts could not be refreshed first ({type(exc).__name__})")
    conn = connect_reader(url)
    rows: list[tuple] = []
    n_bytes, cut_by = 0, None
    try:
        with conn.cursor() as cur:
            cur.execute("set transaction read only")
            cur.execute(sql.SQL("set local statement_timeout = {}").format(sql.Literal(int(timeout_ms))))
            cur.execute("set local idle_in_transaction_session_timeout = '60s'")
            is_explain = re.match(r"^\s*explain\b", _strip_comments_and_strings(q), re.IGNORECASE) is not None
            try:
                # Pipeline mode sends the text with the extended protocol: one command only.
                with conn.pipeline():
                    cur.execute(q if is_explain else f"select * from (\n{q}\n) as q limit 0")
            except psycopg.Error as exc:
                raise _db_error(exc, timeout_ms) from exc
            if cur.description is None:
                raise ReadOnlyQueryError("the statement returned no rows to show")
            columns = [d.name for d in cur.description]
            if is_explain:  # a plan: a few short lines of text
                for r in cur:
                    size = sum(len(str(v)) for v in r)
                    if len(rows) >= max_rows or n_bytes + size > max_bytes:
                        cut_by = "rows" if len(rows) >= max_rows else "bytes"
                        break
                    rows.append(tuple(r))
                    n_bytes += size
            else:
                if not columns:
                    raise ReadOnlyQueryError("the query returns no columns")
                rows, n_bytes, cut_by = _fetch_bounded(conn, q, len(columns), max_rows, max_bytes, timeout_ms)
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
    return QueryResult(columns=columns, rows=rows, truncated=cut_by is not None,
                       elapsed_ms=(time.perf_counter() - t0) * 1000, max_rows=max_rows, max_bytes=max_bytes,
                       n_bytes=n_bytes, cut_by=cut_by, notices=notices)


def _fetch_bounded(conn: psycopg.Connection, q: str, n_cols: int, max_rows: int, max_bytes: int,
                   timeout_ms: int) -> tuple[list[tuple], int, str | None]:
    """The query's rows behind a server-side cursor, the server measuring each row's text and
    keeping a running total: a row past the byte budget comes with its columns NULL and ends the fetch."""
    cols = [sql.Identifier(f"c{i}") for i in range(1, n_cols + 1)]
    wrapped = sql.SQL(
        "select {shown}, s.eval360_len, s.eval360_fits\n"
        "  from (select t.*, sum(t.eval360_len) over (rows between unbounded preceding and current row)\n"
        "                      <= {max_bytes} as eval360_fits\n"
        "          from (select q.*, octet_length(q::text)::bigint as eval360_len\n"
        "                  from (\n{query}\n) as q ({cols})) t) s\n"
        " limit {limit}").format(
        shown=sql.SQL(", ").join(sql.SQL("case when s.eval360_fits then s.{} end").format(c) for c in cols),
        max_bytes=sql.Literal(max_bytes), query=sql.SQL(q), cols=sql.SQL(", ").join(cols),
        limit=sql.Literal(max_rows + 1))
    rows: list[tuple] = []
    n_bytes = 0
    try:
        with conn.cursor(name="eval360_sql", scrollable=False) as cur:
            cur.execute(wrapped)
            size = 10
            while True:
                # The server computes exactly the rows a fetch asks for: ask for about as many as the
                # budget has room for, so that little is computed past the cut.
                batch = cur.fetchmany(size)
                if not batch:
                    return rows, n_bytes, None
                for r in batch:
                    if not r[-1]:
                        return rows, n_bytes, "bytes"
                    if len(rows) >= max_rows:
                        return rows, n_bytes, "rows"
                    rows.append(tuple(r[:-2]))
                    n_bytes += int(r[-2] or 0)
                room = (max_bytes - n_bytes) // max(1, n_bytes // max(1, len(rows)))
                size = int(max(1, min(FETCH_BATCH, room + 1, max_rows + 1 - len(rows))))
    except psycopg.Error as exc:
        raise _db_error(exc, timeout_ms) from exc


def list_views(url: str) -> list[dict]:
    """The views the connected role may query, with their columns (for the SQL page's help)."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute(
            """select c.relname,
                      string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
                 from pg_class c
                 join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema()
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where c.relkind = 'v' and has_table_privilege(c.oid, 'select')
                group by c.relname order by c.relname""").fetchall()
    return [{"view": r[0], "columns": r[1]} for r in rows]
