"""Settings in tests: webhooks may reach receivers on loopback, and the switches several test modules
share (judge alerts inline, notify at once). get_settings() follows the environment, so plain
monkeypatch.setenv is seen at once."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _webhooks_may_reach_loopback():
    """Tests deliver webhooks to receivers on 127.0.0.1, which production refuses (core/netguard.py);
    tests/test_security_webhooks.py turns the setting off to test that refusal. Not monkeypatch: a test's
    monkeypatch.undo() must not take it away."""
    key, old = "EVAL360_WEBHOOK_ALLOW_PRIVATE", os.environ.get("EVAL360_WEBHOOK_ALLOW_PRIVATE")
    os.environ[key] = "1"
    yield
    if old is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = old


@pytest.fixture
def alerts_inline(monkeypatch):
    """Judge alerts in the ingest transaction (EVAL360_ALERTS_INLINE=1): for the tests that check the
    rules as each result arrives. The default queues the judgement for the worker
    (tests/test_alert_deferred.py). Use with `pytestmark = pytest.mark.usefixtures("alerts_inline")`;
    the `settings` fixture (tests/conftest.py) reads it."""
    monkeypatch.setenv("EVAL360_ALERTS_INLINE", "1")


@pytest.fixture
def alerts_deferred(monkeypatch):
    """The default: ingest queues the judgement, the worker makes it."""
    monkeypatch.delenv("EVAL360_ALERTS_INLINE", raising=False)


@pytest.fixture
def notify_at_once(monkeypatch):
    """Regression webhooks due at once (EVAL360_ALERT_QUIET_S=0; the quiet period has its own test)."""
    monkeypatch.setenv("EVAL360_ALERT_QUIET_S", "0")
