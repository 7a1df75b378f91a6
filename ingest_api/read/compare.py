"""Several models or two checkpoints side by side: training curves, category profiles, and the diff of
two checkpoints (per dataset b − a, tested, with the examples that flipped)."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from .. import stats
from ..core import sqlrows
from .catalog import resolve_checkpoint
from .pairs import flip_examples, pair_stats
from .scores import ScoreChoice, scores_source, with_intervals

# ------------------------------------------------------------------ compare


def compare_curves(conn: psycopg.Connection, models: Sequence[str], dataset: str, *,
                   common_only: bool = False) -> dict:
    """Training curves of several models on one dataset; common_only keeps steps all training models have."""
    rows = sqlrows.rows(conn, """
        with pts as (
          select model_id, model_type, display_name, checkpoint_id, training_step, metric_name, metric_value, n,
                 ci_lower, ci_upper, stderr, n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional
          from v_current_scores where model_id = any(%(m)s) and dataset_name = %(d)s and is_scored
        ),
        common as (
          select training_step from pts where model_type = 'training' and training_step is not null
          group by training_step
          having count(distinct model_id) = (select count(distinct model_id) from pts where model_type = 'training')
        )
        select * from pts
        where not %(c)s or model_type = 'baseline' or training_step in (select training_step from common)
        order by model_id, training_step nulls last""", {"m": list(models), "d": dataset, "c": common_only})
    with_intervals(rows)
    meta = {m["model_id"]: m for m in sqlrows.rows(conn, "select model_id, display_name, model_type from models "
                                                  "where model_id = any(%s)", (list(models),))}
    out = {m: {**meta[m], "data_points": []} for m in models if m in meta}
    for r in rows:
        out[r["model_id"]]["data_points"].append(
            {"checkpoint_id": r["checkpoint_id"], "training_step": r["training_step"],
             "metric_value": r["metric_value"], "metric_name": r["metric_name"], "n": r["n"],
             "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"], "interval_method": r["interval_method"]})
    return {"dataset": dataset, "common_only": common_only, "models": list(out.values())}


def category_profile(conn: psycopg.Connection, models: Sequence[str], *, common_only: bool = False,
                     score: ScoreChoice = "latest", step: int | None = None) -> dict:
    """Mean chosen score per category for each model (radar), with an interval from the datasets' own."""
    q = sql.SQL("""select s.model_id, s.dataset_name, coalesce(d.category, 'uncategorized') as category,
                          s.metric_name, s.metric_value, s.n, s.ci_lower, s.ci_upper, s.stderr, s.n_examples,
                          s.n_graded, s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional
                   from {src} s left join v_datasets d on d.dataset_name = s.dataset_name
                   where s.model_id = any(%(m)s)
                     and (not %(c)s or s.dataset_name in (
                          select dataset_name from {src} x where x.model_id = any(%(m)s)
                          group by dataset_name having count(distinct model_id) = %(k)s))
                   order by s.model_id, category, s.dataset_name""").format(src=scores_source(score))
    rows = with_intervals(sqlrows.rows(conn, q, {"m": list(models), "c": common_only, "k": len(set(models)),
                                           "step": step}))
    meta = {m["model_id"]: m for m in sqlrows.rows(conn, "select model_id, display_name, model_type from models "
                                                  "where model_id = any(%s)", (list(models),))}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model_id"], r["category"]), []).append(r)
    profiles = []
    for m in models:
        if m not in meta:
            continue
        cats = {}
        for (mid, cat), lst in groups.items():
            if mid != m:
                continue
            agg = stats.mean_with_se([x["metric_value"] for x in lst], [x["stderr"] for x in lst])
            agg["datasets"] = [x["dataset_name"] for x in lst]
            cats[cat] = agg
        profiles.append({**meta[m], "categories": cats})
    return {"score_choice": score, "common_only": common_only, "profiles": profiles}


# ------------------------------------------------------------------ diff


