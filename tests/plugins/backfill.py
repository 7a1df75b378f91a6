"""Backfill tests' fixtures: the API on a real socket for the client, no ambient client settings, and
runs of backfill.py's main()."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import backfill as backfill_cli
from tests.plugins.servers import INGEST, serve_in_thread


@pytest.fixture
def server(app):
    """The API served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture
def no_ambient_target(monkeypatch, tmp_path):
    """The developer's own dashboard settings must not leak into the tests."""
    monkeypatch.delenv("EVAL360_DASHBOARD_URL", raising=False)
    monkeypatch.delenv("EVAL360_DASHBOARD_TOKEN", raising=False)
    monkeypatch.setenv("EVAL360_DASHBOARD_ENV_FILE", str(tmp_path / "no-such.env"))


def run_backfill(url: str | None, *args: str, token: str = INGEST) -> int:
    argv = [*args, "--no-progress"]
    if url is not None:
        argv += ["--dashboard-url", url, "--token", token]
    return backfill_cli.main(argv)


def write_scores(folder: Path, dataset: str, metrics: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{dataset}_scores.yaml"
    if isinstance(metrics, str):
        p.write_text(metrics)
    else:
        p.write_text("".join(f'"{k}": {_fmt(v)}\n' for k, v in metrics.items()))
    return p


def _fmt(v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return repr(v)
