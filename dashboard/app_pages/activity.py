"""Activity & alerts: every alert and event, paged, in a time window, grouped by model and checkpoint;
bulk acknowledgement with the admin token kept for the session (never in the URL)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import (
    empty,
    friendly_error,
    load,
    md_escape,
    qp,
    qp_bool,
    qp_int,
    select,
    sync_qp,
    table,
    url_tabs,
)

url = data.database_url()
st.title("Activity & alerts")

models = [m["model_id"] for m in load(data.list_models, url, what="models")]
view = url_tabs({"alerts": "Alerts", "feed": "Activity feed"}, param="view", key="act_view")

backlog = load(data.alert_backlog, url, what="the alert backlog")
if backlog["pending"]:
    # "No alerts" and "not judged yet" must look different (issue 14).
    st.info(f"The alert judge is catching up: {backlog['pending']:,} checks queued, the oldest "
            f"{backlog['lag_s']:,.0f} s ago. Alerts for recent results may still appear.", icon=":material/hourglass_top:")

WINDOWS = {"all": "all time", "1h": "last hour", "6h": "last 6 hours", "24h": "last 24 hours", "7d": "last 7 days",
           "30d": "last 30 days", "since": "since a date"}
HOURS = {"1h": 1, "6h": 6, "24h": 24, "7d": 24 * 7, "30d": 24 * 30}
ALERTS_PAGE = 100
FEED_PAGE = 200
ALERT_CAP = 20_000  # alerts fetched at most for one view (paged, grouped and selected here)


def window_picker(container: object, key: str) -> tuple[datetime | None, dict]:
    """The time window: (since as a UTC datetime or None, the URL parameters that reproduce it)."""
    w = select("Time window", list(WINDOWS), param="window", key=f"{key}_window", format_func=WINDOWS.get,
               container=container)
    if w in HOURS:
        return datetime.now(UTC) - timedelta(hours=HOURS[w]), {"window": w, "since": None}
    if w == "since":
        try:
            d0 = date.fromisoformat(qp("since") or "")
        except ValueError:
            d0 = date.today() - timedelta(days=1)
        d = st.date_input("Since (UTC, from midnight)", value=d0, key=f"{key}_since")
        return datetime.combine(d, time.min, tzinfo=UTC), {"window": w, "since": d.isoformat()}
    return None, {"window": None, "since": None}


def pager(total: int, size: int, key: str) -> int:
    """Page number picker (1-based, from ?page=); returns the offset."""
    pages = max(1, math.ceil(total / size))
    want = qp_int("page", 1) or 1
    if want > pages or want < 1:
        st.warning(f"Page {want} in this link does not exist (there {'is' if pages == 1 else 'are'} {pages}); "
                   "showing page 1.")
        want = 1
    p = st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=want, step=1, key=key)
    return (int(p) - 1) * size, int(p)


# ------------------------------------------------------------------ alerts
if view == "alerts":
    c1, c2, c3, c4, c5 = st.columns(5)
    status = select("Status", ["open", "resolved", "all"], param="status", key="act_status", container=c1)
    severity = select("Severity", [None, "critical", "warning", "info"], param="severity", key="act_severity",
                      container=c2, format_func=lambda s: "all severities" if s is None else s)
    alert_type = select("Type", [None, "regression", "improvement", "new_best", "promotion_ready",
                                 "missing_evaluation"], param="alert_type", key="act_type", container=c3,
                        format_func=lambda s: "all types" if s is None else s)
    model = select("Model", [None] + models, param="model", key="act_model", container=c4,
                   format_func=lambda s: "all models" if s is None else s)
    since, window_qp = window_picker(c5, "act")
    g1, g2 = st.columns([1, 2])
    unacked = g1.toggle("Only unacknowledged", value=qp_bool("unacked"), key="act_unacked")
    groupings = {"none": "no grouping", "model": "by model", "checkpoint": "by model and checkpoint"}
    group = g2.radio("Group", list(groupings), format_func=groupings.get, horizontal=True, key="act_group",
                 index=list(groupings).index(qp("group")) if qp("group") in groupings else 0)
    res = load(data.alerts, url, model, status, severity, alert_type, False if unacked else None, ALERT_CAP, 0,
               since, what="the alerts")
    rows, total = res["alerts"], res["total"]
    st.caption(f"{total:,} alerts match" + (f" ({ALERT_CAP:,} newest used here; narrow the window for the rest)"
                                            if total > len(rows) else "")
               + ". Critical first, then warnings, newest first within a severity.")
    sync_qp(status=None if status == "open" else status, severity=severity, alert_type=alert_type, model=model,
            unacked=unacked or None, group=None if group == "none" else group, **window_qp)
    if not rows:
        empty("No alert matches. Alerts appear when a checkpoint is significantly worse or better than the "
              "previous one on a dataset, when a checkpoint passes its promotion rules, or when a suite "
              "dataset is missing between two evaluated checkpoints. Widen the time window or clear a filter.")
        st.stop()
    adf = pd.DataFrame(rows)
    adf = adf.assign(_sev=adf["severity"].map({"critical": 0, "warning": 1}).fillna(2)) \
        .sort_values(["_sev", "created_at"], ascending=[True, False], kind="stable").drop(columns="_sev")
    cols = ["id", "severity", "alert_type", "model_id", "training_step", "dataset_name", "message", "created_at",
            "status", "acknowledged", "acknowledged_by", "acknowledged_at", "checkpoint_id"]
    adf = adf[[c for c in cols if c in adf.columns]]
    selected_ids: list[int] = []
    if group == "none":
        offset, page = pager(len(adf), ALERTS_PAGE, "act_page")
        page_df = adf.iloc[offset:offset + ALERTS_PAGE]
        st.caption(f"Rows {offset + 1:,}–{offset + len(page_df):,} of {len(adf):,}. Tick rows to acknowledge them.")
        ev = table(page_df, name="alerts", key="act_alerts", on_select="rerun", selection_mode="multi-row",
                   column_config={"message": st.column_config.TextColumn(width="large")})
        picked = (ev.selection.get("rows") or []) if ev else []
        selected_ids = [int(page_df.iloc[i]["id"]) for i in picked]
        sync_qp(page=None if page == 1 else page)
    else:
        keys = ["model_id"] if group == "model" else ["model_id", "checkpoint_id", "training_step"]
        g = adf.assign(critical=adf["severity"] == "critical", unacknowledged=~adf["acknowledged"].astype(bool)) \
            .groupby(keys, dropna=False, sort=False) \
            .agg(alerts=("id", "count"), critical=("critical", "sum"), unacknowledged=("unacknowledged", "sum"),
                 newest=("created_at", "max"), datasets=("dataset_name", lambda s: ", ".join(sorted({
                     x for x in s if isinstance(x, str)})[:12]))).reset_index()
        g = g.sort_values(["critical", "newest"], ascending=[False, False])
        st.caption(f"{len(g):,} groups. Tick groups to acknowledge all their alerts; their alerts are listed below.")
        ev = table(g, name=f"alerts_by_{group}", key="act_groups", on_select="rerun", selection_mode="multi-row")
        picked = (ev.selection.get("rows") or []) if ev else []
        chosen_groups = g.iloc[picked][keys] if picked else g.iloc[0:0][keys]
        if picked:
            members = adf.merge(chosen_groups, on=keys, how="inner")
            selected_ids = [int(x) for x in members["id"]]
            table(members, name="alerts_selected_groups", key="act_group_members")

    # -------------------------------------------------------------- bulk acknowledgement
    st.subheader("Acknowledge")
    open_unacked = [int(r["id"]) for r in rows if not r["acknowledged"]]
    sel_unacked = [i for i in selected_ids if i in set(open_unacked)]
    scope = st.radio("Which alerts", ["selected", "all"], horizontal=True, key="ack_scope",
                     format_func={"selected": f"the {len(sel_unacked):,} ticked (unacknowledged)",
                                  "all": f"all {len(open_unacked):,} unacknowledged alerts matching the filters"}.get)
    targets = sel_unacked if scope == "selected" else open_unacked
    ss = st.session_state
    have_token = bool(ss.get("admin_token_ok"))

    def _acknowledge(ids: list[int]) -> None:
        token = ss.get("admin_token", "") if ss.get("admin_token_ok") else ss.get("ack_token", "")
        ss["ack_token"] = ""
        who = (ss.get("ack_by") or "").strip()
        note = (ss.get("ack_note") or "").strip() or None
        if not ids:
            ss["ack_result"] = ("error", "Nothing to acknowledge: tick alerts (or groups) first.")
        elif not who:
            ss["ack_result"] = ("error", "Say who acknowledges (your name).")
        elif not data.admin_token_ok(token):
            ss["admin_token_ok"], ss["admin_token"] = False, ""
            ss["ack_result"] = ("error", "Invalid admin token: nothing was acknowledged.")
        else:
            # Kept for this browser session only (server-side session state; never in the URL or a cookie).
            ss["admin_token"], ss["admin_token_ok"] = token, True
            try:
                out = data.acknowledge_many(url, ids, who, note)
            except Exception as exc:  # noqa: BLE001 - every failure is a message
                ss["ack_result"] = ("error", f"Could not acknowledge: {md_escape(friendly_error(exc))}")
            else:
                n_new = sum(not o["already_acknowledged"] for o in out)
                ss["ack_result"] = ("success", (f"{n_new:,} alert{'s' if n_new != 1 else ''} acknowledged by "
                                               f"{md_escape(who)}."))

    with st.form("ack_form", clear_on_submit=False):
        a1, a2 = st.columns(2)
        a1.text_input("Your name", key="ack_by", max_chars=100)
        a2.text_input("Note (optional)", key="ack_note", max_chars=500)
        if not have_token:
            st.text_input("Admin token", type="password", key="ack_token",
                          help="EVAL360_ADMIN_TOKEN, the same rule as POST /api/alerts/{id}/acknowledge. Kept for "
                               "this browser session after the first success (never in the URL).")
        st.form_submit_button(f"Acknowledge {len(targets):,} alert{'s' if len(targets) != 1 else ''}",
                              type="primary", on_click=_acknowledge, args=(targets,))
    if have_token:
        st.caption("Admin token: remembered for this session.")
        if st.button("Forget the admin token", key="ack_forget"):
            ss["admin_token"], ss["admin_token_ok"] = "", False
            st.rerun()
    result = ss.pop("ack_result", None)
    if result:
        (st.success if result[0] == "success" else st.error)(result[1])

# ------------------------------------------------------------------ feed
if view == "feed":
    e1, e2, e3 = st.columns(3)
    feed_model = select("Model", [None] + models, param="feed_model", key="act_feed_model", container=e1,
                        format_func=lambda s: "all models" if s is None else s)
    etypes = [None, "eval_result", "examples", "regression", "improvement", "new_best", "promotion", "alert",
              "acknowledgement", "admin"]
    event_type = select("Event type", etypes, param="event", key="act_event", container=e2,
                        format_func=lambda s: "all events" if s is None else s)
    since, window_qp = window_picker(e3, "feed")
    head = load(data.activity, url, feed_model, event_type, 1, 0, since, what="the activity feed")
    total = head["total"]
    if not total:
        sync_qp(feed_model=feed_model, event=event_type, **window_qp)
        empty("No activity in this window. Every ingest, example upload, alert, acknowledgement and admin change "
              "is recorded here; widen the window, or load the demo with `eval360 demo-data`.")
        st.stop()
    offset, page = pager(total, FEED_PAGE, "feed_page")
    feed = load(data.activity, url, feed_model, event_type, FEED_PAGE, offset, since, what="the activity feed")
    st.caption(f"{total:,} events; rows {offset + 1:,}–{offset + len(feed['events']):,}, newest first.")
    fdf = pd.DataFrame(feed["events"])[["id", "created_at", "event_type", "model_id", "checkpoint_id",
                                        "dataset_name", "actor", "summary"]]
    table(fdf, name="activity", key="act_feed", column_config={"summary": st.column_config.TextColumn(width="large")})
    sync_qp(feed_model=feed_model, event=event_type, page=None if page == 1 else page, **window_qp)
