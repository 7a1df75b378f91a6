"""The migration runner: records files, re-creates views, safe twice and concurrently."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from ingest_api.core.db import migrate
from ingest_api.core.settings import SQL_DIR


def _tables(url):
    with psycopg.connect(url) as c:
        return {r[0] for r in c.execute("select tablename from pg_tables where schemaname='public'")}


def test_migrate_twice_is_a_no_op(fresh_database):
    url = fresh_database()
    first = migrate(url)
    assert first == sorted(p.name for p in (SQL_DIR / "migrations").glob("*.sql"))
    assert migrate(url) == []
    with psycopg.connect(url) as c:
        assert c.execute("select count(*) from schema_migrations").fetchone()[0] == len(first)
    assert {"models", "checkpoints", "eval_runs", "eval_results", "example_results", "benchmark_metadata",
            "suites", "alerts", "promotion_rules", "activity", "webhooks", "webhook_deliveries"} <= _tables(url)


def test_concurrent_migrations_both_succeed(fresh_database):
    url = fresh_database()
    results, errors = [], []

    def run():
        try:
            results.append(migrate(url))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    applied = [r for r in results if r]
    assert len(applied) == 1  # exactly one runner applied the files; the others found nothing to do
    with psycopg.connect(url) as c:
        n = c.execute("select count(*) from schema_migrations").fetchone()[0]
    assert n == len(list((SQL_DIR / "migrations").glob("*.sql")))


def test_views_recreated_and_view_order_independent(fresh_database, tmp_path):
    url = fresh_database()
    sql_dir = tmp_path / "sql"
    (sql_dir / "migrations").mkdir(parents=True)
    (sql_dir / "views").mkdir()
    (sql_dir / "migrations" / "0001_t.sql").write_text("create table t (x int); insert into t values (1), (2);")
    # a_top depends on z_base, which sorts after it
    (sql_dir / "views" / "a_top.sql").write_text("create or replace view a_top as select x * 10 as y from z_base;")
    (sql_dir / "views" / "z_base.sql").write_text("create or replace view z_base as select x from t;")
    migrate(url, sql_dir)
    # a view may change its columns between versions
    (sql_dir / "views" / "z_base.sql").write_text("create or replace view z_base as select x, x + 1 as x1 from t;")
    migrate(url, sql_dir)
    with psycopg.connect(url) as c:
        assert c.execute("select sum(y) from a_top").fetchone()[0] == 30
        assert c.execute("select x1 from z_base order by x").fetchall() == [(2,), (3,)]


def test_failed_migration_is_not_recorded(fresh_database, tmp_path):
    url = fresh_database()
    sql_dir = tmp_path / "sql"
    (sql_dir / "migrations").mkdir(parents=True)
    (sql_dir / "views").mkdir()
    (sql_dir / "migrations" / "0001_ok.sql").write_text("create table ok (x int);")
    (sql_dir / "migrations" / "0002_bad.sql").write_text("create table half (x int); select 1/0;")
    with pytest.raises(psycopg.Error):
        migrate(url, sql_dir)
    assert "half" not in _tables(url) and "ok" in _tables(url)
    (sql_dir / "migrations" / "0002_bad.sql").write_text("create table half (x int);")
    assert migrate(url, sql_dir) == ["0002_bad.sql"]


def test_reader_role_sees_views_only(db_url):
    with psycopg.connect(db_url) as c:
        views = [r[0] for r in c.execute(
            "select table_name from information_schema.views where table_schema='public'")]
        granted = {r[0] for r in c.execute(
            "select table_name from information_schema.role_table_grants where grantee='eval360_reader'")}
    assert set(views) <= granted
    assert "models" not in granted and "example_results" not in granted


def test_every_view_file_has_a_grain_header():
    for p in Path(SQL_DIR / "views").glob("*.sql"):
        head = p.read_text().lstrip().splitlines()[0].lower()
        assert head.startswith("--") and "grain" in p.read_text().lower()[:600], p.name


def test_an_applied_migration_that_changed_is_refused_naming_the_file(fresh_database, tmp_path):
    """Migrations are append-only: a database whose applied file now reads differently is not migrated on."""
    import shutil

    from ingest_api.core.db import MigrationChanged

    url = fresh_database()
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    migrate(url, sql_dir)
    first = min((sql_dir / "migrations").glob("*.sql"))
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationChanged, match=first.name):
        migrate(url, sql_dir)


def test_eval360_migrate_exits_non_zero_on_a_changed_migration(fresh_database, monkeypatch, capsys, tmp_path):
    import shutil

    from ingest_api import cli
    from ingest_api.core import db

    url = fresh_database()
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    migrate(url, sql_dir)
    last = max((sql_dir / "migrations").glob("*.sql"))
    last.write_text(last.read_text().replace("create", "CREATE", 1))
    real = db.migrate
    monkeypatch.setattr(db, "migrate", lambda u, *a, **k: real(u, sql_dir))
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["migrate"]) == 2
    assert last.name in capsys.readouterr().err


def test_a_database_from_before_the_squash_is_refused_naming_what_it_has(fresh_database, monkeypatch, capsys):
    """Migrations were squashed into 0001_baseline.sql: a database migrated with the files before it has
    applied names the tree no longer holds. There is no upgrade path: it is refused, before anything runs."""
    from ingest_api import cli
    from ingest_api.core.db import MigrationMissing

    url = fresh_database()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("create table schema_migrations (filename text primary key, checksum text not null, "
                  "applied_at timestamptz not null default now())")
        c.execute("insert into schema_migrations (filename, checksum) values ('0001_init.sql', 'a'), "
                  "('0002_read_side.sql', 'b'), ('0015_data_version.sql', 'c')")
        c.execute("create table models (model_id text primary key)")  # as such a database has
    with pytest.raises(MigrationMissing, match="0001_init.sql, 0002_read_side.sql, 0015_data_version.sql") as err:
        migrate(url)
    assert "recreate" in str(err.value)
    with psycopg.connect(url) as c:
        assert [r[0] for r in c.execute("select filename from schema_migrations order by 1")] == [
            "0001_init.sql", "0002_read_side.sql", "0015_data_version.sql"]  # nothing was applied
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["migrate"]) == 2
    assert "0002_read_side.sql" in capsys.readouterr().err


def _routines_and_triggers(url):
    with psycopg.connect(url) as c:
        return (c.execute("select oid, oid::regprocedure::text, md5(prosrc), proacl::text from pg_proc "
                          "where pronamespace = current_schema()::regnamespace order by 2").fetchall(),
                c.execute("select t.oid, t.tgname, pg_get_triggerdef(t.oid) from pg_trigger t "
                          "join pg_class r on r.oid = t.tgrelid where not t.tgisinternal "
                          "and r.relnamespace = current_schema()::regnamespace order by 2").fetchall())


def test_functions_and_triggers_are_re_applied_by_every_run_and_unchanged_when_their_files_are(
        fresh_database, tmp_path):
    """sql/functions/ is re-applied like the views (create or replace): a second run leaves every function and
    trigger as it was (the same objects, bodies and grants); a changed file takes effect on the next run, and
    a new function is executable by its owner only (PUBLIC's default EXECUTE is taken away again)."""
    import shutil

    url = fresh_database()
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    migrate(url, sql_dir)
    before = _routines_and_triggers(url)
    assert before[0] and before[1]
    assert migrate(url, sql_dir) == []
    assert _routines_and_triggers(url) == before

    probe = sql_dir / "functions" / "95_probe.sql"
    probe.write_text("create or replace function eval360_probe() returns int language sql as $$ select 1 $$;")
    migrate(url, sql_dir)
    probe.write_text("create or replace function eval360_probe() returns int language sql as $$ select 2 $$;")
    migrate(url, sql_dir)
    with psycopg.connect(url) as c:
        assert c.execute("select eval360_probe()").fetchone()[0] == 2
        who = {r[0] for r in c.execute(
            "select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end "
            "from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
            "where p.proname = 'eval360_probe'")}
        assert who == {c.execute("select current_user").fetchone()[0]}
        # The reader may execute the functions its views call (eval360_pad), and no other of ours.
        callable_by_reader = [r[0] for r in c.execute(
            "select proname from pg_proc where pronamespace = current_schema()::regnamespace "
            "and has_function_privilege('eval360_reader', oid, 'execute') order by 1")]
    assert callable_by_reader == ["eval360_pad"]


def test_a_second_migrate_does_not_wait_for_writers_and_restores_a_disabled_trigger(fresh_database):
    """Re-applying sql/functions/ leaves a trigger that is already as listed alone: a run that changes
    nothing takes no lock on the tables, so it does not wait for a write in flight (a service restarting
    while others write). A trigger someone disabled is enabled again."""
    url = fresh_database()
    migrate(url)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("alter table example_results disable trigger example_results_slices_ins")
    migrate(url)
    with psycopg.connect(url) as c:
        assert c.execute("select tgenabled from pg_trigger where tgname = 'example_results_slices_ins'"
                         ).fetchone()[0] == "O"

    writer = psycopg.connect(url)
    done = threading.Event()
    try:
        writer.execute("lock table example_results, eval_runs, models, score_facts in row exclusive mode")
        t = threading.Thread(target=lambda: (migrate(url), done.set()), daemon=True)
        t.start()
        assert done.wait(60), "migrate waited for a writer's transaction"
    finally:
        writer.rollback()
        writer.close()
    t.join(60)
