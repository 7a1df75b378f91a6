"""Read-only SQL for the dashboard's SQL page: one statement, as the eval360_reader role, in a READ ONLY
transaction with a statement timeout, on a connection used for nothing else.

The layers, each enough on its own against a different mistake:

* one statement only: the query is sent with the extended protocol (pipeline mode), which refuses
  several commands, so `select 1; commit; delete …` cannot leave the transaction; a query is
  also wrapped as a subquery with a LIMIT (max_rows + 1), which only a single query survives;
* `SET LOCAL ROLE eval360_reader`: the role can read the views (granted by the migration runner)
  and nothing else, so base tables, `pg_authid` or server files are out of reach;
* `SET TRANSACTION READ ONLY` plus a local `statement_timeout`;
* the query text is screened for what could undo the role inside one statement (`set_config`,
  Unicode-escaped identifiers) and for anything that is not a query;
* the transaction is always rolled back and the connection closed, so nothing a query changed in
  the session survives it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from .db import flush_facts

READER_ROLE = "eval360_reader"
DEFAULT_MAX_ROWS = 5_000
_ALLOWED_START = re.compile(r"^\s*(\(\s*)*(select|with|values|table|explain)\b", re.IGNORECASE)
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
    notices: list[str] = field(default_factory=list)

    def as_records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


def _strip_comments_and_strings(q: str) -> str:
    """The query without comments and string literals (for screening keywords, not for running)."""
    out = re.sub(r"--[^\n]*", " ", q)
    out = re.sub(r"/\*.*?\*/", " ", out, flags=re.DOTALL)
    out = re.sub(r"\$([A-Za-z_]*)\$.*?\$\1\$", "''", out, flags=re.DOTALL)
    out = re.sub(r"'(?:[^']|'')*'", "''", out)
    return out


def check_query(query: str) -> str:
    """The query, trimmed of a final semicolon, if it looks like one read-only statement; else raises."""
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


def run_readonly(url: str, query: str, *, timeout_ms: int = 5_000, max_rows: int = DEFAULT_MAX_ROWS,
                 role: str = READER_ROLE) -> QueryResult:
    """Run one read-only query as `role`; at most max_rows rows (truncated=True when there were more)."""
    q = check_query(query)
    t0 = time.perf_counter()
    try:
        conn = psycopg.connect(url, autocommit=False, connect_timeout=10,
                               application_name="eval360-dashboard-sql")
    except psycopg.OperationalError as exc:
        raise ReadOnlyQueryError(f"cannot reach the database: {exc}".strip()) from exc
    try:
        try:  # the views read the facts: bring them up to date with every write first
            flush_facts(conn)
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()  # a reader-only login: it sees the facts as the last writer's reader left them
        with conn.cursor() as cur:
            cur.execute("set transaction read only")
            cur.execute(sql.SQL("set local statement_timeout = {}").format(sql.Literal(int(timeout_ms))))
            cur.execute("set local idle_in_transaction_session_timeout = '60s'")
            try:
                cur.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ReadOnlyQueryError(
                    f"this database user may not act as {role}: `grant {role} to <dashboard user>` "
                    "(the role is created by the migrations)") from exc
            except psycopg.errors.InvalidParameterValue as exc:
                raise ReadOnlyQueryError(f"role {role} does not exist: run `eval360 migrate`") from exc
            # Pipeline mode sends the query with the extended protocol (PQsendQueryParams): the server
            # refuses a string holding several commands. Row count is capped in the database.
            is_explain = re.match(r"^\s*explain\b", _strip_comments_and_strings(q), re.IGNORECASE) is not None
            text = q if is_explain else f"select * from (\n{q}\n) as q limit {int(max_rows) + 1}"
            try:
                with conn.pipeline():
                    cur.execute(text)
            except psycopg.errors.QueryCanceled as exc:
                raise ReadOnlyQueryError(f"cancelled after {timeout_ms} ms (statement timeout): "
                                         "narrow the query or add a LIMIT") from exc
            except psycopg.Error as exc:
                diag = getattr(exc, "diag", None)
                msg = (diag.message_primary if diag and diag.message_primary else str(exc)).strip()
                hint = diag.message_hint if diag and diag.message_hint else None
                if isinstance(exc, psycopg.errors.InsufficientPrivilege):
                    hint = hint or "this page reads the views (v_*) only"
                raise ReadOnlyQueryError(msg + (f" (hint: {hint})" if hint else "")) from exc
            if cur.description is None:
                raise ReadOnlyQueryError("the statement returned no rows to show")
            columns = [d.name for d in cur.description]
            rows = cur.fetchmany(max_rows + 1)
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
    truncated = len(rows) > max_rows
    return QueryResult(columns=columns, rows=[tuple(r) for r in rows[:max_rows]], truncated=truncated,
                       elapsed_ms=(time.perf_counter() - t0) * 1000, max_rows=max_rows)


def list_views(url: str) -> list[dict]:
    """The views the reader role may query, with their columns (for the SQL page's help)."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        rows = conn.execute(
            """select c.relname,
                      string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
                 from pg_class c
                 join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema()
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where c.relkind = 'v' and has_table_privilege(%s, c.oid, 'select')
                group by c.relname order by c.relname""", (READER_ROLE,)).fetchall()
    return [{"view": r[0], "columns": r[1]} for r in rows]
