"""Writing one alert: the judgement type, raising (with its activity event and webhook) and resolving.

alerts.py (the rules) and promotion.py (promotion_ready) both write alerts through these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from .activity import json_safe, record_event
from .webhooks import alert_payload, enqueue

WEBHOOK_EVENTS = ("regression", "improvement", "new_best", "promotion_ready")


@dataclass
class Judgement:
    alert_type: str
    dataset: str | None
    severity: str
    message: str
    detail: dict = field(default_factory=dict)


def raise_alert(conn: psycopg.Connection, j: Judgement, model_id: str, checkpoint_id: str,
                training_step: int | None) -> tuple[int, str]:
    """Insert, re-open or refresh one alert. Returns (alert id, 'new' | 'reopened' | 'open')."""
    detail = json_safe(j.detail)
    row = conn.execute(
        """insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message, detail)
           values (%s, %s, %s, %s, %s, %s, %s)
           on conflict (alert_type, checkpoint_id, dataset_name) do nothing
           returning id, created_at""",
        (j.alert_type, model_id, checkpoint_id, j.dataset, j.severity, j.message, Jsonb(detail)),
    ).fetchone()
    if row is not None:
        record_event(conn, "alert", model_id, checkpoint_id, j.dataset, f"[{j.severity}] {j.alert_type}: {j.message}",
                  {"alert_id": row["id"], "alert_type": j.alert_type, "severity": j.severity})
        if j.alert_type in WEBHOOK_EVENTS:
            enqueue(conn, j.alert_type, alert_payload(
                row["id"], j.alert_type, model_id, checkpoint_id, training_step, j.dataset, j.severity, j.message,
                detail, row["created_at"]))
        return row["id"], "new"
    old = conn.execute(
        """update alerts a set severity = %s, message = %s, detail = %s, resolved_at = null,
                  updated_at = now()
             from (select id, resolved_at from alerts
                    where alert_type = %s and checkpoint_id = %s and dataset_name is not distinct from %s
                    for update) o
            where a.id = o.id
           returning a.id, o.resolved_at as was_resolved""",
        (j.severity, j.message, Jsonb(detail), j.alert_type, checkpoint_id, j.dataset),
    ).fetchone()
    if old["was_resolved"] is not None:
        record_event(conn, "alert_reopened", model_id, checkpoint_id, j.dataset,
                  f"[{j.severity}] {j.alert_type} holds again: {j.message}",
                  {"alert_id": old["id"], "alert_type": j.alert_type, "severity": j.severity})
        return old["id"], "reopened"
    return old["id"], "open"

