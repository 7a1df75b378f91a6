"""Alerts as the API and the dashboard list them, and the alert judge's backlog."""

from __future__ import annotations

from typing import Any

import psycopg

ALERT_COLS = """a.id, a.alert_type, a.model_id, a.checkpoint_id, a.dataset_name, a.severity, a.message, a.detail,
  a.is_acknowledged as acknowledged, a.acknowledged_by, a.acknowledged_at, a.created_at, a.updated_at,
  a.resolved_at, case when a.resolved_at is null then 'open' else 'resolved' end as status, c.training_step"""


def list_alerts(conn: psycopg.Connection, *, model_id: str | None = None, alert_type: str | None = None,
                severity: str | None = None, acknowledged: bool | None = None, checkpoint_id: str | None = None,
                dataset_name: str | None = None, status: str = "open", limit: int = 100,
                offset: int = 0, since: Any = None) -> dict:
    """Alerts newest first, one page of all that match; `since`: raised at or after that time."""
    where = ["true"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if since is not None:
        where.append("a.created_at >= %(since)s")
        params["since"] = since
    for col, key, val in (("a.model_id", "m", model_id), ("a.alert_type", "t", alert_type),
                          ("a.severity", "s", severity), ("a.checkpoint_id", "c", checkpoint_id),
                          ("a.dataset_name", "d", dataset_name)):
        if val is not None:
            where.append(f"{col} = %({key})s")
            params[key] = val
    if acknowledged is not None:
        where.append("a.is_acknowledged = %(ack)s")
        params["ack"] = acknowledged
    if status == "open":
        where.append("a.resolved_at is null")
    elif status == "resolved":
        where.append("a.resolved_at is not null")
    cond = " and ".join(where)
    total = conn.execute(f"select count(*) n from alerts a where {cond}", params).fetchone()["n"]
    rows = conn.execute(
        f"""select {ALERT_COLS} from alerts a left join checkpoints c on c.checkpoint_id = a.checkpoint_id
             where {cond} order by a.created_at desc, a.id desc limit %(limit)s offset %(offset)s""",
        params).fetchall()
    return {"alerts": rows, "total": total, "limit": limit, "offset": offset, "status": status}


def backlog(conn: psycopg.Connection) -> dict:
    """Queued alert checks not judged yet: {pending, lag_s (age of the oldest, 0 when none)}.
    GET /api/health reports it; the dashboard shows it on the alerts page."""
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        pending, lag = cur.execute("""select count(*), coalesce(extract(epoch from now() - min(queued_at)), 0)::float8
                                        from alert_recheck""").fetchone()
    return {"pending": int(pending), "lag_s": round(float(lag), 3)}
