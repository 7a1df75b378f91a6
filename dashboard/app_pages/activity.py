"""Activity & alerts: open alerts (acknowledge with the admin token), and the activity feed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import empty, friendly_error, load, md_escape, qp, select, sync_qp, table

url = data.database_url()
st.title("Activity & alerts")

models = [m["model_id"] for m in load(data.list_models, url, what="models")]
tab_alerts, tab_feed = st.tabs(["Alerts", "Activity feed"])

with tab_alerts:
    c1, c2, c3, c4 = st.columns(4)
    status = select("Status", ["open", "resolved", "all"], param="status", key="act_status", container=c1)
    severity = select("Severity", [None, "critical", "warning", "info"], param="severity", key="act_severity",
                      container=c2, format_func=lambda s: "all severities" if s is None else s)
    alert_type = select("Type", [None, "regression", "improvement", "new_best", "promotion_ready",
                                 "missing_evaluation"], param="alert_type", key="act_type", container=c3,
                        format_func=lambda s: "all types" if s is None else s)
    model = select("Model", [None] + models, param="model", key="act_model", container=c4,
                   format_func=lambda s: "all models" if s is None else s)
    unacked = st.toggle("Only unacknowledged", value=qp("unacked") == "1", key="act_unacked")
    sync_qp(status=status, severity=severity, alert_type=alert_type, model=model, unacked=unacked or None)
    res = load(data.alerts, url, model, status, severity, alert_type, False if unacked else None,
               what="the alerts")
    rows = res["alerts"]
    st.caption(f"{res['total']} alerts match" + (f" (showing {len(rows)})" if res["total"] > len(rows) else ""))
    if not rows:
        empty("No alert matches. Alerts appear when a checkpoint is significantly worse or better than the "
              "previous one on a dataset, when a checkpoint passes its promotion rules, or when a suite "
              "dataset is missing between two evaluated checkpoints.")
    else:
        adf = pd.DataFrame(rows)
        # Critical first, then warnings, then the rest; newest first within a severity.
        adf = adf.assign(_sev=adf["severity"].map({"critical": 0, "warning": 1}).fillna(2)) \
            .sort_values(["_sev", "created_at"], ascending=[True, False], kind="stable")
        cols = ["id", "created_at", "severity", "alert_type", "model_id", "training_step", "dataset_name", "message",
                "status", "acknowledged", "acknowledged_by", "acknowledged_at", "checkpoint_id"]
        adf = adf[[c for c in cols if c in adf.columns]]
        table(adf, name="alerts", key="act_alerts")
        open_unacked = [r for r in rows if not r["acknowledged"]]
        st.subheader("Acknowledge an alert")
        if not open_unacked:
            st.caption("Every alert shown is already acknowledged.")
        else:
            labels = {r["id"]: f"#{r['id']} {r['severity']} {r['alert_type']} · {r['model_id']} · "
                               f"{r['dataset_name'] or '—'}" for r in open_unacked}
            # The token is asked for each time. The submit callback reads it, clears the widget's state and
            # keeps only the outcome, so the token is never stored in the page or the session.
            def _acknowledge() -> None:
                ss = st.session_state
                token, ss["ack_token"] = ss.get("ack_token", ""), ""
                who = (ss.get("ack_by") or "").strip()
                note = (ss.get("ack_note") or "").strip() or None
                if not who:
                    ss["ack_result"] = ("error", "Say who acknowledges (your name).")
                elif not data.admin_token_ok(token):
                    ss["ack_result"] = ("error", "Invalid admin token: the alert was not acknowledged.")
                else:
                    try:
                        out = data.acknowledge(url, int(ss["ack_alert"]), who, note)
                    except Exception as exc:  # noqa: BLE001 - every failure is a message
                        ss["ack_result"] = ("error", f"Could not acknowledge: {md_escape(friendly_error(exc))}")
                    else:
                        ss["ack_result"] = ("success",
                                            f"Alert #{out['alert_id']} acknowledged by {md_escape(out['acknowledged_by'])}.")

            with st.form("ack_form", clear_on_submit=True):
                st.selectbox("Alert", list(labels), format_func=labels.get, key="ack_alert")
                st.text_input("Your name", key="ack_by", max_chars=100)
                st.text_input("Note (optional)", key="ack_note", max_chars=500)
                st.text_input("Admin token", type="password", key="ack_token",
                              help="EVAL360_ADMIN_TOKEN: checked once for this acknowledgement, never stored.")
                st.form_submit_button("Acknowledge", type="primary", on_click=_acknowledge)
        result = st.session_state.pop("ack_result", None)
        if result:
            (st.success if result[0] == "success" else st.error)(result[1])

with tab_feed:
    e1, e2 = st.columns(2)
    feed_model = select("Model", [None] + models, param="feed_model", key="act_feed_model", container=e1,
                        format_func=lambda s: "all models" if s is None else s)
    etypes = [None, "eval_result", "examples", "regression", "improvement", "new_best", "promotion", "alert",
              "acknowledgement", "admin"]
    event_type = select("Event type", etypes, param="event", key="act_event", container=e2,
                        format_func=lambda s: "all events" if s is None else s)
    sync_qp(feed_model=feed_model, event=event_type)
    feed = load(data.activity, url, feed_model, event_type, 200, what="the activity feed")
    if not feed["events"]:
        empty("No activity yet. Every ingest, example upload, alert, acknowledgement and admin change is "
              "recorded here; load the demo with `eval360 demo-data` to see some.")
    else:
        st.caption(f"{feed['total']} events" + (" (latest 200 shown)" if feed["total"] > 200 else ""))
        fdf = pd.DataFrame(feed["events"])[["id", "created_at", "event_type", "model_id", "checkpoint_id",
                                            "dataset_name", "actor", "summary"]]
        table(fdf, name="activity", key="act_feed")
