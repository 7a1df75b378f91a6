"""Running a read statement and getting plain rows back: dicts or tuples, text or binary, several
statements in one round trip. Every reader of the views (ingest_api/read/) goes through these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row


def rows(conn: psycopg.Connection, query: Any, params: Any = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def records(conn: psycopg.Connection, query: Any, params: Any = None) -> list[dict]:
    """rows() fetched in binary (faster to decode): for hundreds of rows of numbers and text."""
    with conn.cursor(row_factory=dict_row, binary=True) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def tuples(conn: psycopg.Connection, query: Any, params: Any = None) -> list[tuple]:
    """Rows as tuples, fetched in binary: for hundreds of rows read by position (no dict per row)."""
    with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def batch(conn: psycopg.Connection, statements: Sequence[tuple[Any, Any, str]]) -> list[list]:
    """Independent statements sent together and answered in one round trip (pipeline mode).

    Each statement is (query, params, "dicts" | "tuples"), fetched in binary; returns each one's rows,
    in order. In a transaction that has not begun yet, its BEGIN goes in the same round trip.
    """
    curs = []
    with conn.pipeline():
        for query, params, shape in statements:
            cur = conn.cursor(row_factory=dict_row if shape == "dicts" else tuple_row, binary=True)
            cur.execute(query, params)
            curs.append(cur)
    out = [cur.fetchall() for cur in curs]
    for cur in curs:
        cur.close()
    return out


def one(conn: psycopg.Connection, query: Any, params: Any = None) -> dict | None:
    got = rows(conn, query, params)
    return got[0] if got else None
