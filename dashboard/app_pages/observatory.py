"""Observatory (home): models × datasets heatmap with cell status, coverage, and a way into each cell."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, grid
from dashboard.charts import STATUS_MARKS
from dashboard.page_kit import (
    EMPTY_DB_HELP,
    empty,
    load,
    qp,
    qp_int,
    select,
    sync_qp,
    table,
    with_interval,
)

url = data.database_url()
st.title("Observatory")
st.caption("Every model against every benchmark. Click a cell to open the model's curve on that dataset, "
           "or pick one below for its eval run.")

counts = load(data.counts, url, what="the overview")
if not counts["n_models"]:
    empty(EMPTY_DB_HELP)
    st.stop()

flt = load(data.filters, url, what="the filters")
suites = load(data.list_suites, url, what="suites")
datasets_meta = {d["dataset_name"]: d for d in load(data.list_datasets, url, what="datasets")}

c1, c2, c3, c4 = st.columns(4)
suite = select("Suite", [None] + [s["suite_id"] for s in suites], param="suite", key="obs_suite",
               format_func=lambda s: "all datasets" if s is None else s, container=c1)
category = select("Category", [None] + list(flt["categories"]), param="category", key="obs_category",
                  format_func=lambda s: "all categories" if s is None else s, container=c2)
model_type = select("Model type", [None] + list(flt["model_types"]), param="type", key="obs_type",
                    format_func=lambda s: "all types" if s is None else s, container=c3)
owner = select("Owner", [None] + list(flt["owners"]), param="owner", key="obs_owner",
               format_func=lambda s: "all owners" if s is None else s, container=c4)

c5, c6, c7 = st.columns([1, 1, 2])
score = select("Score", list(data.SCORE_CHOICES), param="score", key="obs_score", container=c5,
               format_func={"latest": "latest checkpoint", "best": "best checkpoint (optimistic)",
                            "step": "a given step"}.get,
               help="latest: the highest-step checkpoint with a score. best: the maximum over checkpoints "
                    "(selects noise upwards). step: training checkpoints at one step (baselines always shown).")
step = None
if score == "step":
    step = int(c6.number_input("Step", min_value=0, value=qp_int("step", 0) or 0, step=100, key="obs_step"))
color_modes = {"norm": "score, normalised per dataset", "raw": "raw score", "gap": "gap to a baseline"}
color_mode = select("Colour", list(color_modes), param="color", key="obs_color", format_func=color_modes.get,
                    container=c7)

hm = load(data.heatmap, url, score, step, suite, category, model_type, owner, what="the heatmap")
baseline = None
if color_mode == "gap":
    base_models = [m["model_id"] for m in load(data.list_models, url, "baseline", None, what="baselines")]
    if not base_models:
        st.warning("No baseline model yet: colour by gap needs one (post a result with model_type 'baseline').")
        color_mode = "norm"
    else:
        baseline = select("Baseline", base_models, param="baseline", key="obs_baseline")
sync_qp(suite=suite, category=category, type=model_type, owner=owner, score=score, step=step,
        color=color_mode, baseline=baseline)

models = hm["models"]
datasets = hm["datasets"]
if not models or not datasets:
    empty("No model or dataset matches these filters. Clear a filter (suite, category, type, owner) "
          "to see more." if counts["n_runs"] else EMPTY_DB_HELP)
    st.stop()

rows = []
for m in models:
    for d in datasets:
        c = hm["matrix"][m["model_id"]][d]
        rows.append({"model_id": m["model_id"], "display_name": m["display_name"], "model_type": m["model_type"],
                     "owner": m["owner"], "dataset_name": d,
                     "category": (datasets_meta.get(d) or {}).get("category"),
                     "score": c.get("score"), "ci_lower": c.get("ci_lower"), "ci_upper": c.get("ci_upper"),
                     "n": c.get("n"), "interval_method": c.get("interval_method"), "status": c.get("status"),
                     "checkpoint_id": c.get("checkpoint_id"), "training_step": c.get("training_step"),
                     "metric_name": c.get("metric_name"), "eval_run_id": c.get("eval_run_id")})
df = pd.DataFrame(rows)
df["score"] = pd.to_numeric(df["score"], errors="coerce")
hib = df["dataset_name"].map(lambda d: bool((datasets_meta.get(d) or {}).get("is_higher_better", True)))
sign = hib.map({True: 1.0, False: -1.0})

if color_mode == "raw":
    df["colour"] = df["score"]
    colour_title = "score"
elif color_mode == "gap":
    bh = load(data.heatmap, url, score, step, suite, category, "baseline", None, what="baseline scores")
    bscore = {d: (bh["matrix"].get(baseline) or {}).get(d, {}).get("score") for d in datasets}
    df["baseline_score"] = pd.to_numeric(df["dataset_name"].map(bscore), errors="coerce")
    df["colour"] = (df["score"] - df["baseline_score"]) * sign
    colour_title = f"gap to {baseline}"
else:
    grp = df.groupby("dataset_name")["score"]
    lo, hi = grp.transform("min"), grp.transform("max")
    span = (hi - lo).where(hi > lo)
    norm = (df["score"] - lo) / span
    df["colour"] = norm.where(sign > 0, 1 - norm).fillna(0.5).where(df["score"].notna())
    colour_title = "normalised (1 = best shown)"

df["category"] = df["category"].fillna("uncategorised")
n_cats = df["category"].nunique()
sel_model, sel_ds = qp("model"), qp("dataset")
st.caption(f"{len(datasets)} datasets in {n_cats} categor{'y' if n_cats == 1 else 'ies'}, grouped; the table "
           "scrolls sideways when they do not fit. Hover a cell for its 95% interval and n; click it to open "
           "the model's curve on that dataset.")
theme = getattr(getattr(st.context, "theme", None), "type", None)
st.html(grid.legend_html(colour_title, diverging=color_mode == "gap",
                         low="worse" if color_mode == "gap" else "low",
                         high="better" if color_mode == "gap" else "high")
        + grid.heatmap_html(df, models=[m["model_id"] for m in models], datasets=datasets,
                            categories=dict(zip(df["dataset_name"], df["category"])),
                            color_field="colour", color_title=colour_title, diverging=color_mode == "gap",
                            marks=STATUS_MARKS, picked=(sel_model, sel_ds) if sel_model and sel_ds else None,
                            background="#0e1117" if theme == "dark" else "#ffffff"))
st.caption("Cell marks: " + " · ".join(f"{v} {k}" for k, v in STATUS_MARKS.items())
           + ". Values are the chosen score.")

cell_box = st.container(border=True)
with cell_box:
    st.markdown("**Selected cell**")
    a, b = st.columns(2)
    model_ids = [m["model_id"] for m in models]
    m_kw: dict = {"index": model_ids.index(sel_model) if sel_model in model_ids else 0}
    d_kw: dict = {"index": datasets.index(sel_ds) if sel_ds in datasets else 0}
    cm = a.selectbox("Model", model_ids, key="obs_cell_model", **m_kw)
    cd = b.selectbox("Dataset", datasets, key="obs_cell_dataset", **d_kw)
    sync_qp(model=cm, dataset=cd)
    cell = df[(df["model_id"] == cm) & (df["dataset_name"] == cd)].iloc[0]
    st.text(f"{cm} on {cd}: " + (with_interval(cell["score"], cell["ci_lower"], cell["ci_upper"], cell["n"])
                                 if pd.notna(cell["score"]) else "no score")
            + f"  · status {cell['status']}"
            + (f"  · step {int(cell['training_step'])}" if pd.notna(cell["training_step"]) else "")
            + (f"  · {cell['interval_method']} interval" if cell["interval_method"] else ""))
    l1, l2 = st.columns(2)
    l1.page_link("app_pages/model.py", label="Open model detail", icon=":material/timeline:",
                 query_params={"model": cm, "dataset": cd})
    has_examples = bool(cell["eval_run_id"]) and cell["eval_run_id"] in {
        r["eval_run_id"] for r in load(data.runs_with_examples, url, cm, cd, what="eval runs with examples")}
    if has_examples:
        l2.page_link("app_pages/examples.py", label="Open this eval run's examples", icon=":material/list_alt:",
                     query_params={"run": cell["eval_run_id"]})
    else:
        l2.text("This eval run has no per-example rows.")

st.subheader("Coverage")
cov = pd.DataFrame([{"model_id": m["model_id"], "display_name": m["display_name"], "model_type": m["model_type"],
                     "owner": m["owner"], "evaluated": hm["coverage"][m["model_id"]]["evaluated"],
                     "total": hm["coverage"][m["model_id"]]["total"],
                     "missing": ", ".join(hm["coverage"][m["model_id"]]["missing"])} for m in models])
cov["coverage"] = cov["evaluated"] / cov["total"].where(cov["total"] > 0)
# Completeness in words and a shape (not a colour alone); the bar is one neutral colour, never red at 100%.
cov.insert(4, "completeness", pd.cut(cov["coverage"].fillna(0), [-0.01, 0.5, 0.9, 0.9999, 1.0],
                                     labels=["○ under half", "◔ partial", "◕ nearly", "● complete"]).astype(str))
cov = cov.sort_values(["coverage", "model_id"], ascending=[True, True])
table(cov, name="coverage", key="obs_cov", column_config={
    "coverage": st.column_config.ProgressColumn("coverage", min_value=0.0, max_value=1.0, format="percent",
                                                color="blue")})

with st.expander("Heatmap as a table"):
    table(df, name="heatmap", key="obs_table")
