"""docs/notebook.md runs: its Python blocks, in order, as one notebook session, against the API served
by uvicorn on a loopback port and the real database (demo data), SQL through the reader role."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ingest_api.core.db import READER_ROLE
from tests.plugins.servers import serve_in_thread

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parent.parent / "docs" / "notebook.md"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


@pytest.fixture
def server(app, db):
    from ingest_api.ingest.demo import load_demo_data

    load_demo_data(db, scale="small", seed=3)
    with serve_in_thread(app) as base:
        yield base


def reader_url(db_url: str) -> str:
    """The reader role's connection: `eval360 db-url --reader` where the command exists; here the
    test database's login with the session's role set to the reader role (the same privileges)."""
    return make_conninfo(db_url, options=f"-c role={READER_ROLE}")


def test_notebook_code_runs(server, db, tmp_path, monkeypatch):
    monkeypatch.setenv("EVAL360_DASHBOARD_URL", server)
    monkeypatch.delenv("EVAL360_DASHBOARD_TOKEN", raising=False)
    monkeypatch.setenv("EVAL360_DASHBOARD_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("EVAL360_READER_URL", reader_url(db))
    monkeypatch.chdir(tmp_path)
    blocks = code_blocks(DOC.read_text())
    assert len(blocks) >= 10
    ns: dict = {"__name__": "notebook"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"docs/notebook.md block {i + 1}", "exec"), ns)  # noqa: S102 - the doc is ours
        except Exception as exc:
            raise AssertionError(f"docs/notebook.md block {i + 1} failed: {exc!r}\n{code}") from exc

    models = ns["models"]
    assert {"k2-think-v2", "k2-base-v3"} <= set(models.model_id)
    assert (models.checkpoint_count == models.n_checkpoints).all() and (models.dataset_count > 0).all()
    # best >= latest cell by cell (higher-is-better demo datasets); some cell differs
    assert ns["optimism"]["min"] >= -1e-12 and ns["optimism"]["max"] > 0
    assert ns["board"]["rank"].min() == 1 and ns["board"]["n"].notna().all()
    assert not ns["curves"].empty
    assert ns["d"].attrs["summary"]["total"] == len(ns["d"])
    assert len(ns["wrong"]) > 0 and (ns["wrong"].correct == False).all()
    assert ns["wrote"] is False  # the reader role could not delete
    joined = ns["joined"]
    assert len(joined) > 0 and joined.loss.notna().all()
    assert set(joined.dataset_name) == set(ns["sql_scores"].dataset_name)
    assert ns["loss_vs_score"]["points"].min() >= 2
    # Nothing was written through either connection.
    with psycopg.connect(db) as c:
        assert c.execute("select count(*) from models").fetchone()[0] == len(models)


def test_the_reader_session_is_the_reader_role(db):
    with psycopg.connect(reader_url(db)) as c:
        assert c.execute("select current_user").fetchone()[0] == READER_ROLE
