"""`eval360 worker`: keeps the read-side facts drained, judges queued alert checks and delivers webhooks."""

from __future__ import annotations

import logging
import time

import httpx
import psycopg
from psycopg.rows import dict_row

from ..core.credentials import is_auth_failure
from ..core.db import connect, flush_facts
from ..core.settings import Settings, get_settings
from . import alerts
from .delivery import DeliveryConfig, deliver_due

log = logging.getLogger("eval360.worker")


def _work_once(conn: psycopg.Connection, cfg: DeliveryConfig, client: httpx.Client) -> int:
    """One round: re-judge every queued alert cell, then send what is due. Returns the deliveries attempted."""
    try:
        # Keep the read-side facts drained even when no API process runs (e.g. a backfill straight
        # into the database); bounded batches so a reader never waits long behind the worker.
        while flush_facts(conn, 5000):
            pass
        while alerts.process_rechecks(conn):
            pass
    except psycopg.OperationalError:
        raise
    except Exception:  # a bad cell must not stop the deliveries
        log.exception("worker: re-judging queued alert cells failed; will retry")
    return deliver_due(conn, cfg, client=client)["attempted"]


def run_worker(url: str, settings: Settings | None = None, *, once: bool = False, poll_s: float = 2.0,
               cfg: DeliveryConfig | None = None) -> int:
    """`eval360 worker`: re-judge queued alert cells and deliver webhooks, forever (or once).

    With `once`, drains what is due now (bounded rounds) and returns 0 (1 when the database is
    unreachable). Otherwise it first re-judges every model's alerts (data written without the ingest
    hook gets judged too), then loops, surviving database outages by reconnecting with a growing pause.
    """
    settings = settings or get_settings()
    cfg = cfg or DeliveryConfig.from_settings(settings)
    client = httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), follow_redirects=False)
    pause = poll_s
    swept = False
    try:
        while True:
            try:
                with connect(url, settings, row_factory=dict_row, autocommit=True) as conn:  # password refreshed on auth failure
                    pause = poll_s
                    rounds = 0
                    if not once and not swept:
                        t0 = time.perf_counter()
                        n = alerts.rejudge_all(conn)
                        swept = True
                        log.info("worker: re-judged the alerts of %d models in %.1f s", n, time.perf_counter() - t0)
                    while True:
                        rounds += 1
                        attempted = _work_once(conn, cfg, client)
                        if once:
                            if attempted and rounds < 20:
                                continue  # retries with no backoff may be due at once: bounded
                            return 0
                        if not attempted:
                            time.sleep(poll_s)
            except psycopg.OperationalError as exc:
                if once:
                    log.warning("worker: database unreachable (%s)", exc.__class__.__name__)
                    return 1
                log.warning("worker: database error (%s); reconnecting in %.0f s", exc.__class__.__name__, pause)
                time.sleep(pause)
                # Refused credentials (a rotation): the next try re-reads them, so no growing pause.
                pause = poll_s if is_auth_failure(exc) else min(60.0, pause * 2)
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