def diff_checkpoints(conn: psycopg.Connection, checkpoint_a: str, checkpoint_b: str, *, alpha: float = stats.ALPHA,
                     flips_limit: int = 20) -> dict | None:
    """Per dataset b − a with an interval and BH-corrected significance; flipped examples when both
    runs have example rows. None when either checkpoint is unknown (the caller says which)."""
    ca, cb = resolve_checkpoint(conn, checkpoint_a), resolve_checkpoint(conn, checkpoint_b)
    if ca is None or cb is None:
        return None
    info = {r["checkpoint_id"]: r for r in sqlrows.rows(
        conn, "select checkpoint_id, model_id, training_step from checkpoints where checkpoint_id = any(%s)",
        ([ca, cb],))}
    rows = with_intervals(sqlrows.records(conn, """select checkpoint_id, dataset_name, eval_run_id, status, is_scored,
                                                 metric_name, case when is_scored then metric_value end
                                                 as metric_value, n, ci_lower, ci_upper, stderr, is_higher_better,
                                                 n_examples, n_graded, n_correct, score_sum, score_sumsq,
                                                 n_fractional
                                          from v_current_scores where checkpoint_id = %s or checkpoint_id = %s
                                          order by dataset_name""", (ca, cb)))
    side: dict[str, dict[str, dict]] = {ca: {}, cb: {}}
    for r in rows:
        side[r["checkpoint_id"]][r["dataset_name"]] = r
    names = sorted(set(side[ca]) | set(side[cb]))
    pairs = [(side[ca][d]["eval_run_id"], side[cb][d]["eval_run_id"]) for d in names
             if d in side[ca] and d in side[cb] and side[ca][d]["n_graded"] and side[cb][d]["n_graded"]]
    pstats = pair_stats(conn, pairs) if ca != cb else {}
    flips: dict[tuple[str, str], list[dict]] = {}
    if pstats and flips_limit > 0:
        keys = [k for k, v in pstats.items() if v["n_wrong_to_right"] or v["n_right_to_wrong"]]
        if keys:
            flips = flip_examples(conn, keys, flips_limit)
    tests: list[stats.TestResult | None] = []
    for d in names:
        a, b = side[ca].get(d), side[cb].get(d)
        if a is None or b is None or a["metric_value"] is None or b["metric_value"] is None \
                or a["metric_name"] != b["metric_name"]:
            tests.append(None)
            continue
        tests.append(stats.compare_scores(a, b, pstats.get((a["eval_run_id"], b["eval_run_id"]))))
    qs = stats.benjamini_hochberg([t.p_value if t else None for t in tests])
    out = []
    summary = {"total": len(names), "improved": 0, "regressed": 0, "unchanged": 0, "missing": 0, "not_testable": 0}
    for d, t, qv in zip(names, tests, qs):
        a, b = side[ca].get(d), side[cb].get(d)
        va = a["metric_value"] if a else None
        vb = b["metric_value"] if b else None
        higher = (a or b)["is_higher_better"]
        item = {"dataset_name": d, "score_a": va, "score_b": vb,
                "delta": (vb - va) if va is not None and vb is not None else None,
                "metric_name": (a or b)["metric_name"], "n_a": a["n"] if a else None, "n_b": b["n"] if b else None,
                "ci_a": [a["ci_lower"], a["ci_upper"]] if a else None,
                "ci_b": [b["ci_lower"], b["ci_upper"]] if b else None,
                "eval_run_id_a": a["eval_run_id"] if a else None, "eval_run_id_b": b["eval_run_id"] if b else None,
                "is_higher_better": higher, "q_value": qv}
        if t is None:
            item.update({"significance": "insufficient_data", "p_value": None, "effect_ci_lower": None,
                         "effect_ci_upper": None, "test": None, "direction": "missing"})
            summary["missing"] += 1
        elif t.p_value is None:  # not testable (issue 14): no significance claimed, the reason said
            item.update(t.as_dict())
            item.pop("effect")
            item.update({"significance": "insufficient_data", "direction": "not_testable",
                         "not_testable": stats.not_testable_reason(a, b, t),
                         "delta_ci_lower": None, "delta_ci_upper": None})
            summary["not_testable"] += 1
        else:
            item.update(t.as_dict())
            item.pop("effect")
            item["delta_ci_lower"], item["delta_ci_upper"] = t.ci_lower, t.ci_upper
            sig = stats.significance_label(qv, t.effect, alpha=alpha)
            item["significance"] = sig
            better = (t.effect or 0) * (1 if higher else -1)
            if sig == "likely_real" and better > 0:
                item["direction"] = "improved"
            elif sig == "likely_real" and better < 0:
                item["direction"] = "regressed"
            else:
                item["direction"] = "unchanged"
            summary[item["direction"]] += 1
        ps = pstats.get((a["eval_run_id"], b["eval_run_id"])) if a and b else None
        if ps:
            item["n_paired"] = ps["n_pairs"]
            item["n_right_to_wrong"] = ps["n_right_to_wrong"]
            item["n_wrong_to_right"] = ps["n_wrong_to_right"]
            item["flips"] = flips.get((a["eval_run_id"], b["eval_run_id"]), [])
        out.append(item)
    return {"checkpoint_a": info[ca], "checkpoint_b": info[cb], "alpha": alpha,
            "correction": "benjamini_hochberg across datasets", "datasets": out, "summary": summary}
