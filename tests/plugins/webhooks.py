"""Webhook tests' helpers: a real HTTP receiver on loopback, registering a webhook, a regression to
send, and a delivery configuration with no waits."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ingest_api.ops.delivery import DeliveryConfig
from tests.plugins.alert_data import post

SECRET = "s3cret-s3cret-s3cret-0123456789"
FAST = DeliveryConfig(timeout_s=5.0, backoff_base_s=0.0, backoff_cap_s=0.0)


class Receiver:
    """A real HTTP server on 127.0.0.1 answering with scripted status codes (then 200)."""

    def __init__(self, script: list[int] | None = None):
        self.script = list(script or [])
        self.requests: list[dict] = []
        self.replies: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = outer.script.pop(0) if outer.script else 200
                outer.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                outer.replies.append(code)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def register(client, admin_headers, url, **over) -> dict:
    r = client.post("/api/admin/webhooks", json={"url": url, "events": ["regression", "improvement", "new_best",
                                                                        "promotion_ready"], "active": True,
                                                 "secret": SECRET, **over}, headers=admin_headers)
    assert r.status_code == 200, r.text
    return r.json()


def regression(client, h, model="k2"):
    for s in (1000, 2000):
        post(client, h, model, s, "gsm8k", 0.70)
    post(client, h, model, 3000, "gsm8k", 0.55)
