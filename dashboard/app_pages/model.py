"""Model detail: training curves, capability profile, gap analysis, best checkpoints, promotion status."""

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
    qp_list,
    select,
    sync_qp,
    table,
    with_interval,
)
from ingest_api import stats

url = data.database_url()
st.title("Model detail")

models = models_or_stop(data.list_models, url)
model_ids = [m["model_id"] for m in models]
default_model = next((m["model_id"] for m in models if m["model_type"] == "training"), model_ids[0])
model_id = select("Model", model_ids, param="model", key="md_model", default=default_model,
                  format_func=lambda m: f"{m} ({next(x['display_name'] for x in models if x['model_id'] == m)})")
info = load(data.get_model, url, model_id, what="the model")
if info is None:
    st.error(f"Model {md_escape(model_id)} does not exist.")
    st.stop()
model = info["model"]
st.markdown(f"### {md_escape(model['display_name'])}")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Type", model["model_type"])
m2.metric("Owner", model["owner"] or "—")
m3.metric("Checkpoints", model["n_checkpoints"])
m4.metric("Latest step", "—" if model["latest_step"] is None else f"{model['latest_step']:,}")

diag = load(data.diagnosis, url, model_id, what="the diagnosis")
scores = diag["scores"] if diag else {}
if not scores:
    empty(f"{md_escape(model_id)} has no completed, scored result yet. Post one with the ingest API or "
          "`python backfill.py --output-dir <dir> --model-id <model>`.")
    sync_qp(model=model_id)
    st.stop()
datasets = sorted(scores)
baselines_all = sorted({b["model_id"] for s in scores.values() for b in s["baselines"]})

# ------------------------------------------------------------------ training curves
st.subheader("Training curves")
want = [d for d in qp_list("datasets") if d in datasets] or ([qp("dataset")] if qp("dataset") in datasets else [])
chosen = st.multiselect("Datasets", datasets, default=want or datasets[:4], key="md_datasets")
alerts_all = load(data.alerts, url, model_id, "all", what="alerts")["alerts"]
if model["model_type"] != "training":
    st.info("A baseline has one checkpoint, so it has no curve: its scores are in the gap table below "
            "and in other models' curves as reference lines.")
elif chosen:
    cols = st.columns(2)
    for i, ds in enumerate(chosen):
        curve = load(data.compare_curves, url, (model_id,), ds, what=f"the curve of {ds}")
        pts = pd.DataFrame(curve["models"][0]["data_points"] if curve["models"] else [])
        if pts.empty:
            cols[i % 2].info(f"No scored checkpoint on {md_escape(ds)}.")
            continue
        best_base = scores[ds]["baseline_model"]
        base = pd.DataFrame([{"name": b["model_id"], "value": b["value"],
                              "label": f"best baseline: {b['model_id']}" if b["model_id"] == best_base else ""}
                             for b in scores[ds]["baselines"]])
        al = pd.DataFrame([a for a in alerts_all if a["dataset_name"] == ds and a["training_step"] is not None])
        if not al.empty:
            al = al.merge(pts[["training_step", "metric_value"]], on="training_step", how="inner")
        with cols[i % 2]:
            chart("training_curve", pts[["training_step", "metric_value", "ci_lower", "ci_upper", "n"]], base,
                  al[["training_step", "metric_value", "severity", "alert_type", "message"]] if not al.empty else None,
                  title=ds)
            last = pts.iloc[-1]
            st.caption(f"latest: {with_interval(last['metric_value'], last['ci_lower'], last['ci_upper'], last['n'])}"
                       f" ({last['interval_method'] or 'no'} interval); dashed: baselines (hover for names); "
                       "▼ alerts")
else:
    st.info("Choose one or more datasets to draw their curves.")

# ------------------------------------------------------------------ capability profile
st.subheader("Capability profile")
baseline = None
if baselines_all:
    best_counts = pd.Series([s["baseline_model"] for s in scores.values() if s["baseline_model"]]).value_counts()
    default_base = best_counts.index[0] if len(best_counts) else baselines_all[0]
    baseline = select("Baseline", baselines_all, param="baseline", key="md_baseline", default=default_base)
    prof = load(data.category_profile, url, (model_id, baseline), True, what="the capability profile")
    rows = []
    for p in prof["profiles"]:
        for cat, agg in p["categories"].items():
            rows.append({"model": p["model_id"], "category": cat, "mean": agg["mean"], "stderr": agg["stderr"],
                         "ci_lower": agg["ci_lower"], "ci_upper": agg["ci_upper"], "n_datasets": agg["n_datasets"],
                         "datasets": ", ".join(agg["datasets"])})
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
            deltas.append({"category": cat, "delta": t.effect, "ci_lower": t.ci_lower, "ci_upper": t.ci_upper,
                           "p_value": t.p_value, "model_mean": mine.at[cat, "mean"],
                           "baseline_mean": theirs.at[cat, "mean"], "n_datasets": int(mine.at[cat, "n_datasets"])})
        delta_df = pd.DataFrame(deltas)
        c1, c2 = st.columns(2)
        chart("radar", prof_df[["model", "category", "mean", "ci_lower", "ci_upper"]],
              title=f"mean score by category vs {baseline}", width="content", container=c1)
        if not delta_df.empty:
            chart("delta_bars", delta_df, title=f"{model_id} − {baseline}, 95% interval", container=c2)
        st.caption("Both charts use the same numbers: per category the mean primary score over the datasets "
                   "both models have; intervals from the datasets' own standard errors.")
        merged = prof_df.merge(delta_df[["category", "delta", "ci_lower", "ci_upper", "p_value"]]
                               .rename(columns={"ci_lower": "delta_ci_lower", "ci_upper": "delta_ci_upper"}),
                               on="category", how="left") if not delta_df.empty else prof_df
        if not delta_df.empty:  # the delta belongs to the model's rows, not the baseline's
            cols = ["delta", "delta_ci_lower", "delta_ci_upper", "p_value"]
            merged[cols] = merged[cols].where(merged["model"] == model_id)
        table(merged, name=f"{model_id}_profile", key="md_profile")
