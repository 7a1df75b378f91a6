"""DashboardClient: how the scheduler and the backfill send results to the dashboard, and
ReadClient: the read API as pandas DataFrames, for notebooks (docs/notebook.md).

URL and token: explicit arguments, then EVAL360_DASHBOARD_URL / EVAL360_DASHBOARD_TOKEN,
then the shared env file (EVAL360_DASHBOARD_ENV_FILE, default
/mnt/weka/shrd/k2m/eval360/dashboard.env) holding the same two KEY=value lines (the reads need
no token: ReadClient sends one when it finds one).
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

from .core.settings import Settings

log = logging.getLogger("eval360.client")

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
                   env_file: str | os.PathLike | None = None, *, token_required: bool = True) -> tuple[str, str]:
    """(base URL, token): arguments, then environment, then the env file. Without token_required a
    missing token is returned as ""."""
    env = Settings.from_env()  # read now: a notebook may set the variables after importing this module
    url = url or env.dashboard_url
    token = token or env.dashboard_token
    if not url or not token:
        path = env_file or env.dashboard_env_file
        values = _read_env_file(path)
        url = url or values.get("EVAL360_DASHBOARD_URL")
        token = token or values.get("EVAL360_DASHBOARD_TOKEN")
    if not url:
        raise ConfigError("no dashboard URL: pass --dashboard-url, or set EVAL360_DASHBOARD_URL, "
                          "or put it in the env file (EVAL360_DASHBOARD_ENV_FILE)")
    if not token and token_required:
        raise ConfigError("no ingest token: pass --token, or set EVAL360_DASHBOARD_TOKEN, "
                          "or put it in the env file (EVAL360_DASHBOARD_ENV_FILE)")
    return url.rstrip("/"), token or ""


def _json_default(o: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _dumps(payload: Any) -> bytes:
    import json

    # NaN is part of the contract (a grader's "no valid value"): send it as NaN, as the scheduler does.
    return json.dumps(payload, allow_nan=True, default=_json_default, ensure_ascii=False).encode()


class DashboardClient:
    """Keep-alive HTTP client for the ingest API."""

    token_required = True

    def __init__(self, url: str | None = None, token: str | None = None, *, env_file: str | None = None,
                 timeout: float = 60.0, max_retries: int = 6, backoff: float = 0.5, max_backoff: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url, self.token = resolve_target(url, token, env_file, token_required=self.token_required)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        headers = {"Content-Type": "application/json", "User-Agent": "eval360-client"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, payload: Any = None, params: dict | None = None) -> dict:
        body = None if payload is None else _dumps(payload)
        if params:
            params = {k: _param(v) for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, path, content=body, params=params or None)
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


def _param(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return v


class ReadClient(DashboardClient):
    """The read API as pandas DataFrames (one row per item), for notebooks. Same URL/token resolution and
    retries as DashboardClient; a token is optional (reads are open).

        from ingest_api.client import ReadClient
        api = ReadClient()                  # EVAL360_DASHBOARD_URL, or the env file
        api.models().head()
    """

    token_required = False

    def get(self, path: str, **params: Any) -> dict:
        """Any GET of the API as its JSON reply (params with None values are left out)."""
        return self.request("GET", path, params=params)

    @staticmethod
    def _frame(rows: list, columns: list[str] | None = None, dates: tuple[str, ...] = (),
               empty: tuple[str, ...] = ()):
        """rows as a DataFrame (columns: for rows given as lists; empty: the columns of a frame with no rows)."""
        import pandas as pd

        if columns:
            df = pd.DataFrame(rows, columns=columns)
        elif rows:
            df = pd.DataFrame(rows)
        else:
            df = pd.DataFrame(columns=list(empty))
        for c in dates:
            if c in df.columns:
                df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
        return df

    def models(self, model_type: str | None = None, owner: str | None = None):
        """Models: one row each, newest first (checkpoint and dataset counts, latest step)."""
        out = self.get("/api/models", model_type=model_type, owner=owner)["models"]
        return self._frame(out, dates=("created_at", "updated_at", "last_eval_at"), empty=_MODEL_COLS)

    def scores(self, model: str, metrics: str = "all", dataset: str | None = None, min_step: int | None = None,
               max_step: int | None = None):
        """Every current result of a model's checkpoints: one row per checkpoint × dataset × metric
        (metrics="primary": the primary metric only)."""
        out = self.get(f"/api/models/{_seg(model)}/scores", metrics=metrics, dataset=dataset, min_step=min_step,
                       max_step=max_step, shape="columns")
        df = self._frame(out["rows"], columns=out["columns"], dates=("ingested_at",))
        df.insert(0, "model_id", out["model_id"])
        return df

    def heatmap(self, score: str | None = None, step: int | None = None, suite: str | None = None,
                category: str | None = None, model_type: str | None = None, owner: str | None = None,
                wide: bool = False):
        """The heatmap's cells, one row per model × dataset (score, n, interval, status, checkpoint);
        wide=True: a models × datasets table of scores. score: best (the API's default), latest or step."""
        import pandas as pd

        out = self.get("/api/heatmap", score=score, step=step, suite=suite, category=category,
                       model_type=model_type, owner=owner)
        rows = [{"model_id": m, "dataset_name": d, **cell}
                for m, cells in out["matrix"].items() for d, cell in cells.items()]
        cols = ["model_id", "dataset_name", "score", "n", "ci_lower", "ci_upper", "interval_method", "status",
                "checkpoint_id", "training_step", "eval_run_id", "metric_name"]
        df = self._frame(rows, columns=cols)
        df.attrs["score_choice"] = out["score_choice"]
        if wide:
            table = df.pivot(index="model_id", columns="dataset_name", values="score")
            table = table.reindex(index=[m["model_id"] for m in out["models"]], columns=out["datasets"])
            table.attrs["score_choice"] = out["score_choice"]
            return table.astype("float64") if not table.empty else pd.DataFrame(table)
        return df

    def leaderboard(self, dataset: str, score: str | None = None, step: int | None = None,
                    model_type: str | None = None, alpha: float | None = None):
        """Models ranked on one dataset: score, n, interval, rank and tie group."""
        out = self.get(f"/api/datasets/{_seg(dataset)}/leaderboard", score=score, step=step, model_type=model_type,
                       alpha=alpha)
        df = self._frame(out["leaderboard"])
        df.attrs.update({"score_choice": out["score_choice"], "tie_rule": out["tie_rule"]})
        return df

    def diff(self, a: str, b: str, alpha: float | None = None):
        """Checkpoint b against a, one row per dataset: delta = b − a, its interval, p, q, significance,
        direction. The summary counts are in .attrs["summary"]."""
        out = self.get("/api/diff", checkpoint_a=a, checkpoint_b=b, alpha=alpha, flips_limit=0)
        df = self._frame(out["datasets"]).drop(columns=["flips"], errors="ignore")
        df.attrs.update({"summary": out["summary"], "checkpoint_a": out["checkpoint_a"],
                         "checkpoint_b": out["checkpoint_b"]})
        return df

    def examples(self, run: str, correct: bool | None = None, topic: str | None = None,
                 difficulty: str | None = None, subtask: str | None = None, q: str | None = None,
                 limit: int | None = None):
        """A run's per-example rows (all pages, or the first `limit`), filtered like the API."""
        rows: list[dict] = []
        offset = 0
        while True:
            page = 200 if limit is None else min(200, limit - len(rows))
            if page <= 0:
                break
            out = self.get(f"/api/eval-runs/{_seg(run)}/examples", correct=correct, topic=topic,
                           difficulty=difficulty, subtask=subtask, q=q, limit=page, offset=offset)
            rows += out["examples"]
            offset += len(out["examples"])
            if not out["examples"] or offset >= out["total"]:
                break
        return self._frame(rows, empty=_EXAMPLE_COLS)

    def alerts(self, model_id: str | None = None, type: str | None = None, severity: str | None = None,
               status: str = "open", acknowledged: bool | None = None, dataset_name: str | None = None):
        """Alerts, newest first (all pages): type, severity, message, detail (with the test's numbers)."""
        rows: list[dict] = []
        offset = 0
        while True:
            out = self.get("/api/alerts", model_id=model_id, type=type, severity=severity, status=status,
                           acknowledged=acknowledged, dataset_name=dataset_name, limit=500, offset=offset)
            rows += out["alerts"]
            offset += len(out["alerts"])
            if not out["alerts"] or offset >= out["total"]:
                break
        return self._frame(rows, dates=("created_at", "updated_at", "resolved_at", "acknowledged_at"),
                           empty=_ALERT_COLS)

    def diagnosis(self, model: str):
        """Per dataset: latest score, best baseline and the gap with its test, trend."""
        out = self.get(f"/api/models/{_seg(model)}/diagnosis")
        df = self._frame([{"dataset_name": d, **{k: v for k, v in s.items() if k not in ("baselines", "trend_detail")}}
                          for d, s in out["scores"].items()])
        df.attrs.update({k: out[k] for k in ("model_id", "latest_checkpoint", "best_overall_step")})
        return df


_MODEL_COLS = ("model_id", "display_name", "model_type", "owner", "param_count", "is_pinned", "created_at",
               "n_checkpoints", "checkpoint_count", "dataset_count", "latest_checkpoint_id", "latest_step",
               "last_eval_at")
_ALERT_COLS = ("id", "alert_type", "model_id", "checkpoint_id", "training_step", "dataset_name", "severity",
               "message", "detail", "acknowledged", "status", "created_at")
_EXAMPLE_COLS = ("id", "eval_run_id", "example_idx", "correct", "score", "input_preview", "output_preview",
                 "ground_truth", "error_tag", "difficulty", "topic", "subtask", "metadata")


def _seg(v: str) -> str:
    """A path segment, percent-encoded (ids may hold characters a URL path cannot)."""
    from urllib.parse import quote

    return quote(str(v), safe="")


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
        if isinstance(body.get("message"), str) and body["message"]:
            return body["message"]  # the API's text for people (docs/api.md)
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if body.get("detail"):
            return str(body["detail"])
    return (resp.text or resp.reason_phrase)[:500]
