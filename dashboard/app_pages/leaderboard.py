"""Leaderboard: models ranked per dataset or per suite, with 95% intervals and tie groups."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import EMPTY_DB_HELP, chart, empty, load, md_escape, qp_int, select, sync_qp, table

url = data.database_url()
st.title("Leaderboard")
st.caption("A model ties with its group's leader unless significantly worse (two-sided p < 0.05, paired on "
           "examples when both runs have them). Rank = the group leader's position.")

flt = load(data.filters, url, what="the filters")
if not flt["datasets"]:
    empty(EMPTY_DB_HELP)
    st.stop()
suites = load(data.list_suites, url, what="suites")

c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
scope = select("Per", ["dataset", "suite"], param="scope", key="lb_scope", container=c1)
if scope == "suite" and not suites:
    c2.warning("No suite defined yet (`POST /api/admin/suites`); showing one dataset.")
    scope = "dataset"
if scope == "dataset":
    target = select("Dataset", list(flt["datasets"]), param="dataset", key="lb_dataset", container=c2)
else:
    target = select("Suite", [s["suite_id"] for s in suites], param="suite", key="lb_suite", container=c2)
model_type = select("Model type", [None] + list(flt["model_types"]), param="type", key="lb_type", container=c3,
                    format_func=lambda s: "all types" if s is None else s)
score = select("Score", list(data.SCORE_CHOICES), param="score", key="lb_score", container=c4)
step = None
if score == "step":
    step = int(st.number_input("Step", min_value=0, value=qp_int("step", 0) or 0, step=100, key="lb_step"))
sync_qp(scope=scope, dataset=target if scope == "dataset" else None, suite=target if scope == "suite" else None,
        type=model_type, score=score, step=step)

COLS = ["rank", "tie_group", "is_tied", "model_id", "display_name", "model_type", "score", "ci_lower", "ci_upper",
        "n", "interval_method", "metric_name", "training_step", "checkpoint_id", "p_vs_group_leader"]


def board_df(dataset: str) -> pd.DataFrame | None:
    lb = load(data.leaderboard, url, dataset, score, step, model_type, what=f"the leaderboard of {dataset}")
    if lb is None:
        return None
    df = pd.DataFrame(lb["leaderboard"])
    if df.empty:
        return df
    for c in COLS:
        if c not in df.columns:
            df[c] = None
    df = df[COLS].copy()
    df.insert(0, "dataset_name", dataset)
    return df


if score == "step":
    near = load(data.nearest_steps, url, step, what="the steps")
    if step not in near:
        st.warning(f"No training checkpoint is at step {step:,}, so only baselines can be shown. Steps with "
                   "checkpoints nearest to it: " + ", ".join(f"{s:,}" for s in near[:5]) + ".",
                   icon=":material/warning:")

if scope == "dataset":
    df = board_df(target)
    if df is None or df.empty:
        empty(f"No model has a score on {md_escape(target)} with these filters. Try another score choice or model type.")
        st.stop()
    df["label"] = df["rank"].astype(str) + ". " + df["model_id"]
    df["tie group"] = "group " + df["tie_group"].astype(str)
    chart("interval_dots", df[["label", "score", "ci_lower", "ci_upper", "tie group"]], y="label", x="score",
          color="tie group", sort=df["label"].tolist(), x_title=f"{df['metric_name'].iloc[0]} (95% interval)")
    table(df.drop(columns=["label", "tie group"]), name=f"leaderboard_{target}", key="lb_table", column_config={
        "score": st.column_config.NumberColumn(format="%.4f"),
        "ci_lower": st.column_config.NumberColumn("95% low", format="%.4f"),
        "ci_upper": st.column_config.NumberColumn("95% high", format="%.4f"),
        "p_vs_group_leader": st.column_config.NumberColumn(format="%.3g")})
else:
    s = load(data.suite, url, target, what="the suite")
    names = list(s["dataset_names"]) if s else []
    frames = [f for f in (board_df(d) for d in names) if f is not None and not f.empty]
    if not frames:
        empty(f"No model has a score on the datasets of suite {md_escape(target)} "
              f"({md_escape(', '.join(names) or 'none')}).")
        st.stop()
    long = pd.concat(frames, ignore_index=True)
    summary = (long.assign(top=long["tie_group"] == 1)
               .groupby(["model_id", "display_name", "model_type"], as_index=False)
               .agg(datasets=("dataset_name", "nunique"), in_top_group=("top", "sum"),
                    mean_rank=("rank", "mean"), best_rank=("rank", "min")))
    summary["of_suite"] = len(names)
    summary = summary.sort_values(["in_top_group", "mean_rank"], ascending=[False, True])
    st.subheader(f"Suite {md_escape(target)}: {len(names)} datasets")
    st.caption("in_top_group: datasets where the model is statistically tied with the best. Mean rank is over "
               "the datasets the model has (see `datasets`), so compare models with equal coverage.")
    table(summary, name=f"suite_{target}_summary", key="lb_suite_summary")
    st.subheader("Per dataset")
    table(long, name=f"suite_{target}_leaderboards", key="lb_suite_long", column_config={
        "score": st.column_config.NumberColumn(format="%.4f"),
        "p_vs_group_leader": st.column_config.NumberColumn(format="%.3g")})
