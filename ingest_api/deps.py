"""Request-scoped dependencies: a pooled connection (ConnDep) and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from .settings import Settings


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    # The pool commits on clean exit, rolls back on an exception: one transaction per request.
    with request.app.state.pool.connection() as conn:
        yield conn


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
