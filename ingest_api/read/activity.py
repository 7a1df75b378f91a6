"""The activity feed, newest first (the dashboard's; the API adds the earlier dashboard's names in
api/compat.py)."""

from __future__ import annotations

from typing import Any

import psycopg


def list_activity(conn: psycopg.Connection, *, model_id: str | None = None, event_type: str | None = None,
                  limit: int = 50, offset: int = 0, before_id: int | None = None, since: Any = None) -> dict:
    """Activity events newest first, one page of all that match; `since`: at or after that time."""
    where = ["true"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if since is not None:
        where.append("created_at >= %(since)s")
        params["since"] = since
    if model_id is not None:
        # Deletions of a model are kept with model_id null (activity cascades with its model).
        where.append("(model_id = %(m)s or (model_id is null and detail->>'model_id' = %(m)s))")
        params["m"] = model_id
    if event_type is not None:
        where.append("event_type = %(e)s")
        params["e"] = event_type
    count_cond = " and ".join(where)
    if before_id is not None:
        where.append("id < %(b)s")
        params["b"] = before_id
    cond = " and ".join(where)
    total = conn.execute(f"select count(*) n from activity where {count_cond}", params).fetchone()["n"]
    rows = conn.execute(
        f"""select id, event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail, created_at
              from activity where {cond} order by created_at desc, id desc limit %(limit)s offset %(offset)s""",
        params).fetchall()
    nxt = rows[-1]["id"] if len(rows) == limit else None
    return {"events": rows, "total": total, "limit": limit, "offset": offset, "next_before_id": nxt}
