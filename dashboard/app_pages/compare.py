"""Compare & diff: several models side by side; two checkpoints diffed per dataset with the flipped examples."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import (
    chart,
    empty,
    fnum,
    load,
    md_escape,
    models_or_stop,
    qp,
    qp_bool,
    qp_list,
    select,
    sync_qp,
    table,
)

url = data.database_url()
st.title("Compare & diff")

models = models_or_stop(data.list_models, url)
model_ids = [m["model_id"] for m in models]
flt = load(data.filters, url, what="the filters")

tab_cmp, tab_diff = st.tabs(["Models side by side", "Diff two checkpoints"])

# ------------------------------------------------------------------ side by side
with tab_cmp:
    default = [m for m in qp_list("models") if m in model_ids] or \
        [m["model_id"] for m in models if m["model_type"] == "training"][:3] or model_ids[:3]
    chosen = st.multiselect("Models", model_ids, default=default, key="cmp_models")
    c1, c2 = st.columns([2, 1])
    dataset = select("Dataset", list(flt["datasets"]), param="dataset", key="cmp_dataset", container=c1)
    common = c2.toggle("Common datasets / steps only", value=qp_bool("common"), key="cmp_common",
                       help="Curves: only steps every training model has. Profile: only datasets all chosen "
                            "models have, so category means compare like with like.")
    if not chosen:
        st.info("Choose at least one model.")
    else:
        cur = load(data.compare_curves, url, tuple(chosen), dataset, common, what="the curves")
        pts = pd.DataFrame([{"model": m["model_id"], **p} for m in cur["models"] for p in m["data_points"]])
        if pts.empty:
            empty(f"None of the chosen models has a score on {md_escape(dataset)}.")
        else:
            chart("curves", pts[["model", "training_step", "metric_value", "ci_lower", "ci_upper", "n"]],
                  title=f"{dataset}: score by step (95% band); baselines dashed")
            table(pts, name=f"compare_{dataset}", key="cmp_points")
        prof = load(data.category_profile, url, tuple(chosen), common, what="the profiles")
        prow = [{"model": p["model_id"], "category": c, "mean": a["mean"], "ci_lower": a["ci_lower"],
                 "ci_upper": a["ci_upper"], "stderr": a["stderr"], "n_datasets": a["n_datasets"],
                 "datasets": ", ".join(a["datasets"])}
                for p in prof["profiles"] for c, a in p["categories"].items()]
        if prow:
            st.subheader("Capability profile")
            pdf = pd.DataFrame(prow)
            a, b = st.columns([1, 1])
            chart("radar", pdf[["model", "category", "mean", "ci_lower", "ci_upper"]],
                  title="mean latest score by category", width="content", container=a)
            wide = pdf.pivot_table(index="category", columns="model", values="mean").reset_index()
            with b:
                table(wide, name="profile_wide", key="cmp_profile_wide")
            table(pdf, name="profile", key="cmp_profile")
    sync_qp(models=chosen, dataset=dataset, common=common)

# ------------------------------------------------------------------ diff
with tab_diff:
    training = [m for m in models if m["n_checkpoints"]]

    def checkpoints(model_id: str) -> list[dict]:
        info = load(data.get_model, url, model_id, what="checkpoints")
        return info["checkpoints"] if info else []

    def pick(side: str, default_model: str, default_pos: int) -> str | None:
        cp_param = qp(side)
        m_default = default_model
        if cp_param:
            for m in model_ids:
                if cp_param.startswith(m + "__") or cp_param == m:
                    m_default = m
        a, b = st.columns(2)
        m = a.selectbox(f"Model {side.upper()}", model_ids, index=model_ids.index(m_default), key=f"diff_{side}_model")
        cps = checkpoints(m)
        all_cps = [c["checkpoint_id"] for c in cps]
        if not all_cps:
            b.info("No checkpoint.")
            return None
        idx = all_cps.index(cp_param) if cp_param in all_cps else max(0, len(all_cps) + default_pos)
        idx = min(idx, len(all_cps) - 1)
        labels = {c["checkpoint_id"]: (f"step {c['training_step']:,}" if c["training_step"] is not None
                                       else "baseline") + f" ({c['n_completed']} datasets)" for c in cps}
        return b.selectbox(f"Checkpoint {side.upper()}", all_cps, index=idx, key=f"diff_{side}_cp",
                           format_func=lambda c: labels.get(c, c))

    first = next((m["model_id"] for m in models if m["model_type"] == "training"), model_ids[0])
    cp_a = pick("a", first, -2)
    cp_b = pick("b", first, -1)
    sync_qp(a=cp_a, b=cp_b)
    if cp_a and cp_b:
        d = load(data.diff_checkpoints, url, cp_a, cp_b, what="the diff")
        if d is None:
            st.error("One of the checkpoints no longer exists.")
            st.stop()
        s = d["summary"]
        k1, k2, k3, k4, k5 = st.columns(5)
        k1.metric("Datasets", s["total"])
        k2.metric("Improved", s["improved"])
        k3.metric("Regressed", s["regressed"])
        k4.metric("Unchanged", s["unchanged"])
        k5.metric("Missing on one side", s["missing"])
        st.caption(f"b − a per dataset; significance from q-values ({d['correction']}, α = {d['alpha']}); paired "
                   "McNemar when both runs have example rows.")
        ddf = pd.DataFrame(d["datasets"])
        for c in ("delta_ci_lower", "delta_ci_upper", "n_paired", "n_right_to_wrong", "n_wrong_to_right", "test",
                  "p_value"):
            if c not in ddf.columns:
                ddf[c] = None
        plot = ddf[ddf["delta"].notna()][["dataset_name", "delta", "delta_ci_lower", "delta_ci_upper", "q_value",
                                          "test", "significance"]]
        if not plot.empty:
            chart("diff", plot, title=f"{cp_b} − {cp_a}")
        cols = ["dataset_name", "score_a", "score_b", "delta", "delta_ci_lower", "delta_ci_upper", "n_a", "n_b",
                "test", "p_value", "q_value", "significance", "direction", "n_paired", "n_wrong_to_right",
                "n_right_to_wrong"]
        table(ddf[cols], name=f"diff_{cp_a}_vs_{cp_b}", key="diff_table", column_config={
            "delta": st.column_config.NumberColumn(format="%+.4f"),
            "p_value": st.column_config.NumberColumn(format="%.3g"),
            "q_value": st.column_config.NumberColumn(format="%.3g")})
        flips = [{"dataset_name": x["dataset_name"], **f} for x in d["datasets"] for f in (x.get("flips") or [])]
        st.subheader("Flipped examples")
        if not flips:
            st.info("No flipped example: flips need per-example rows on both runs (`POST /api/ingest/examples`, "
                    "or `backfill.py --with-examples`).")
        else:
            fdf = pd.DataFrame(flips)
            ds_with = sorted(fdf["dataset_name"].unique())
            fd = select("Dataset", ["(all)"] + ds_with, param="flips", key="diff_flips_ds")
            kind = st.radio("Flip", ["both", "right_to_wrong", "wrong_to_right"], horizontal=True,
                            key="diff_flip_kind")
            shown = fdf if fd == "(all)" else fdf[fdf["dataset_name"] == fd]
            if kind != "both":
                shown = shown[shown["flip"] == kind]
            st.caption(f"{len(shown)} flipped examples shown (up to 20 per dataset; counts in the table above: "
                       f"{fnum(int(ddf['n_right_to_wrong'].fillna(0).sum()))} right→wrong, "
                       f"{fnum(int(ddf['n_wrong_to_right'].fillna(0).sum()))} wrong→right).")
            table(shown, name="flipped_examples", key="diff_flips")
            sync_qp(flips=None if fd == "(all)" else fd)
