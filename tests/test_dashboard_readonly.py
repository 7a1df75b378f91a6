"""The SQL page's runner (ingest_api.readonly): one read-only statement on the eval360_reader login, with limits."""

from __future__ import annotations

import psycopg
import pytest

from ingest_api.core.reader import READER_ROLE, with_login
from ingest_api.read import readonly
from ingest_api.read.readonly import ReadOnlyQueryError, check_query, run_readonly


def _reader(url: str) -> str:
    """The test database as the reader role (the test servers trust local connections)."""
    return with_login(url, READER_ROLE)


def _seed(url: str) -> None:
    with psycopg.connect(url) as c:
        c.execute("insert into models (model_id, display_name, owner, model_type) values "
                  "('m1', 'M1', 'o', 'training'), ('m2', 'M2', 'o', 'baseline')")


def test_reads_a_view_as_the_reader_role(db):
    _seed(db)
    res = run_readonly(_reader(db), "select model_id, current_user as who from v_models order by model_id")
    assert res.columns == ["model_id", "who"]
    assert [r[0] for r in res.rows] == ["m1", "m2"]
    assert {r[1] for r in res.rows} == {READER_ROLE}
    assert res.truncated is False


def test_row_cap_and_truncation_flag(db):
    res = run_readonly(_reader(db), "select g from generate_series(1, 50) g", max_rows=10)
    assert len(res.rows) == 10 and res.truncated is True and res.cut_by == "rows"


@pytest.mark.parametrize("query, fragment", [
    ("delete from models", "only queries"),
    ("select 1; delete from models", "one statement"),
    ("select set_config('role', 'postgres', false)", "set_config"),
    ("select \"set_config\"('role', 'postgres', false)", "set_config"),
    ("select U&\"\\0073et_config\"('role', 'postgres', false)", "not allowed"),
    ("", "empty query"),
])
def test_refused_before_reaching_the_database(query, fragment):
    with pytest.raises(ReadOnlyQueryError, match=fragment):
        check_query(query)


def test_base_tables_are_out_of_reach(db):
    _seed(db)
    with pytest.raises(ReadOnlyQueryError, match="permission denied"):
        run_readonly(_reader(db), "select * from models")


def test_writes_fail_even_when_the_text_screen_is_bypassed(db, monkeypatch):
    _seed(db)
    monkeypatch.setattr(readonly, "check_query", lambda q: q)
    # Several commands: the extended protocol refuses them.
    with pytest.raises(ReadOnlyQueryError):
        run_readonly(_reader(db), "select 1; commit; delete from models")
    # A data-modifying CTE: the READ ONLY transaction (and the role) refuse it.
    with pytest.raises(ReadOnlyQueryError):
        run_readonly(_reader(db), "with d as (delete from models returning 1) select * from d")
    with psycopg.connect(db) as c:
        assert c.execute("select count(*) from models").fetchone()[0] == 2


def test_statement_timeout(db):
    with pytest.raises(ReadOnlyQueryError, match="statement timeout"):
        run_readonly(_reader(db), "select pg_sleep(5)", timeout_ms=200)


def test_list_views_names_the_views(db):
    names = {v["view"] for v in readonly.list_views(_reader(db))}
    assert {"v_models", "v_latest_scores", "v_eval_runs"} <= names
    assert "models" not in names
