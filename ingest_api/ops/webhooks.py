"""Webhooks: an outbox written in the transaction that raised the event (enqueue: no network I/O), the
payload and its signature. ops/delivery.py sends what is due (`eval360 worker`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..core import netguard
from ..core.settings import get_settings

SIGNATURE_HEADER = "X-Eval360-Signature"
EVENTS = ("regression", "improvement", "new_best", "promotion_ready", "missing_evaluation")
DEFAULT_EVENTS = ("regression", "improvement", "new_best", "promotion_ready")


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the body with the webhook's secret (the X-Eval360-Signature header)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


_EMOJI = {"regression": ":red_circle:", "improvement": ":large_green_circle:", "new_best": ":trophy:",
          "promotion_ready": ":rocket:", "missing_evaluation": ":warning:"}


def slack_text(event: str, severity: str, model_id: str, step: int | None, message: str) -> str:
    where = f"{model_id}" + (f" step {step}" if step is not None else "")
    return f"{_EMOJI.get(event, '')} *{event.replace('_', ' ')}* ({severity}) {where}: {message}".strip()


def alert_payload(alert_id: int, alert_type: str, model_id: str, checkpoint_id: str, step: int | None,
                  dataset: str | None, severity: str, message: str, detail: dict, created_at: datetime) -> dict:
    return {"event": alert_type, "alert_id": alert_id, "alert_type": alert_type, "model_id": model_id,
            "checkpoint_id": checkpoint_id, "training_step": step, "dataset_name": dataset, "severity": severity,
            "message": message, "detail": detail,
            "created_at": created_at.isoformat() if isinstance(created_at, datetime) else created_at,
            "text": slack_text(alert_type, severity, model_id, step, message)}


def quiet_period_s() -> float:
    """EVAL360_ALERT_QUIET_S (default 60): a regression event goes out only once its alert has held
    this long with no new data for its model (0: as soon as the worker runs)."""
    return max(0.0, get_settings().alert_quiet_s)


def enqueue(conn: psycopg.Connection, event_type: str, payload: dict) -> int:
    """Write one outbox row per active webhook subscribed to the event. No network I/O.

    A regression is due only after the quiet period (quiet_period_s); _claim also holds it back while
    its model keeps changing and withdraws it if the alert is resolved first."""
    delay = quiet_period_s() if event_type == "regression" else 0.0
    cur = conn.execute(
        """insert into webhook_deliveries (webhook_id, event_type, payload, next_attempt_at)
           select id, %s, %s, now() + make_interval(secs => %s) from webhooks where is_active and %s = any(events)""",
        (event_type, Jsonb(payload), delay, event_type))
    return cur.rowcount or 0


def webhook_out(r: dict[str, Any]) -> dict:
    return {"id": r["id"], "url": netguard.redact_url(r["url"]), "events": list(r["events"]), "active": r["is_active"],
            "is_active": r["is_active"], "description": r["description"], "created_at": r["created_at"],
            "updated_at": r["updated_at"], **{k: r[k] for k in ("n_pending", "n_delivered", "n_failed") if k in r}}
