"""The read-only SQL role and the view catalogue's conventions (one view per file, grain in the header)."""

from __future__ import annotations

import re

import psycopg
import pytest

from ingest_api.core.settings import SQL_DIR
from tests.conftest import q

VIEW_FILES = sorted((SQL_DIR / "views").glob("*.sql"))


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: p.name)
def test_one_view_per_file_with_its_grain(path):
    text = path.read_text()
    names = re.findall(r"create or replace view (\w+)", text)
    assert names == [path.stem], "exactly one `create or replace view`, named as the file"
    first = text.splitlines()[0]
    assert first.startswith(f"-- {path.stem}: grain = one row per "), "header comment giving the grain"


def test_docs_list_every_view():
    doc = (SQL_DIR.parent / "docs" / "views.md").read_text()
    for p in VIEW_FILES:
        assert f"`{p.stem}`" in doc, f"{p.stem} missing from docs/views.md"


def test_reader_sees_views_not_tables(db):
    views = [r["table_name"] for r in q(db, "select table_name from information_schema.views "
                                            "where table_schema = current_schema()")]
    assert {p.stem for p in VIEW_FILES} <= set(views)
    with psycopg.connect(db) as c:
        c.execute("set role eval360_reader")
        for v in views:
            c.execute(f'select * from "{v}" limit 1').fetchall()
        for table in ("models", "eval_runs", "example_results", "score_facts", "model_dataset_facts", "webhooks"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), c.transaction():
                c.execute(f"select * from {table} limit 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), c.transaction():
            c.execute("insert into suites (suite_id, display_name) values ('x', 'x')")


def test_reader_is_a_login_with_its_own_statement_timeout(db):
    cfg = q(db, "select rolconfig from pg_roles where rolname = 'eval360_reader'")[0]["rolconfig"]
    assert any(c.startswith("statement_timeout=") for c in cfg)
    assert "default_transaction_read_only=on" in cfg
    role = q(db, "select * from pg_roles where rolname = 'eval360_reader'")[0]
    assert role["rolcanlogin"] is True
    assert not (role["rolsuper"] or role["rolcreaterole"] or role["rolcreatedb"] or role["rolbypassrls"])
