"""`eval360 export --parquet DIR`: the files read back (with DuckDB) agree with the database."""

from __future__ import annotations

import duckdb
import pytest

from ingest_api import cli
from tests.conftest import q
from tests.plugins.items import HISTORIES, STEPS, insert_runs, suspect_db


@pytest.fixture
def exported(db, tmp_path, monkeypatch):
    insert_runs(db, [(f"i{s}", "m1", s, "dsI") for s in STEPS],
            [(f"i{s}", idx, bool(h[t]), "geo" if idx % 2 else None) for idx, h in HISTORIES.items()
             for t, s in enumerate(STEPS)])
    suspect_db(db)
    with __import__("psycopg").connect(db, autocommit=True) as c:  # a superseded run is not exported
        c.execute("insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, is_current) "
                  "values ('old', 'm1__step-1000', 'm1', 'dsI', false)")
        c.execute("insert into example_results (eval_run_id, example_idx, is_correct) values ('old', 0, true)")
    monkeypatch.setenv("DATABASE_URL", db)
    out = tmp_path / "pq"
    assert cli.main(["export", "--parquet", str(out)]) == 0
    return db, out


def test_export_outcomes_match_database(exported):
    db, out = exported
    con = duckdb.connect()
    got = con.execute(
        f"select model, dataset, count(*), sum(correct::int), sum(score), count(distinct eval_run_id) "
        f"from read_parquet('{out}/example_outcomes/**/*.parquet', hive_partitioning = true) "
        f"group by 1, 2 order by 1, 2").fetchall()
    want = q(db, "select r.model_id, r.dataset_name, count(*) n, sum(coalesce(e.is_correct, e.score >= 0.5)::int) k, "
                 "sum(e.score) s, count(distinct r.eval_run_id) runs "
                 "from example_results e join eval_runs r using (eval_run_id) "
                 "where r.is_current and r.status = 'completed' group by 1, 2 order by 1, 2")
    assert [(g[0], g[1], g[2], g[3], g[5]) for g in got] == [
        (w["model_id"], w["dataset_name"], w["n"], w["k"], w["runs"]) for w in want]
    assert [round(g[4], 9) for g in got] == [round(w["s"], 9) for w in want]
    assert len(got) == 4  # m1 × dsI, a/b/c × dsU
    # hive layout, one folder per model and dataset
    assert (out / "example_outcomes" / "model=m1" / "dataset=dsI").is_dir()
    topics = con.execute(f"select topic, count(*) from read_parquet('{out}/example_outcomes/model=m1/**/*.parquet') "
                         f"group by 1 order by 1 nulls last").fetchall()
    assert topics == [("geo", 18), (None, 24)]


def test_export_views_match_database(exported):
    db, out = exported
    con = duckdb.connect()
    for view in ("v_models", "v_eval_runs", "v_current_scores", "v_example_slices"):
        n_db = q(db, f"select count(*) n from {view}")[0]["n"]
        n_pq = con.execute(f"select count(*) from read_parquet('{out}/views/{view}/**/*.parquet', "
                           f"hive_partitioning = true)").fetchone()[0]
        assert n_pq == n_db, view
    got = con.execute(f"select model, dataset, sum(n_correct) from read_parquet('{out}/views/v_eval_runs/**/*.parquet',"
                      f" hive_partitioning = true) group by 1, 2 order by 1, 2").fetchall()
    want = q(db, "select model_id, dataset_name, sum(n_correct) s from v_eval_runs group by 1, 2 order by 1, 2")
    assert got == [(w["model_id"], w["dataset_name"], w["s"]) for w in want]
    assert not (out / "views" / "v_example_pairs").exists()
