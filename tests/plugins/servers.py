"""Real servers for the tests that need sockets: the app under uvicorn in a thread, and `eval360 api` /
`eval360 dashboard` / `eval360 worker` as processes (their environment, start-up wait and shutdown)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

INGEST = "test-ingest-token"  # the same tokens as tests/conftest.py
ADMIN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL. At exit the
    server stops (a server left running would drain the facts of later tests in the background)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 30  # a bound on the wait, not a timing assertion
    while not server.started:
        if time.time() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(60)
        assert not t.is_alive(), "the test server did not stop"


@pytest.fixture
def live_server(app):
    """The test's app served by uvicorn in a thread: its base URL."""
    with serve_in_thread(app) as base:
        yield base


def server_env(db: str, **extra: str | None) -> dict[str, str]:
    """The environment of an Eval360 process on the test database, with the test tokens; a variable
    given as None is removed (the process gets its default)."""
    env = dict(os.environ, DATABASE_URL=db, EVAL360_INGEST_TOKEN=INGEST, EVAL360_ADMIN_TOKEN=ADMIN,
               EVAL360_LOG_LEVEL="WARNING")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def eval360(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """`python -m ingest_api.cli ARGS` as a process; its output goes to `log` (else nowhere)."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "ingest_api.cli", *args], env=env, stdout=out,
                            stderr=subprocess.STDOUT)
    proc.log_file = out  # type: ignore[attr-defined]
    return proc


def wait_until_up(url: str, proc: subprocess.Popen, what: str, *, timeout: float = 90,
                  log: Path | None = None) -> None:
    """Poll `url` until it answers below 500; fail with the process's log if it exits or never does."""
    deadline = time.time() + timeout  # a bound on the wait, not a timing assertion
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up at {url} (exit code {proc.poll()})\n{tail}")


def stop(*procs: subprocess.Popen) -> None:
    """Terminate, wait (then kill), close the logs."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(15)
        log = getattr(p, "log_file", None)
        if log not in (None, subprocess.DEVNULL):
            log.close()


@contextmanager
def api_process(db: str, log_dir: Path, *args: str, **env: str | None) -> Iterator[str]:
    """`eval360 api` as a process on the test database (no migration; more CLI args and variables as
    given); yields its base URL once /api/health answers."""
    port = free_port()
    log = log_dir / f"api-{port}.log"
    proc = eval360("api", "--port", str(port), "--no-migrate", "--quiet", *args, env=server_env(db, **env), log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/api/health", proc, "the API", log=log)
        yield base
    finally:
        stop(proc)


@contextmanager
def api_and_dashboard(db: str, log_dir: Path, **env: str) -> Iterator[tuple[str, str, int, int]]:
    """`eval360 api` and `eval360 dashboard` as processes; yields (API URL, dashboard URL, their ports)
    once both answer on their own ports."""
    api_port, dash_port = free_port(), free_port()
    environ = server_env(db, **env)
    procs = [eval360("api", "--port", str(api_port), "--no-migrate", "--quiet", env=environ,
                     log=log_dir / "api.log"),
             eval360("dashboard", "--port", str(dash_port), env=environ, log=log_dir / "dashboard.log")]
    root = env.get("EVAL360_ROOT_PATH", "").rstrip("/")
    api, dash = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    try:
        wait_until_up(f"{api}/api/health", procs[0], "the API", log=log_dir / "api.log")
        wait_until_up(f"{dash}{root}/_stcore/health", procs[1], "the dashboard", log=log_dir / "dashboard.log")
        yield api, dash, api_port, dash_port
    finally:
        stop(*procs)
