"""DashboardClient: how the scheduler and the backfill send results to the dashboard.

URL and token: explicit arguments, then EVAL360_DASHBOARD_URL / EVAL360_DASHBOARD_TOKEN,
then the shared env file (EVAL360_DASHBOARD_ENV_FILE, default
/mnt/weka/shrd/k2m/eval360/dashboard.env) holding the same two KEY=value lines.
Connection errors and 502/503/504 are retried with exponential backoff; a 4xx never is.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Self

import httpx

log = logging.getLogger("eval360.client")

DEFAULT_ENV_FILE = "/mnt/weka/shrd/k2m/eval360/dashboard.env"
RETRY_STATUSES = {502, 503, 504}


class DashboardError(RuntimeError):
    """The server refused a request (4xx) or stayed unreachable after the retries."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ConfigError(DashboardError):
    pass


def _read_env_file(path: str | os.PathLike) -> dict[str, str]:
    out: dict[str, str] = {}
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        k = k.strip().removeprefix("export ").strip()
        out[k] = v.strip().strip("'\"")
    return out


def resolve_target(url: str | None = None, token: str | None = None,
                   env_file: str | os.PathLike | None = None) -> tuple[str, str]:
    """(base URL, token): arguments, then environment, then the env file."""
    url = url or os.environ.get("EVAL360_DASHBOARD_URL") or None
    token = token or os.environ.get("EVAL360_DASHBOARD_TOKEN") or None
    if not url or not token:
        path = env_file or os.environ.get("EVAL360_DASHBOARD_ENV_FILE") or DEFAULT_ENV_FILE
        values = _read_env_file(path)
        url = url or values.get("EVAL360_DASHBOARD_URL")
        token = token or values.get("EVAL360_DASHBOARD_TOKEN")
    if not url:
        raise ConfigError("no dashboard URL: pass --dashboard-url, or set EVAL360_DASHBOARD_URL, "
                          "or put it in the env file (EVAL360_DASHBOARD_ENV_FILE)")
    if not token:
        raise ConfigError("no ingest token: pass --token, or set EVAL360_DASHBOARD_TOKEN, "
                          "or put it in the env file (EVAL360_DASHBOARD_ENV_FILE)")
    return url.rstrip("/"), token


def _json_default(o: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _dumps(payload: Any) -> bytes:
    import json

    # NaN is part of the contract (a grader's "no valid value"): send it as NaN, as the scheduler does.
    return json.dumps(payload, allow_nan=True, default=_json_default, ensure_ascii=False).encode()


class DashboardClient:
    """Keep-alive HTTP client for the ingest API."""

    def __init__(self, url: str | None = None, token: str | None = None, *, env_file: str | None = None,
                 timeout: float = 60.0, max_retries: int = 6, backoff: float = 0.5, max_backoff: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url, self.token = resolve_target(url, token, env_file)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                     "User-Agent": "eval360-client"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, payload: Any = None) -> dict:
        body = None if payload is None else _dumps(payload)
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, path, content=body)
            except httpx.TransportError as exc:
                err: Exception | None = exc
                resp = None
            else:
                err = None
            if resp is not None and resp.status_code not in RETRY_STATUSES:
                if resp.status_code >= 400:
                    raise DashboardError(_message(resp), status=resp.status_code, body=_json(resp))
                return _json(resp) or {}
            if attempt >= self.max_retries:
                what = f"HTTP {resp.status_code}: {_message(resp)}" if resp is not None else repr(err)
                raise DashboardError(f"{method} {path} failed after {attempt + 1} attempts: {what}",
                                     status=None if resp is None else resp.status_code)
            delay = min(self.max_backoff, self.backoff * math.pow(2, attempt)) * (0.5 + random.random() / 2)
            log.warning("%s %s: %s; retrying in %.1fs", method, path,
                        f"HTTP {resp.status_code}" if resp is not None else type(err).__name__, delay)
            time.sleep(delay)
            attempt += 1

    # The scheduler's two calls, and the batch call of the backfill.
    def post_eval_result(self, payload: dict) -> dict:
        return self.request("POST", "/api/ingest/eval-result", payload)

    def post_eval_results(self, results: list[dict], source: str = "api") -> dict:
        return self.request("POST", "/api/ingest/eval-results", {"results": results, "source": source})

    def post_examples(self, eval_run_id: str, examples: list[dict], batch_size: int = 5000) -> int:
        n = 0
        for i in range(0, len(examples), batch_size):
            n += self.request("POST", "/api/ingest/examples",
                              {"eval_run_id": eval_run_id, "examples": examples[i:i + batch_size]})["count"]
        return n

    def health(self) -> dict:
        return self.request("GET", "/api/health")


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _message(resp: httpx.Response | None) -> str:
    if resp is None:
        return "no response"
    body = _json(resp)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if body.get("detail"):
            return str(body["detail"])
    return (resp.text or resp.reason_phrase)[:500]
