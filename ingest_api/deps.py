"""Request-scoped dependency: a pooled connection (ConnDep), one transaction per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from .db import flush_facts


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    # The pool commits on clean exit, rolls back on an exception: one transaction per request.
    with request.app.state.pool.connection() as conn:
        flush_facts(conn)  # the views read the facts: bring them up to date first
        yield conn


ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
