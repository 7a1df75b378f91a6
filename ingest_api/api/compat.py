"""Reply shaping for the HTTP API's drop-in contract with the earlier dashboard's clients.

The earlier dashboard's scripts and single-page app read some keys and values under other names
(formats.md §6). The HTTP routes add those beside the new ones here; the `read` functions the
Streamlit dashboard calls directly keep their own shapes. docs/api.md ("Changes from the earlier
dashboard") lists every mapping and what stays different on purpose.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..read.activity import feed_filter, feed_page

# ------------------------------------------------------------------ diagnosis


def diagnosis_reply(out: dict) -> dict:
    """Per dataset: `sample_count` beside `n`; `baseline_model` is the best baseline's display name
    (as the earlier API had it) and `baseline_model_id` its id."""
    for cell in out.get("scores", {}).values():
        cell["sample_count"] = cell.get("n")
        bid = cell.get("baseline_model")
        cell["baseline_model_id"] = bid
        if bid is not None:
            names = {b["model_id"]: b.get("display_name") for b in cell.get("baselines", [])}
            cell["baseline_model"] = names.get(bid) or bid
    return out


# ------------------------------------------------------------------ activity

# Stored event kinds and the earlier dashboard's event types they answer to (docs/api.md).
#   eval_result, backfill (status completed)  -> eval_completed
#   alert (alert_type T)                      -> T: regression, improvement, new_best, promotion_ready,
#                                                missing_evaluation
#   everything else                           -> unchanged (examples, alert_reopened, alert_resolved,
#                                                acknowledgement, promotion, admin, eval_result of a
#                                                run that is not completed)

_EVENT_TYPE_SQL = """case
    when a.event_type in ('eval_result', 'backfill') and a.detail->>'status' = 'completed' then 'eval_completed'
    when a.event_type = 'alert' and a.detail->>'alert_type' is not null then a.detail->>'alert_type'
    else a.event_type end"""

# An alert event's detail gains the score movement its alert recorded: value, previous_value and
# delta = value − previous_value (the new checkpoint minus the previous one; negative is a fall
# on a higher-is-better dataset).
_DETAIL_SQL = """case when al.id is not null and jsonb_typeof(al.detail->'value') = 'number'
                           and jsonb_typeof(al.detail->'previous'->'value') = 'number'
    then a.detail || jsonb_build_object(
           'value', (al.detail->>'value')::float8,
           'previous_value', (al.detail->'previous'->>'value')::float8,
           'delta', (al.detail->>'value')::float8 - (al.detail->'previous'->>'value')::float8,
           'previous_checkpoint_id', al.detail->'previous'->>'checkpoint_id',
           'step', al.detail->'step', 'previous_step', al.detail->'previous'->'step',
           'p_value', al.detail->'p_value', 'q_value', al.detail->'q_value')
    else a.detail end"""


def activity(conn: psycopg.Connection, *, model_id: str | None = None, event_type: str | None = None,
             limit: int = 50, offset: int = 0, before_id: int | None = None, since: Any = None) -> dict:
    """The activity feed with the earlier dashboard's event types (`event_type`), the stored kind
    (`kind`) and, on alert events, `detail.delta`. `event_type` filters on either vocabulary."""
    count_cond, cond, params = feed_filter(
        model_id=model_id, event_type=event_type, before_id=before_id, since=since, limit=limit, offset=offset,
        event_type_match=f"(a.event_type = %(e)s or ({_EVENT_TYPE_SQL}) = %(e)s)")
    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute(f"select count(*) as n from activity a where {count_cond}", params).fetchone()["n"]
        rows = cur.execute(
            # The page first, then its alerts (a join before the limit would touch every event).
            f"""select a.id, {_EVENT_TYPE_SQL} as event_type, a.event_type as kind, a.model_id, a.checkpoint_id,
                       a.dataset_name, a.actor, a.summary, {_DETAIL_SQL} as detail, a.created_at
                  from (select * from activity a where {cond}
                         order by a.created_at desc, a.id desc limit %(limit)s offset %(offset)s) a
                  left join alerts al on a.event_type in ('alert', 'alert_reopened')
                                     and al.id = (a.detail->>'alert_id')::bigint
                 order by a.created_at desc, a.id desc""", params).fetchall()
    return feed_page(rows, total, limit, offset)
