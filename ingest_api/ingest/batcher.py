"""Group commit for single-result posts: concurrent POST /api/ingest/eval-result calls are stored
together, in one call of eval360_store_results and one transaction, while they wait for the batch
ahead of them. One client sees no change (its posts go one by one); eight clients pay for one
worker-thread hop, one round trip and one commit per batch instead of per result.

Each post still gets its own reply. A batch that fails (a conflict in one result, say) is rolled back
whole and its results are stored again one by one, so one bad result fails alone and never takes
the others with it; storing is idempotent, so nothing is written twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from ..core.db import is_connection_lost
from . import store as core
from .schemas import EvalResultIn, EvalResultOut

log = logging.getLogger("eval360.ingest")
T = TypeVar("T")
TRANSIENT = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
# The database is unreachable or busy: storing the results one by one would only fail N times slower.
_UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)
RETRIES = 4


def run_in_transaction(pool: ConnectionPool, fn: Callable[[psycopg.Connection], T], *,
                       single_statement: bool = False) -> T:
    """fn(conn) in one transaction on a pooled connection; a deadlock or serialisation failure
    (the loser's transaction was rolled back whole) is run again.

    single_statement: fn issues one statement (no after_store needs the transaction), so it runs in
    autocommit (one round trip instead of BEGIN / call / COMMIT).
    """
    for attempt in range(RETRIES):
        used: psycopg.Connection | None = None
        try:
            with pool.connection() as conn:
                used = conn
                if single_statement:
                    conn.autocommit = True
                    try:
                        return fn(conn)
                    finally:
                        if not conn.closed:
                            conn.autocommit = False
                with conn.transaction():
                    return fn(conn)
        except TRANSIENT:
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
        except psycopg.OperationalError as exc:
            # The server closed the connection (a credentials rotation terminates them, so does a
            # restart): the pool replaces it, and the write is run again once more (writes are idempotent).
            if used is None or not is_connection_lost(used, exc) or attempt == RETRIES - 1:
                raise
            log.info("connection lost during a write; retrying it on a new connection")
    raise AssertionError("unreachable")


class ResultBatcher:
    """Per API process: collects single-result posts while a batch is being stored.

    With an async pool, a batch is stored from the event loop itself (no worker-thread hop) unless
    after_store needs a synchronous connection in the transaction (EVAL360_ALERTS_INLINE)."""

    def __init__(self, pool: ConnectionPool, *, apool: AsyncConnectionPool | None = None, max_batch: int = 64,
                 on_stored: Callable[[], None] | None = None, after_store: core.AfterStore | None = None):
        self._pool = pool
        self._apool = apool if after_store is None else None
        self._after_store = after_store
        self._max = max_batch
        self._on_stored = on_stored
        self._waiting: list[tuple[EvalResultIn, str, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, result: EvalResultIn, actor: str) -> EvalResultOut:
        fut = asyncio.get_running_loop().create_future()
        self._waiting.append((result, actor, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max], self._waiting[self._max:]
            try:
                if self._apool is not None:
                    outcomes = await self._store_async(batch)
                else:
                    outcomes = await run_in_threadpool(self._store, batch)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
                outcomes = [exc] * len(batch)
            for (_, _, fut), out in zip(batch, outcomes):
                if fut.done():  # the client went away
                    continue
                if isinstance(out, BaseException):
                    fut.set_exception(out)
                else:
                    fut.set_result(out)
            if self._on_stored is not None:
                self._on_stored()

    async def _store_async(self, batch: list[tuple[EvalResultIn, str, asyncio.Future]]
                           ) -> list[EvalResultOut | BaseException]:
        prepared = core.PreparedBatch([r for r, _, _ in batch], source="api", actor=[a for _, a, _ in batch],
                                      record_activity=True)
        try:
            for attempt in range(RETRIES):
                used: psycopg.AsyncConnection | None = None
                try:
                    async with self._apool.connection() as conn:  # autocommit: one statement, one transaction
                        used = conn
                        cur = await conn.execute(core.STORE_SQL, (prepared.arg,))
                        outs = (await cur.fetchone())["r"]
                    return list(prepared.replies(outs))
                except TRANSIENT:
                    if attempt == RETRIES - 1:
                        raise
                    await asyncio.sleep(0.02 * (attempt + 1))
                except psycopg.OperationalError:
                    # A connection the server closed (credentials rotation, restart): the pool replaces
                    # it; the batch is stored again on another one (storing is idempotent).
                    if used is None or not (used.broken or used.closed) or attempt == RETRIES - 1:
                        raise
                    log.info("connection lost while storing a batch; retrying it on a new connection")
                except psycopg.Error as exc:
                    err = prepared.conflict(exc, field_prefix=False)
                    if err is None:
                        raise
                    if len(batch) == 1:
                        return [err]
                    break
        except Exception as exc:  # noqa: BLE001 - answered per result below
            if len(batch) == 1 or isinstance(exc, _UNAVAILABLE):
                return [exc] * len(batch)
        out: list[EvalResultOut | BaseException] = []
        for item in batch:  # the batch failed: each alone, so only the bad one fails
            out.extend(await self._store_async([item]))
        return out

    def _store(self, batch: list[tuple[EvalResultIn, str, asyncio.Future]]) -> list[EvalResultOut | BaseException]:
        results = [r for r, _, _ in batch]
        actors = [a for _, a, _ in batch]
        try:
            return list(run_in_transaction(
                self._pool, lambda conn: core.store_eval_results(conn, results, actor=actors, field_prefix=False,
                                                                 after_store=self._after_store),
                single_statement=self._after_store is None))
        except Exception as exc:  # noqa: BLE001 - answered per result below
            if len(batch) == 1 or isinstance(exc, _UNAVAILABLE):
                return [exc] * len(batch)
        out: list[EvalResultOut | BaseException] = []
        for r, a in zip(results, actors):  # the batch failed: each alone, so only the bad one fails
            try:
                out.append(run_in_transaction(self._pool, lambda conn, r=r, a=a: core.store_eval_result(
                    conn, r, actor=a, after_store=self._after_store), single_statement=self._after_store is None))
            except Exception as exc:  # noqa: BLE001 - this result's own error
                out.append(exc)
        return out
