"""Compare & diff: several models side by side; two checkpoints diffed per dataset with the flipped examples."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import (
    chart,
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
    unknown_in_link,
    url_tabs,
    with_smoothing,
)

url = data.database_url()
st.title("Compare & diff")

models = models_or_stop(data.list_models, url)
model_ids = [m["model_id"] for m in models]
flt = load(data.filters, url, what="the filters")

# A link with two checkpoints (?a=…&b=…) and no view opens the diff.
view = url_tabs({"side": "Models side by side", "diff": "Diff two checkpoints"}, param="view", key="cmp_view",
                default="diff" if qp("a") and qp("b") else "side")

# ------------------------------------------------------------------ side by side
if view == "side":
    unknown = [m for m in qp_list("models") if m not in model_ids]
    if unknown:
        st.warning("Unknown model in this link (left out): " + ", ".join(md_escape(m) for m in unknown))
    default = [m for m in qp_list("models") if m in model_ids] or \
        [m["model_id"] for m in models if m["model_type"] == "training"][:3] or model_ids[:3]
    chosen = st.multiselect("Models", model_ids, default=default, key="cmp_models")
    c1, c2, c3 = st.columns([3, 1, 1])
    all_ds = list(flt["datasets"])
    unknown_ds = [d for d in qp_list("datasets") + qp_list("dataset") if d not in all_ds]
    if unknown_ds:
        st.warning("Unknown dataset in this link (left out): " + ", ".join(md_escape(d) for d in unknown_ds))
    want_ds = [d for d in qp_list("datasets") + qp_list("dataset") if d in all_ds]
    ds_chosen = c1.multiselect("Datasets (one chart each, every chosen model on it)", all_ds,
                               default=list(dict.fromkeys(want_ds)) or all_ds[:1], key="cmp_datasets")
    dataset = ds_chosen[0] if ds_chosen else None
    common = c2.toggle("Common datasets / steps only", value=qp_bool("common"), key="cmp_common",
                       help="Curves: only steps every training model has. Profile: only datasets all chosen "
                            "models have, so category means compare like with like.")
    try:
        smooth = min(max(float(qp("smooth") or 0), 0.0), 0.99)
    except ValueError:
        smooth = 0.0
    smooth = c3.number_input("EMA", min_value=0.0, max_value=0.99, value=smooth, step=0.1, key="cmp_smooth",
                             help="Exponential moving average weight w (0 = off), bias-corrected; raw points "
                                  "and 95% bands stay drawn.")
    if not chosen:
        st.info("Choose at least one model.")
    elif not ds_chosen:
        st.info("Choose at least one dataset.")
    else:
        grid = st.columns(1 if len(ds_chosen) == 1 else 2)
        all_pts = []
        for i, ds in enumerate(ds_chosen):
            cur = load(data.compare_curves, url, tuple(chosen), ds, common, what="the curves")
            pts = pd.DataFrame([{"series": m["model_id"], **p} for m in cur["models"] for p in m["data_points"]])
            if pts.empty:
                grid[i % len(grid)].info(f"None of the chosen models has a score on {md_escape(ds)}.")
                continue
            all_pts.append(pts.assign(dataset=ds))
            train = pts[pts["training_step"].notna()]
            base = pts[pts["training_step"].isna()].rename(columns={"metric_value": "value"})
            base = base.assign(name=base["series"])[["series", "name", "value"]]
            if train.empty:
                grid[i % len(grid)].info(f"Only baselines have {md_escape(ds)}: no curve to draw.")
                continue
            train = with_smoothing(train, smooth)
            chart("multi_curves", train[["series", "training_step", "metric_value", "ci_lower", "ci_upper", "n",
                                         "smooth"]], base, None, series_title="model", smoothed=smooth > 0,
                  title=ds, height=300 if len(ds_chosen) > 1 else 360, container=grid[i % len(grid)])
        st.caption("Hover: every model at the nearest step. Scroll to zoom, drag to pan, double-click to reset; "
                   "click a legend entry to show only that model (shift-click for more). Band: 95% interval; "
                   "dashed: baselines." + (f" Bold: EMA, w = {smooth:g}; faint: raw." if smooth else ""))
        if all_pts:
            table(pd.concat(all_pts, ignore_index=True).rename(columns={"series": "model"}),
                  name="compare_points", key="cmp_points")
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
    sync_qp(models=chosen, datasets=ds_chosen, dataset=None, common=common, smooth=smooth or None)

# ------------------------------------------------------------------ diff
if view == "diff":
    training = [m for m in models if m["n_checkpoints"]]

    def checkpoints(model_id: str) -> list[dict]:
        info = load(data.get_model, url, model_id, what="checkpoints")
        return info["checkpoints"] if info else []

    def pick(side: str, default_model: str, default_pos: int) -> str | None:
        cp_param = qp(side)
        m_default = default_model
        found = load(data.checkpoint_info, url, cp_param, what="the checkpoint") if cp_param else None
        a, b = st.columns(2)
        if cp_param and found is None:
            # Never substitute another checkpoint: say which id is unknown and wait for a choice.
            st.error(f"Unknown checkpoint in this link ({side}): “{md_escape(cp_param)}” does not exist.",
                     icon=":material/link_off:")
        if found:
            m_default, cp_param = found["model_id"], found["checkpoint_id"]
        m = a.selectbox(f"Model {side.upper()}", model_ids, index=model_ids.index(m_default),
                        key=f"diff_{side}_model")
        cps = checkpoints(m)
        all_cps = [c["checkpoint_id"] for c in cps]
        if not all_cps:
            b.info("No checkpoint.")
            return None
        labels = {c["checkpoint_id"]: (f"step {c['training_step']:,}" if c["training_step"] is not None
                                       else "baseline") + f" ({c['n_completed']} datasets)" for c in cps}
        if cp_param and found is None:
            return unknown_in_link(f"Checkpoint {side.upper()}", cp_param, all_cps, key=f"diff_{side}_cp",
                                   container=b, format_func=lambda c: labels.get(c, c))
        if cp_param in all_cps:
            idx = all_cps.index(cp_param)
        else:
            idx = min(max(0, len(all_cps) + default_pos), len(all_cps) - 1)
        return b.selectbox(f"Checkpoint {side.upper()}", all_cps, index=idx, key=f"diff_{side}_cp",
                           format_func=lambda c: labels.get(c, c))

    first = next((m["model_id"] for m in models if m["model_type"] == "training"), model_ids[0])
    cp_a = pick("a", first, -2)
    cp_b = pick("b", first, -1)
    sync_qp(a=cp_a, b=cp_b)
    if cp_a and cp_b:
        d = load(data.diff_checkpoints, url, cp_a, cp_b, 200, what="the diff")
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
        dmeta = {x["dataset_name"]: x for x in load(data.list_datasets, url, what="datasets")}
        ddf["category"] = ddf["dataset_name"].map(lambda n: (dmeta.get(n) or {}).get("category") or "uncategorised")
        f1, f2 = st.columns([2, 1])
        cats = sorted(ddf["category"].unique())
        cat_pick = f1.multiselect("Category", cats, default=[c for c in qp_list("category") if c in cats],
                                  key="diff_category", placeholder="all categories")
        sorts = {"delta": "largest change first (|b − a|)", "q": "most significant first (q)",
                 "name": "dataset name"}
        sort_by = select("Sort", list(sorts), param="sort", key="diff_sort", container=f2, format_func=sorts.get)
        if cat_pick:
            ddf = ddf[ddf["category"].isin(cat_pick)]
        if sort_by == "delta":
            ddf = ddf.assign(_k=ddf["delta"].abs()).sort_values("_k", ascending=False, na_position="last") \
                .drop(columns="_k")
        elif sort_by == "q":
            ddf = ddf.sort_values(["q_value", "dataset_name"], na_position="last")
        else:
            ddf = ddf.sort_values("dataset_name")
        for c in ("delta_ci_lower", "delta_ci_upper", "n_paired", "n_right_to_wrong", "n_wrong_to_right", "test",
                  "p_value"):
            if c not in ddf.columns:
                ddf[c] = None
        plot = ddf[ddf["delta"].notna()][["dataset_name", "delta", "delta_ci_lower", "delta_ci_upper", "q_value",
                                          "test", "significance"]]
        if not plot.empty:
            chart("diff", plot, title=f"{cp_b} − {cp_a}")
        cols = ["dataset_name", "category", "significance", "delta", "q_value", "direction", "score_a", "score_b",
                "delta_ci_lower", "delta_ci_upper", "n_a", "n_b", "test", "p_value", "n_paired", "n_wrong_to_right",
                "n_right_to_wrong"]
        table(ddf[cols], name=f"diff_{cp_a}_vs_{cp_b}", key="diff_table", column_config={
            "delta": st.column_config.NumberColumn(format="%+.4f"),
            "p_value": st.column_config.NumberColumn(format="%.3g"),
            "q_value": st.column_config.NumberColumn(format="%.3g")})
        keep = set(ddf["dataset_name"])
        flips = [{"dataset_name": x["dataset_name"], **f} for x in d["datasets"] if x["dataset_name"] in keep
                 for f in (x.get("flips") or [])]
        st.subheader("Flipped examples")
        if not flips:
            st.info("No flipped example: flips need per-example rows on both runs (`POST /api/ingest/examples`, "
                    "or `backfill.py --with-examples`).")
        else:
            fdf = pd.DataFrame(flips)
            ds_with = sorted(fdf["dataset_name"].unique())
            # One dataset by default, the first with flips in the table's order (largest change first):
            # every dataset's flips at once are thousands of rows (a 1.8 MB table at 40 datasets) that
            # took longer to send and draw than the rest of the page. "(all)" is one choice away.
            with_flips = set(ds_with)
            top = next(n for n in ddf["dataset_name"] if n in with_flips)
            fd = select("Dataset", ["(all)"] + ds_with, param="flips", key="diff_flips_ds", default=top)
            kind = st.radio("Flip", ["both", "right_to_wrong", "wrong_to_right"], horizontal=True,
                            key="diff_flip_kind")
            shown = fdf if fd == "(all)" else fdf[fdf["dataset_name"] == fd]
            if kind != "both":
                shown = shown[shown["flip"] == kind]
            scope = ddf if fd == "(all)" else ddf[ddf["dataset_name"] == fd]
            st.caption(f"{len(shown)} flipped examples shown (up to 200 per dataset); all flips "
                       + ("in the datasets above" if fd == "(all)" else "in this dataset") + ": "
                       f"{fnum(int(scope['n_right_to_wrong'].fillna(0).sum()))} right→wrong, "
                       f"{fnum(int(scope['n_wrong_to_right'].fillna(0).sum()))} wrong→right.")
            table(shown, name="flipped_examples", key="diff_flips")
            sync_qp(flips=None if fd == top else fd)
        sync_qp(category=cat_pick, sort=None if sort_by == "delta" else sort_by)