else:
    st.info("No baseline model yet: post results with model_type 'baseline' to compare against.")

# ------------------------------------------------------------------ gap analysis
st.subheader("Gap analysis")
st.caption(f"Latest score per dataset against the best baseline; tests {diag['correction']} "
           f"(α = {diag['alpha']}); trend over the last {diag['trend_window']} checkpoints.")
gap = pd.DataFrame([{
    "dataset": ds, "value": s["value"], "ci_lower": s["ci_lower"], "ci_upper": s["ci_upper"], "n": s["n"],
    "interval": s["interval_method"], "step": s["training_step"], "baseline_best": s["baseline_best"],
    "baseline_model": s["baseline_model"], "gap": s["gap"], "gap_ci_lower": s["effect_ci_lower"],
    "gap_ci_upper": s["effect_ci_upper"], "test": s["test"], "p_value": s["p_value"], "q_value": s["q_value"],
    "significance": s["significance"], "trend": s["trend"],
    "slope_per_1k_steps": (s.get("trend_detail") or {}).get("slope_per_1k_steps")} for ds, s in scores.items()])
sig_options = sorted(gap["significance"].dropna().unique().tolist())
sig_pick = st.multiselect("Significance", sig_options, default=[x for x in qp_list("sig") if x in sig_options],
                          key="md_sig", placeholder="all")
shown = gap[gap["significance"].isin(sig_pick)] if sig_pick else gap
table(shown, name=f"{model_id}_gaps", key="md_gaps", column_config={
    "value": st.column_config.NumberColumn(format="%.3f"), "gap": st.column_config.NumberColumn(format="%+.3f"),
    "p_value": st.column_config.NumberColumn(format="%.3g"), "q_value": st.column_config.NumberColumn(format="%.3g")})

# ------------------------------------------------------------------ best checkpoints
st.subheader("Best checkpoints")
bo = diag.get("best_overall")
if bo:
    st.text(f"Best overall: step {bo['training_step']} ({bo['checkpoint_id']}), mean {fnum(bo['mean_score'])} over "
            f"{bo['n_datasets']} datasets that all {bo['n_checkpoints_compared']} compared checkpoints have "
            f"({bo['n_checkpoints_excluded']} checkpoints lacking some were not ranked).")
best = pd.DataFrame([{"dataset": d, **v} for d, v in (diag.get("best_per_dataset_detail") or {}).items()])
if not best.empty:
    st.caption("Best per dataset: the maximum over noisy values (optimistic); compare with the gap table's latest.")
    table(best, name=f"{model_id}_best_checkpoints", key="md_best")

# ------------------------------------------------------------------ promotion status
st.subheader("Promotion status")
promo = load(data.promotion_status, url, model_id, what="the promotion status")
overall = promo["overall"]
label = {"ready": "ready to promote", "blocked": "blocked", "no_rules": "no promotion rule applies",
         "no_data": "no completed result"}.get(overall, overall)
(st.success if overall == "ready" else st.warning if overall == "blocked" else st.info)(
    f"{label}" + (f" — step {promo['training_step']}" if promo.get("training_step") is not None else "")
    + (" (already promoted)" if promo.get("promoted") else ""))
cond_rows = []
for r in promo.get("rules", []):
    for c in r.get("conditions", []):
        cond_rows.append({"rule": r["rule_name"], "rule_passed": r["passed"], "condition": c["kind"],
                          "passed": c["passed"], "detail": c["text"]})
if cond_rows:
    table(pd.DataFrame(cond_rows), name=f"{model_id}_promotion", key="md_promo")
elif overall == "no_rules":
    st.caption("Add a rule with `POST /api/admin/promotion-rules` (minimum scores, no regressions).")

# ------------------------------------------------------------------ alerts
st.subheader("Alerts")
if alerts_all:
    al_df = pd.DataFrame(alerts_all)[["id", "created_at", "severity", "alert_type", "dataset_name", "training_step",
                                      "message", "status", "acknowledged"]]
    table(al_df, name=f"{model_id}_alerts", key="md_alerts")
else:
    st.caption("No alert for this model.")

sync_qp(model=model_id, datasets=chosen, baseline=baseline, sig=sig_pick, dataset=None)
