"""The activity feed's one writer: every event (ingest, alerts, promotion, acknowledgements) goes through
record_event()."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb


def json_safe(v: Any) -> Any:
    """`v` with non-finite floats as None and numpy scalars as Python numbers (for jsonb)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return json_safe(v.item())
    return v


def record_event(conn: psycopg.Connection, event_type: str, model_id: str | None, checkpoint_id: str | None,
              dataset: str | None, summary: str, detail: dict, actor: str = "eval360") -> None:
    """Append one event to the activity feed (the one writer of the `activity` table)."""
    conn.execute(
        """insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
           values (%s, %s, %s, %s, %s, %s, %s)""",
        (event_type, model_id, checkpoint_id, dataset, actor, summary, Jsonb(json_safe(detail))),
    )
