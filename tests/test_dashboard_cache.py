"""The dashboard's read cache (dashboard/data.py): keyed on the database's change counter, so an
unchanged database is not queried again and a write shows on the next read, on a real PostgreSQL."""

from __future__ import annotations

import time

import psycopg
import pytest
import streamlit as st

from dashboard import data


@pytest.fixture
def counted(db):
    st.cache_data.clear()
    data._versions.clear()
    calls: list[str] = []

    def n_models(url: str) -> int:
        calls.append(url)
        with data.connection(url) as conn:
            return conn.execute("select count(*) as n from models").fetchone()["n"]

    yield data.versioned(n_models), calls
    st.cache_data.clear()
    data._versions.clear()


def _advance(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("insert into models (model_id, display_name, model_type) values ('m-cache', 'M', 'training')")


def test_unchanged_database_is_not_queried_again(db, counted):
    loader, calls = counted
    assert loader(db) == 0
    time.sleep(data._VERSION_FRESH_S + 0.05)  # past the per-run reuse of the counter: it is read again
    assert loader(db) == 0 and loader(db) == 0
    assert len(calls) == 1  # the counter did not move: the cached answer each time


def test_a_write_shows_on_the_next_read(db, counted):
    loader, calls = counted
    assert loader(db) == 0
    _advance(db)  # any write to a shown table advances eval360_data_version
    time.sleep(data._VERSION_FRESH_S + 0.05)
    assert loader(db) == 1
    assert len(calls) == 2


def test_clearing_the_caches_forgets_the_counter_at_once(db, counted):
    loader, calls = counted
    assert loader(db) == 0
    _advance(db)
    assert loader(db) == 0 and len(calls) == 1  # within the window the counter read is reused
    data.clear_caches()  # what the dashboard does after its own write (acknowledging alerts)
    assert loader(db) == 1  # no wait: the counter is read again
