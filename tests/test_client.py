"""DashboardClient: target resolution, retries on 5xx/connection errors, never on 4xx."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest_api.client import ConfigError, DashboardClient, DashboardError, ReadClient, resolve_target


def test_resolution_order(tmp_path, monkeypatch):
    env_file = tmp_path / "dashboard.env"
    env_file.write_text("EVAL360_DASHBOARD_URL=https://file.example/eval360\nEVAL360_DASHBOARD_TOKEN='file-token'\n")
    monkeypatch.delenv("EVAL360_DASHBOARD_URL", raising=False)
    monkeypatch.delenv("EVAL360_DASHBOARD_TOKEN", raising=False)
    assert resolve_target(env_file=env_file) == ("https://file.example/eval360", "file-token")
    monkeypatch.setenv("EVAL360_DASHBOARD_URL", "https://env.example/")
    assert resolve_target(env_file=env_file) == ("https://env.example", "file-token")
    monkeypatch.setenv("EVAL360_DASHBOARD_TOKEN", "env-token")
    assert resolve_target("https://arg.example", None, env_file) == ("https://arg.example", "env-token")
    assert resolve_target("https://arg.example", "arg", env_file) == ("https://arg.example", "arg")


def test_missing_target_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("EVAL360_DASHBOARD_URL", raising=False)
    monkeypatch.delenv("EVAL360_DASHBOARD_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="EVAL360_DASHBOARD_URL"):
        resolve_target(env_file=tmp_path / "none.env")


class _Server:
    """A real HTTP server on loopback whose answers the test scripts: [(status, json body), ...]."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[tuple[dict, bytes]] = []
        self.paths: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((dict(self.headers), body))
                outer.paths.append(self.path)
                status, payload = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def make(script):
        s = _Server(script)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_retries_503_then_succeeds(server):
    srv = server([(503, {"ok": False, "error": {"message": "database unavailable"}}),
                  (503, {"ok": False, "error": {"message": "database unavailable"}}),
                  (200, {"ok": True, "eval_run_id": "r"})])
    c = DashboardClient(srv.url, "tok", backoff=0.001)
    assert c.post_eval_result({"x": 1}) == {"ok": True, "eval_run_id": "r"}
    assert len(srv.requests) == 3
    assert srv.requests[0][0]["Authorization"] == "Bearer tok"


def test_never_retries_4xx_and_reports_message(server):
    srv = server([(422, {"ok": False, "error": {"message": "metrics: must hold at least one metric"}})])
    with pytest.raises(DashboardError, match="metrics: must hold") as ei:
        DashboardClient(srv.url, "tok", backoff=0.001).post_eval_result({})
    assert ei.value.status == 422 and len(srv.requests) == 1


def test_connection_errors_retried_then_give_up():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = DashboardClient(f"http://127.0.0.1:{port}", "tok", backoff=0.001, max_retries=2)
    with pytest.raises(DashboardError, match="after 3 attempts"):
        c.post_eval_result({})


def test_nan_is_sent_as_nan(server):
    srv = server([(200, {"ok": True})])
    DashboardClient(srv.url, "tok").post_eval_result({"metrics": {"a": float("nan")}})
    assert b"NaN" in srv.requests[0][1]


# ------------------------------------------------------------------ ReadClient (notebooks)


def test_read_client_retries_gateway_errors_and_needs_no_token(server, tmp_path, monkeypatch):
    monkeypatch.delenv("EVAL360_DASHBOARD_TOKEN", raising=False)
    monkeypatch.setenv("EVAL360_DASHBOARD_ENV_FILE", str(tmp_path / "none.env"))
    srv = server([(502, {}), (504, {}), (503, {"ok": False, "message": "database unavailable; retry later"}),
                  (200, {"models": [{"model_id": "m", "checkpoint_count": 3, "created_at": "2026-11-26T12:00:00+00:00"}]})])
    df = ReadClient(srv.url, backoff=0.001).models(owner="a b")
    assert list(df.model_id) == ["m"] and df.checkpoint_count.iloc[0] == 3
    assert str(df.created_at.dtype).startswith("datetime64")
    assert len(srv.requests) == 4 and "Authorization" not in srv.requests[0][0]
    assert srv.paths[0] == "/api/models?owner=a+b"


def test_read_client_url_from_the_env_file_and_4xx_message(server, tmp_path, monkeypatch):
    monkeypatch.delenv("EVAL360_DASHBOARD_URL", raising=False)
    monkeypatch.delenv("EVAL360_DASHBOARD_TOKEN", raising=False)
    srv = server([(422, {"ok": False, "error": {"status": 422, "message": "x"},
                         "message": "unknown query parameter `suite_idx`; this operation accepts: score"})])
    env = tmp_path / "dashboard.env"
    env.write_text(f"EVAL360_DASHBOARD_URL={srv.url}\nEVAL360_DASHBOARD_TOKEN=tok\n")
    monkeypatch.setenv("EVAL360_DASHBOARD_ENV_FILE", str(env))
    c = ReadClient()
    assert (c.base_url, c.token) == (srv.url, "tok")
    with pytest.raises(DashboardError, match="unknown query parameter `suite_idx`") as ei:
        c.leaderboard("gsm8k")
    assert ei.value.status == 422 and len(srv.requests) == 1
    assert srv.requests[0][0]["Authorization"] == "Bearer tok"
