"""Items across training: slice trends (small multiples with intervals), item histories with stability
labels and links to the outputs where an item changed, and the dataset's suspect labels."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import empty, fnum, load, md_escape, qp, sync_qp, table
from ingest_api.read import items as I

TTL = 30


@st.cache_data(ttl=TTL, show_spinner=False)
def _pairs(url: str) -> list[dict]:
    with data.connection(url) as conn:
        return conn.execute("select model_id, model_type, dataset_name, count(*) as n_runs "
                            "from v_example_run_outcomes group by 1, 2, 3 order by 1, 3").fetchall()


@st.cache_data(ttl=TTL, show_spinner=False)
def _trends(url: str, model_id: str, dataset: str, dimension: str) -> dict:
    with data.connection(url) as conn:
        return I.slice_trends(conn, model_id, dataset, dimension)


@st.cache_data(ttl=TTL, show_spinner=False)
def _items(url: str, model_id: str, dataset: str, label: str | None, sort: str) -> dict:
    with data.connection(url) as conn:
        return I.model_items(conn, model_id, dataset, label=label, limit=20_000, sort=sort)  # every item: the CSV


@st.cache_data(ttl=TTL, show_spinner=False)
def _dataset_items(url: str, dataset: str, suspect_only: bool) -> dict:
    with data.connection(url) as conn:
        return I.dataset_items(conn, dataset, suspect_only=suspect_only, limit=20_000, sort="pass_rate")


url = data.database_url()
st.title("Items across training")
pairs = load(_pairs, url, what="runs with example rows")
if not pairs:
    empty("No completed eval run has per-example rows yet. Send them with `POST /api/ingest/examples`, "
          "or load the demo with `eval360 demo-data`.")
    st.stop()

models = sorted({p["model_id"] for p in pairs}, key=lambda m: (m.startswith("baseline"), m))
c1, c2, c3 = st.columns(3)
want_m = qp("model")
model_id = c1.selectbox("Model", models, index=models.index(want_m) if want_m in models else 0, key="it_model")
ds_opts = sorted({p["dataset_name"] for p in pairs if p["model_id"] == model_id})
want_d = qp("dataset")
dataset = c2.selectbox("Dataset", ds_opts, index=ds_opts.index(want_d) if want_d in ds_opts else 0,
                       key="it_dataset")
dims = ["topic", "difficulty", "subtask"]
dimension = c3.selectbox("Slice by", dims, index=dims.index(qp("dimension")) if qp("dimension") in dims else 0,
                         key="it_dim")
sync_qp(model=model_id, dataset=dataset, dimension=None if dimension == "topic" else dimension)

# ------------------------------------------------------------------ slice trends
st.subheader("Slice trends")
tr = load(_trends, url, model_id, dataset, dimension, what="slice trends")
pts = pd.DataFrame(tr["points"])
if pts.empty or tr["n_checkpoints"] == 0:
    empty("No checkpoint of this model has example rows on this dataset.")
else:
    st.caption(f"{tr['n_checkpoints']} checkpoints · accuracy per {dimension} with its 95% Wilson interval "
               "(band); '(all)' is the whole dataset. Test: " + md_escape(tr["test"]) + ".")
    pts["step"] = pts["training_step"].fillna(0)
    base = alt.Chart(pts).encode(x=alt.X("step:Q", title="training step"))
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("ci_lower:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
                                               y2="ci_upper:Q")
    line = base.mark_line(point=len(pts) < 400).encode(
        y="accuracy:Q", tooltip=["slice", "training_step", "n", "correct", alt.Tooltip("accuracy:Q", format=".3f"),
                                 alt.Tooltip("ci_lower:Q", format=".3f"), alt.Tooltip("ci_upper:Q", format=".3f")])
    chart = alt.layer(band, line).properties(width=220, height=140).facet(
        facet=alt.Facet("slice:N", title=None), columns=4)
    st.altair_chart(chart, width="content")
    tests = pd.DataFrame(tr["tests"])
    tests["slope gap / 1k steps [95% CI]"] = [
        "—" if r.slope_gap is None or pd.isna(r.slope_gap) else
        f"{r.slope_gap:+.4f} [{r.slope_gap_ci_lower:+.4f}, {r.slope_gap_ci_upper:+.4f}]" for r in tests.itertuples()]
    table(tests[["slice", "verdict", "n_checkpoints", "slope gap / 1k steps [95% CI]", "slope_slice", "slope_rest",
                 "p_value", "q_value"]], name=f"slice-tests-{model_id}-{dataset}-{dimension}", key="it_tests")
    with st.expander("Every point (checkpoint × slice)"):
        table(pts.drop(columns=["step"]), name=f"slice-trends-{model_id}-{dataset}-{dimension}", key="it_points")

# ------------------------------------------------------------------ item histories
st.subheader("Item histories")
f1, f2 = st.columns(2)
labels = ["all", *I.LABELS]
label = f1.selectbox("Label", labels, index=labels.index(qp("label")) if qp("label") in labels else 0,
                     key="it_label")
sorts = ["example_idx", "flips", "pass_rate"]
sort = f2.selectbox("Order by", sorts, index=sorts.index(qp("sort")) if qp("sort") in sorts else 0, key="it_sort")
sync_qp(label=None if label == "all" else label, sort=None if sort == "example_idx" else sort)
hist = load(_items, url, model_id, dataset, None if label == "all" else label, sort, what="item histories")
counts = hist["label_counts"]
st.caption(" · ".join(f"{k}: {v}" for k, v in counts.items())
           + f" — {hist['n_checkpoints']} checkpoints. learned = wrong then right for good (one flip); forgotten "
             "= right then wrong for good (1→0, or 0→1→0); never / always = the same at every checkpoint; "
             "unstable = anything else (docs/views.md).")
rows = pd.DataFrame([{k: v for k, v in it.items() if k != "changes"} for it in hist["items"]])
if rows.empty:
    empty("No item has this label.")
else:
    if hist["total"] > len(rows):
        st.caption(f"Showing the first {len(rows)} of {hist['total']} items.")
    ev = table(rows, name=f"items-{model_id}-{dataset}", key="it_items", on_select="rerun",
               selection_mode="single-row",
               column_config={"pass_rate": st.column_config.NumberColumn(format="%.2f")})
    sel = ev.selection.rows if ev is not None and hasattr(ev, "selection") else []
    pick = hist["items"][sel[0]] if sel else hist["items"][0]
    st.markdown(f"**Example {pick['example_idx']}** — {md_escape(pick['label'])}, "
                f"solved at {pick['n_solved']} of {pick['n_checkpoints']} checkpoints, {pick['n_flips']} flips. "
                "Its outputs where it changed:")
    if not pick["changes"]:
        st.caption("Its outcome never changed.")
    for ch in pick["changes"][:40]:
        a, b = st.columns(2)
        a.page_link("app_pages/examples.py", label=f"step {fnum(ch['training_step'])}: became {ch['to']}",
                    icon=":material/list_alt:", query_params={"run": ch["eval_run_id"],
                                                              "example": str(pick["example_idx"])})
        b.page_link("app_pages/examples.py", label="the checkpoint before", icon=":material/history:",
                    query_params={"run": ch["previous_eval_run_id"], "example": str(pick["example_idx"])})
    changes = pd.DataFrame([{"example_idx": it["example_idx"], **c} for it in hist["items"] for c in it["changes"]])
    with st.expander("Every change of every item shown (CSV)"):
        table(changes, name=f"item-changes-{model_id}-{dataset}", key="it_changes")

# ------------------------------------------------------------------ dataset items
st.subheader(f"{dataset}: items across every model")
sus_only = st.toggle("Only suspect labels", value=qp("suspect") == "1", key="it_sus")
sync_qp(suspect="1" if sus_only else None)
di = load(_dataset_items, url, dataset, sus_only, what="dataset items")
st.caption(f"{di['n_items']} items, {di['n_runs']} runs of {di['n_models']} models ({di['n_strong_runs']} strong), "
           f"{di['n_never_solved']} never solved, {di['n_suspect']} suspect. Rule: " + md_escape(di["rule"]["text"]))
drows = pd.DataFrame(di["items"])
if drows.empty:
    empty("No item to show.")
else:
    drows["models_solved"] = drows["models_solved"].map(", ".join)
    table(drows, name=f"dataset-items-{dataset}", key="it_ds",
          column_config={"pass_rate": st.column_config.NumberColumn(format="%.3f")})
