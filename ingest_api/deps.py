"""Request-scoped dependency: a pooled connection (ConnDep), one transaction per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    # The pool commits on clean exit, rolls back on an exception: one transaction per request.
    with request.app.state.pool.connection() as conn:
        yield conn


ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
