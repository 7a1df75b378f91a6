"""Model detail: the promotion verdict first, then curves, training heatmap, gaps, profile, best checkpoints, alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import (
    chart,
    empty,
    fnum,
    link,
    load,
    md_escape,
    models_or_stop,
    qp,
    qp_list,
    select,
    sync_qp,
    table,
    unknown_in_link,
    url_tabs,
    with_smoothing,
)
from ingest_api import stats

url = data.database_url()
st.title("Model detail")

models = models_or_stop(data.list_models, url)
model_ids = [m["model_id"] for m in models]
names = {m["model_id"]: m["display_name"] for m in models}
default_model = next((m["model_id"] for m in models if m["model_type"] == "training"), model_ids[0])
top = st.columns([2, 2, 3])
model_id = select("Model", model_ids, param="model", key="md_model", default=default_model, container=top[0],
                  format_func=lambda m: f"{m} ({names.get(m, '')})")
info = load(data.get_model, url, model_id, what="the model")
if info is None:
    st.error(f"Model {md_escape(model_id)} does not exist.")
    st.stop()
model = info["model"]
# Client text (names, owner) as plain text: never rendered as Markdown.
st.text(f"{model['display_name']}  ·  {model['model_type']}  ·  owner: {model['owner'] or '—'}  ·  "
        f"{model['n_checkpoints']} checkpoints  ·  latest step "
        + ("—" if model["latest_step"] is None else f"{model['latest_step']:,}"))

# ------------------------------------------------------------------ promotion verdict (first)
scored_cps = [c for c in reversed(info["checkpoints"]) if c.get("n_completed")]
scored_cps.sort(key=lambda c: (c["training_step"] is None, -(c["training_step"] or 0)))
cp_ids = [c["checkpoint_id"] for c in scored_cps]
cp_label = {c["checkpoint_id"]: (f"step {c['training_step']:,}" if c["training_step"] is not None else "baseline")
            + (" (latest)" if i == 0 else "") for i, c in enumerate(scored_cps)}
checkpoint = None
if cp_ids:
    want_cp = qp("checkpoint")
    if want_cp is not None and want_cp not in cp_ids:
        checkpoint = unknown_in_link("Checkpoint", want_cp, cp_ids, key="md_checkpoint", container=top[1],
                                     format_func=lambda c: cp_label.get(c, c))
    else:
        checkpoint = top[1].selectbox("Checkpoint (promotion verdict)", cp_ids,
                                      index=cp_ids.index(want_cp) if want_cp in cp_ids else 0,
                                      key="md_checkpoint", format_func=lambda c: cp_label.get(c, c))

promo = load(data.promotion_status, url, model_id, checkpoint, what="the promotion status")
overall = promo["overall"]
step_txt = f" — step {promo['training_step']:,}" if promo.get("training_step") is not None else ""
cond_rows = []
for r in promo.get("rules", []):
    for c in r.get("conditions", []):
        evidence = None
        if c["kind"] == "no_regressions" and c.get("reference"):
            evidence = link("compare", view="diff", a=c["reference"], b=promo["checkpoint_id"])
        elif c.get("dataset"):
            evidence = link("model", model=model_id, datasets=c["dataset"], tab="curves")
        elif c.get("category"):
            evidence = link("model", model=model_id, category=c["category"], tab="curves")
        cond_rows.append({"result": "✗ fails" if c["passed"] is False else ("✓ passes" if c["passed"] else "? unknown"),
                          "condition": c["kind"], "detail": c["text"], "rule": r["rule_name"],
                          "value": c.get("value"), "threshold": c.get("threshold"), "evidence": evidence,
                          "_order": 0 if c["passed"] is False else 1 if c["passed"] is None else 2})
failed = [c for c in cond_rows if c["_order"] == 0]
with st.container(border=True):
    if overall == "blocked":
        st.error(f"**✗ Blocked{step_txt}**: {len(failed)} condition{'s' if len(failed) != 1 else ''} "
                 f"fail{'s' if len(failed) == 1 else ''} ({md_escape(promo['checkpoint_id'])})",
                 icon=":material/block:")
        for c in failed[:8]:
            st.markdown(f"- ✗ **{md_escape(c['condition'])}** · {md_escape(c['detail'])}"
                        + (f" · [evidence]({c['evidence']})" if c["evidence"] else ""))
        if len(failed) > 8:
            st.caption(f"… and {len(failed) - 8} more failing conditions in the table below.")
    elif overall == "ready":
        st.success(f"**✓ Ready to promote{step_txt}** ({md_escape(promo['checkpoint_id'])})"
                   + (" — already promoted" if promo.get("promoted") else ""), icon=":material/check_circle:")
    elif overall == "no_rules":
        st.info(f"No promotion rule applies to this model{step_txt}. Add one with "
                "`POST /api/admin/promotion-rules` (minimum scores, no regressions).", icon=":material/rule:")
    else:
        st.info("No completed result yet, so no promotion verdict.", icon=":material/hourglass_empty:")
    if cond_rows:
        cdf = pd.DataFrame(cond_rows).sort_values("_order", kind="stable").drop(columns="_order")
        with st.expander(f"All {len(cdf)} conditions (failing first)", expanded=overall == "blocked" and not failed):
            table(cdf, name=f"{model_id}_promotion", key="md_promo", column_config={
                "detail": st.column_config.TextColumn(width="large"),
                "evidence": st.column_config.LinkColumn(display_text="open")})

diag = load(data.diagnosis, url, model_id, what="the diagnosis")
scores = diag["scores"] if diag else {}
if not scores:
    empty(f"{md_escape(model_id)} has no completed, scored result yet. Post one with the ingest API or "
          "`python backfill.py --output-dir <dir> --model-id <model>`.")
    sync_qp(model=model_id)
    st.stop()
datasets = sorted(scores)
dmeta = {d["dataset_name"]: d for d in load(data.list_datasets, url, what="datasets")}
category_of = {d: (dmeta.get(d) or {}).get("category") or "uncategorised" for d in datasets}
baselines_all = sorted({b["model_id"] for s in scores.values() for b in s["baselines"]})
alerts_all = load(data.alerts, url, model_id, "all", limit=5000, what="alerts")["alerts"]

TABS = {"curves": "Training curves", "training": "Over training (heatmap)", "gaps": "Gap analysis",
        "profile": "Capability profile", "best": "Best checkpoints", "alerts": f"Alerts ({len(alerts_all)})"}
tab = url_tabs(TABS, param="tab", key="md_tab")
t_curves = t_training = t_gaps = t_profile = t_best = t_alerts = st.container()
chosen: list[str] = []
category = None
baseline = None
sig_pick: list[str] = []
smooth = 0.0

# ------------------------------------------------------------------ training curves
if tab == "curves":
    with t_curves:
        if model["model_type"] != "training":
            st.info("A baseline has one checkpoint, so it has no curve: its scores are in the gap table and in "
                    "other models' curves as reference lines.")
        else:
            # Default: the datasets with open alerts (most severe, newest first), then those moving fastest.
            sev = {"critical": 0, "warning": 1, "info": 2}
            alerted = [a["dataset_name"] for a in sorted(alerts_all, key=lambda a: (a["status"] != "open",
                                                                                     sev.get(a["severity"], 3)))
                       if a["dataset_name"] in scores]
            moved = sorted(datasets, key=lambda d: -abs((scores[d].get("trend_detail") or {})
                                                         .get("slope_per_1k_steps") or 0.0))
            default_ds = list(dict.fromkeys(alerted + moved))[:4]
            c1, c2, c3, c4 = st.columns([4, 2, 2, 1])
            cats = sorted(set(category_of.values()))
            category = select("Category (all its datasets)", [None] + cats, param="category", key="md_category",
                              container=c2, format_func=lambda c: "— pick datasets —" if c is None else c)
            if category:
                chosen = [d for d in datasets if category_of[d] == category]
                c1.text(f"{len(chosen)} datasets in {category}")
            else:
                want = [d for d in qp_list("datasets") if d in datasets]
                unknown = [d for d in qp_list("datasets") if d not in datasets]
                if unknown:
                    st.warning("Unknown dataset in this link (not shown): " + ", ".join(md_escape(d) for d in unknown))
                chosen = c1.multiselect("Datasets", datasets, default=want or default_ds, key="md_datasets",
                                        help="Default: datasets with alerts, then those whose trend moves fastest.")
            layout = c3.radio("Layout", ["overlay", "small multiples"], horizontal=True, key="md_layout",
                              index=1 if qp("layout") == "multiples" else 0)
            try:
                smooth = float(qp("smooth") or 0)
            except ValueError:
                smooth = 0.0
            smooth = c4.number_input("EMA", min_value=0.0, max_value=0.99, value=min(max(smooth, 0.0), 0.99),
                                     step=0.1, key="md_smooth",
                                     help="Exponential moving average weight w (0 = off): s = w·s_prev + (1−w)·x, "
                                          "bias-corrected at the start. Raw points and their 95% band stay drawn.")
            if chosen:
                pts = pd.DataFrame(load(data.curves, url, (model_id,), tuple(chosen), what="the curves"))
                pts = pts[pts["training_step"].notna()] if not pts.empty else pts
                if pts.empty:
                    st.info("No scored checkpoint on these datasets.")
                else:
                    pts = with_smoothing(pts.rename(columns={"dataset_name": "series"}), smooth)
                    base = pd.DataFrame([{"series": d, "name": b["model_id"], "value": b["value"]}
                                         for d in chosen for b in scores[d]["baselines"]
                                         if b["model_id"] == scores[d]["baseline_model"]])
                    al = pd.DataFrame([{"series": a["dataset_name"], "training_step": a["training_step"],
                                        "severity": a["severity"], "alert_type": a["alert_type"],
                                        "message": a["message"]}
                                       for a in alerts_all if a["dataset_name"] in chosen and a["training_step"]])
                    if not al.empty:
                        al = al.merge(pts[["series", "training_step", "metric_value"]],
                                      on=["series", "training_step"], how="inner")
                    cols = ["series", "training_step", "metric_value", "ci_lower", "ci_upper", "n", "smooth"]
                    groups = [chosen] if layout == "overlay" else [[d] for d in chosen]
                    grid = st.columns(1 if layout == "overlay" else 2)
                    for i, g in enumerate(groups):
                        p = pts[pts["series"].isin(g)][cols]
                        if p.empty:
                            continue
                        chart("multi_curves", p, base[base["series"].isin(g)] if not base.empty else None,
                              al[al["series"].isin(g)] if not al.empty else None, series_title="dataset",
                              smoothed=smooth > 0, height=380 if layout == "overlay" else 240,
                              title=", ".join(g) if len(g) == 1 else "", container=grid[i % len(grid)])
                    st.caption("Hover: every dataset at the nearest step. Scroll to zoom, drag to pan, double-click "
                               "to reset; click a legend entry to show only it (shift-click for more). Band: 95% "
                               "interval; dashed: best baseline; alert marks by severity (▼ critical, ◆ warning, "
                               "● info)."
                               + (f" Bold line: EMA, w = {smooth:g} (bias-corrected); faint: raw." if smooth else ""))
            else:
                st.info("Choose one or more datasets, or a category, to draw their curves.")

# ------------------------------------------------------------------ checkpoints × datasets over training
if tab == "training":
    with t_training:
        allp = pd.DataFrame(load(data.curves, url, (model_id,), None, what="the model's scores"))
        allp = allp[allp["training_step"].notna()] if not allp.empty else allp
        if allp.empty:
            st.info("No training checkpoint with a score.")
        else:
            allp["category"] = allp["dataset_name"].map(category_of).fillna("uncategorised")
            hib = allp["dataset_name"].map(lambda d: bool((dmeta.get(d) or {}).get("is_higher_better", True)))
            g = allp.groupby("dataset_name")["metric_value"]
            lo, hi = g.transform("min"), g.transform("max")
            norm = ((allp["metric_value"] - lo) / (hi - lo).where(hi > lo)).fillna(0.5)
            allp["norm"] = norm.where(hib, 1 - norm)
            marks = {}
            for a in alerts_all:
                if a["training_step"] is not None and a["dataset_name"]:
                    k = (a["training_step"], a["dataset_name"])
                    marks[k] = marks.get(k, "") or ("▼" if a["alert_type"] == "regression" else "▲"
                                                    if a["alert_type"] in ("improvement", "new_best") else "•")
            allp["alert"] = [marks.get((s, d), "") for s, d in zip(allp["training_step"], allp["dataset_name"])]
            allp["alert_text"] = allp["alert"].map({"▼": "regression", "▲": "improvement / new best",
                                                    "•": "other alert", "": ""})
            order = sorted(allp["dataset_name"].unique(), key=lambda d: (category_of.get(d, "~"), d))
            cats_present = list(dict.fromkeys(category_of.get(d, "uncategorised") for d in order))
            st.caption("Rows: checkpoints (newest on top); columns grouped by category ("
                       + ", ".join(f"{md_escape(c)}: {sum(category_of.get(d) == c for d in order)}"
                                   for c in cats_present)
                       + "). Colour: score normalised per dataset over this model's checkpoints (viridis; best = "
                         "yellow, direction-aware). ▼ regression, ▲ improvement/new best alert. Click a cell to "
                         "open its curve and eval run below.")
            cols = ["training_step", "dataset_name", "category", "metric_value", "norm", "ci_lower", "ci_upper",
                    "n", "alert", "alert_text"]
            ev = chart("training_heatmap", allp[cols], datasets=order, categories=category_of,
                       key="md_train_heat", on_select="rerun", selection_mode="cell", width="content")
            picked = (ev.selection.get("cell") or [None])[0] if ev and ev.selection else None
            if picked:
                ps, pd_ = picked.get("training_step"), picked.get("dataset_name")
                row = allp[(allp["training_step"] == ps) & (allp["dataset_name"] == pd_)]
                with st.container(border=True):
                    if row.empty:
                        st.text(f"{pd_} at step {ps}: no score")
                    else:
                        r = row.iloc[0]
                        st.text(f"{pd_} at step {int(ps):,}: {fnum(r['metric_value'])} "
                                f"[{fnum(r['ci_lower'])}, {fnum(r['ci_upper'])}] n={r['n']}")
                        q1, q2 = st.columns(2)
                        q1.page_link("app_pages/model.py", label=f"Curve of {md_escape(pd_)}", icon=":material/timeline:",
                                     query_params={"model": model_id, "datasets": pd_, "tab": "curves"})
                        q2.page_link("app_pages/compare.py", label="Diff with the previous checkpoint",
                                     icon=":material/compare_arrows:",
                                     query_params={"view": "diff", "b": r["checkpoint_id"],
                                                   **({"a": prev} if (prev := next(
                                                       (c["checkpoint_id"] for c in scored_cps
                                                        if c["training_step"] is not None
                                                        and c["training_step"] < ps), None)) else {})})

# ------------------------------------------------------------------ gap analysis
if tab == "gaps":
    with t_gaps:
        st.caption(f"Latest score per dataset against the best baseline; tests {diag['correction']} "
                   f"(α = {diag['alpha']}); trend over the last {diag['trend_window']} checkpoints.")
        gap = pd.DataFrame([{
            "dataset": ds, "category": category_of.get(ds), "significance": s["significance"], "gap": s["gap"],
            "trend": s["trend"], "slope_per_1k_steps": (s.get("trend_detail") or {}).get("slope_per_1k_steps"),
            "value": s["value"], "ci_lower": s["ci_lower"], "ci_upper": s["ci_upper"], "n": s["n"],
            "q_value": s["q_value"], "p_value": s["p_value"], "gap_ci_lower": s["effect_ci_lower"],
            "gap_ci_upper": s["effect_ci_upper"], "baseline_best": s["baseline_best"],
            "baseline_model": s["baseline_model"], "test": s["test"], "interval": s["interval_method"],
            "step": s["training_step"]} for ds, s in scores.items()])
        sig_options = sorted(gap["significance"].dropna().unique().tolist())
        sig_pick = st.multiselect("Significance", sig_options,
                                  default=[x for x in qp_list("sig") if x in sig_options], key="md_sig",
                                  placeholder="all")
        shown = gap[gap["significance"].isin(sig_pick)] if sig_pick else gap
        table(shown, name=f"{model_id}_gaps", key="md_gaps", column_config={
            "value": st.column_config.NumberColumn(format="%.3f"), "gap": st.column_config.NumberColumn(format="%+.3f"),
            "p_value": st.column_config.NumberColumn(format="%.3g"),
            "q_value": st.column_config.NumberColumn(format="%.3g")})

# ------------------------------------------------------------------ capability profile
if tab == "profile":
    with t_profile:
        if not baselines_all:
            st.info("No baseline model yet: post results with model_type 'baseline' to compare against.")
        else:
            best_counts = pd.Series([s["baseline_model"] for s in scores.values() if s["baseline_model"]]).value_counts()
            default_base = best_counts.index[0] if len(best_counts) else baselines_all[0]
            baseline = select("Baseline", baselines_all, param="baseline", key="md_baseline", default=default_base)
            prof = load(data.category_profile, url, (model_id, baseline), True, what="the capability profile")
            rows = []
            for p in prof["profiles"]:
                for cat, agg in p["categories"].items():
                    rows.append({"model": p["model_id"], "category": cat, "mean": agg["mean"],
                                 "stderr": agg["stderr"], "ci_lower": agg["ci_lower"], "ci_upper": agg["ci_upper"],
                                 "n_datasets": agg["n_datasets"], "datasets": ", ".join(agg["datasets"])})
            prof_df = pd.DataFrame(rows)
            if prof_df.empty:
                st.info(f"{md_escape(model_id)} and {md_escape(baseline)} share no dataset yet.")
            else:
                mine = prof_df[prof_df["model"] == model_id].set_index("category")
                theirs = prof_df[prof_df["model"] == baseline].set_index("category")
                deltas = []
                for cat in mine.index.intersection(theirs.index):
                    t = stats.z_test_from_se(theirs.at[cat, "mean"], theirs.at[cat, "stderr"], mine.at[cat, "mean"],
                                             mine.at[cat, "stderr"])
                    deltas.append({"category": cat, "delta": t.effect, "ci_lower": t.ci_lower,
                                   "ci_upper": t.ci_upper, "p_value": t.p_value, "model_mean": mine.at[cat, "mean"],
                                   "baseline_mean": theirs.at[cat, "mean"],
                                   "n_datasets": int(mine.at[cat, "n_datasets"])})
                delta_df = pd.DataFrame(deltas)
                c1, c2 = st.columns(2)
                chart("radar", prof_df[["model", "category", "mean", "ci_lower", "ci_upper"]],
                      title=f"mean score by category vs {baseline}", width="content", container=c1)
                if not delta_df.empty:
                    chart("delta_bars", delta_df, title=f"{model_id} − {baseline}, 95% interval", container=c2)
                st.caption("Both charts use the same numbers: per category the mean primary score over the datasets "
                           "both models have; intervals from the datasets' own standard errors. Bars: blue above "
                           "zero, orange below.")
                merged = prof_df.merge(delta_df[["category", "delta", "ci_lower", "ci_upper", "p_value"]]
                                       .rename(columns={"ci_lower": "delta_ci_lower", "ci_upper": "delta_ci_upper"}),
                                       on="category", how="left") if not delta_df.empty else prof_df
                if not delta_df.empty:  # the delta belongs to the model's rows, not the baseline's
                    cols = ["delta", "delta_ci_lower", "delta_ci_upper", "p_value"]
                    merged[cols] = merged[cols].where(merged["model"] == model_id)
                table(merged, name=f"{model_id}_profile", key="md_profile")

# ------------------------------------------------------------------ best checkpoints
if tab == "best":
    with t_best:
        bo = diag.get("best_overall")
        if bo:
            st.text(f"Best overall: step {bo['training_step']} ({bo['checkpoint_id']}), mean {fnum(bo['mean_score'])} "
                    f"over {bo['n_datasets']} datasets that all {bo['n_checkpoints_compared']} compared checkpoints "
                    f"have ({bo['n_checkpoints_excluded']} checkpoints lacking some were not ranked).")
        best = pd.DataFrame([{"dataset": d, **v} for d, v in (diag.get("best_per_dataset_detail") or {}).items()])
        if not best.empty:
            st.caption("Best per dataset: the maximum over noisy values (optimistic); compare with the gap table's "
                       "latest.")
            table(best, name=f"{model_id}_best_checkpoints", key="md_best")

# ------------------------------------------------------------------ alerts
if tab == "alerts":
    with t_alerts:
        if alerts_all:
            al_df = pd.DataFrame(alerts_all)[["id", "created_at", "severity", "alert_type", "dataset_name",
                                              "training_step", "message", "status", "acknowledged"]]
            table(al_df, name=f"{model_id}_alerts", key="md_alerts")
            st.page_link("app_pages/activity.py", label="Manage these alerts (group, acknowledge)",
                         icon=":material/notifications:", query_params={"model": model_id})
        else:
            st.caption("No alert for this model.")

# The URL keeps every tab's choices; each run writes only the parameters of what it drew.
state: dict = {"model": model_id, "dataset": None,
               "checkpoint": None if checkpoint == (cp_ids[0] if cp_ids else None) else checkpoint}
if tab == "curves" and model["model_type"] == "training":
    state.update(category=category, datasets=None if category else chosen, smooth=smooth or None,
                 layout="multiples" if st.session_state.get("md_layout") == "small multiples" else None)
if tab == "profile":
    state["baseline"] = baseline
if tab == "gaps":
    state["sig"] = sig_pick
sync_qp(**state)
