"""Request-scoped dependency: a pooled connection (ConnDep), one transaction per request.

Requests queue for the database in the event loop, not in worker threads (issue 12 §3). Handlers are
plain functions that Starlette runs in its thread pool (40 threads); a request that blocked a thread
while waiting for one of the pool's connections held that thread, and the requests holding the
connections needed threads to finish: past ~40 concurrent requests every thread waited for a
connection whose owner waited for a thread, until the pool timeout turned them all into 503s. Now a
request first waits for one of `pool_max` slots (an asyncio semaphore: no thread held, FIFO, bounded
by EVAL360_QUEUE_TIMEOUT_S), and only then takes a thread and a connection, so the threads in use by
database requests never outnumber the connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import anyio
import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool, PoolTimeout

from ..core.db import checkout, release

T = TypeVar("T")


class QueueTimeout(PoolTimeout):
    """A request waited in this process's queue for a database slot longer than EVAL360_QUEUE_TIMEOUT_S."""


class DbGate:
    """Admission of requests to the connection pool of one API process."""

    def __init__(self, pool: ConnectionPool, slots: int, queue_timeout_s: float):
        self.pool = pool
        self.slots = max(1, slots)
        self.queue_timeout_s = queue_timeout_s
        self._sem = asyncio.Semaphore(self.slots)
        # Threads for taking and giving back connections: their own limiter, so that they never wait
        # behind handlers in Starlette's shared one.
        self._limiter = anyio.CapacityLimiter(self.slots + 2)
        self.waiting = 0
        self.active = 0

    @asynccontextmanager
    async def slot(self, timeout: float | None = None) -> AsyncIterator[None]:
        """Wait (in the event loop, FIFO) for one of the slots; QueueTimeout past the queue timeout."""
        timeout = self.queue_timeout_s if timeout is None else timeout
        self.waiting += 1
        try:
            with anyio.fail_after(timeout):
                await self._sem.acquire()
        except TimeoutError:
            raise QueueTimeout(f"waited {timeout:.0f} s in the queue for the database") from None
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._sem.release()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    @property
    def saturated(self) -> bool:
        return self.waiting > 0

    def stats(self) -> dict:
        s = self.pool.get_stats()
        return {"max": self.pool.max_size, "open": s.get("pool_size", 0), "idle": s.get("pool_available", 0),
                "requests_active": self.active, "requests_queued": self.waiting}

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.Connection]:
        """A pooled connection after waiting for a slot, its transaction committed on a clean exit and
        rolled back on an exception; given back whatever happens (even when the request is cancelled).
        Its first statement brought the read-side facts up to date (checkout)."""
        async with self.slot():
            with anyio.CancelScope(shield=True):  # a connection taken is always given back (below)
                conn = await self.run(checkout, self.pool)
            try:
                yield conn
            except BaseException as exc:
                with anyio.CancelScope(shield=True):
                    await self.run(release, self.pool, conn, exc)
                raise
            with anyio.CancelScope(shield=True):
                await self.run(release, self.pool, conn)


async def get_conn(request: Request) -> AsyncIterator[psycopg.Connection]:
    # One transaction per request (DbGate.connection).
    gate: DbGate = request.app.state.db_gate
    async with gate.connection() as conn:
        yield conn


# scope="function": the transaction commits (and the connection goes back) when the handler returns,
# before the response is sent, so a failed COMMIT (a connection ended by a credentials rotation, say)
# is answered 503 by the error handlers; with the request scope it came after the response had
# started, and the client saw the connection dropped with no reply.
ConnDep = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]
