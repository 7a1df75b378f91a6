"""The activity feed, newest first (the dashboard's; the API adds the earlier dashboard's names in
api/compat.py)."""

from __future__ import annotations

from typing import Any

import psycopg


def feed_filter(*, model_id: str | None = None, event_type: str | None = None, before_id: int | None = None,
                since: Any = None, limit: int = 50, offset: int = 0,
                event_type_match: str = "a.event_type = %(e)s") -> tuple[str, str, dict[str, Any]]:
    """(condition of the total, condition of the page, parameters) on `activity a`: `since` at or after
    that time, a model's events (a deleted model's too), one event type (`event_type_match` decides
    how it is matched), the page after `before_id`."""
    where = ["true"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if since is not None:
        where.append("a.created_at >= %(since)s")
        params["since"] = since
    if model_id is not None:
        # Deletions of a model are kept with model_id null (activity cascades with its model).
        where.append("(a.model_id = %(m)s or (a.model_id is null and a.detail->>'model_id' = %(m)s))")
        params["m"] = model_id
    if event_type is not None:
        where.append(event_type_match)
        params["e"] = event_type
    count_cond = " and ".join(where)
    if before_id is not None:
        where.append("a.id < %(b)s")
        params["b"] = before_id
    return count_cond, " and ".join(where), params


def feed_page(events: list[dict], total: int, limit: int, offset: int) -> dict:
    """A page of the feed as the API and the dashboard show it (next_before_id: where the next page starts)."""
    nxt = events[-1]["id"] if len(events) == limit else None
    return {"events": events, "total": total, "limit": limit, "offset": offset, "next_before_id": nxt}


def list_activity(conn: psycopg.Connection, *, model_id: str | None = None, event_type: str | None = None,
                  limit: int = 50, offset: int = 0, before_id: int | None = None, since: Any = None) -> dict:
    """Activity events newest first, one page of all that match; `since`: at or after that time."""
    count_cond, cond, params = feed_filter(model_id=model_id, event_type=event_type, before_id=before_id,
                                           since=since, limit=limit, offset=offset)
    total = conn.execute(f"select count(*) n from activity a where {count_cond}", params).fetchone()["n"]
    rows = conn.execute(
        f"""select id, event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail, created_at
              from activity a where {cond} order by created_at desc, id desc limit %(limit)s offset %(offset)s""",
        params).fetchall()
    return feed_page(rows, total, limit, offset)
