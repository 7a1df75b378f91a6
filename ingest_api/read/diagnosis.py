"""One model against its baselines: gaps per dataset (tested, BH-corrected), trends, best checkpoints."""

from __future__ import annotations

from collections import Counter

import psycopg

from .. import stats
from ..core import sqlrows
from .pairs import pair_stats
from .scores import with_intervals


def diagnosis(conn: psycopg.Connection, model_id: str, *, window: int = 5, alpha: float = stats.ALPHA,
              paired: bool = True) -> dict | None:
    """Per dataset: the latest score, its gap to each baseline and the best one (tested, BH-corrected
    across datasets), the trend over the last `window` checkpoints; best checkpoints."""
    # One round trip: the model; its latest scores and every baseline's (filtering on v_latest_scores'
    # key, with no array parameter, so a prepared statement keeps one plan); every scored point of
    # the model (trends and the best checkpoint overall); the best checkpoint per dataset.
    models, both, points, best_per = sqlrows.batch(conn, [
        ("""select model_id, display_name, model_type, latest_checkpoint_id, latest_step
            from v_models where model_id = %(m)s""", {"m": model_id}, "dicts"),
        ("""select model_id, dataset_name, display_name, checkpoint_id, training_step, eval_run_id, metric_name,
                   metric_value, n, ci_lower, ci_upper, stderr, is_higher_better, n_graded, score_sum,
                   score_sumsq, n_fractional
            from v_latest_scores
            where model_id = %(m)s or model_id in (select b.model_id from models b where b.model_type = 'baseline')
            order by dataset_name, model_id""", {"m": model_id}, "dicts"),
        (_MODEL_POINTS, (model_id,), "tuples"),
        ("""select dataset_name, training_step, checkpoint_id, metric_value, n_checkpoints_scored
            from v_best_scores where model_id = %s order by dataset_name""", (model_id,), "dicts"),
    ])
    if not models:
        return None
    model = models[0]
    with_intervals(both)
    own = [r for r in both if r["model_id"] == model_id]
    datasets = {r["dataset_name"] for r in own}
    base = [r for r in both if r["model_id"] != model_id and r["dataset_name"] in datasets]
    by_ds: dict[str, list[dict]] = {}
    for b in base:
        by_ds.setdefault(b["dataset_name"], []).append(b)

    best_base: dict[str, dict] = {}
    for r in own:
        cands = by_ds.get(r["dataset_name"], [])
        if cands:
            sign = 1 if r["is_higher_better"] else -1
            best_base[r["dataset_name"]] = max(cands, key=lambda b: sign * b["metric_value"])
    pstats = {}
    if paired:
        # Every baseline whose run has example rows, like the model's: a paired test (bit counts, cheap).
        pairs = [(b["eval_run_id"], r["eval_run_id"]) for r in own if r["n_graded"]
                 for b in by_ds.get(r["dataset_name"], []) if b["n_graded"]]
        pstats = pair_stats(conn, pairs)

    # Tests: model − baseline (effect > 0 means the model scores higher), one per baseline and
    # dataset; the best baseline's test is that baseline's.
    per_base: dict[str, list[tuple[str, stats.TestResult]]] = {}
    tests_per: dict[tuple[str, str], stats.TestResult] = {}
    for r in own:
        ds = r["dataset_name"]
        for bb in by_ds.get(ds, []):
            t = stats.compare_scores(bb, r, pstats.get((bb["eval_run_id"], r["eval_run_id"])))
            per_base.setdefault(bb["model_id"], []).append((ds, t))
            tests_per[(bb["model_id"], ds)] = t
    best_tests: list[stats.TestResult | None] = [
        tests_per[(best_base[r["dataset_name"]]["model_id"], r["dataset_name"])]
        if r["dataset_name"] in best_base else None for r in own]
    q_best = stats.benjamini_hochberg([t.p_value if t else None for t in best_tests])
    q_per: dict[tuple[str, str], float | None] = {}
    for bm, lst in per_base.items():
        for (ds, _), qv in zip(lst, stats.benjamini_hochberg([t.p_value for _, t in lst])):
            q_per[(bm, ds)] = qv

    # Every scored point of the model, read once: the trends (the last `window` scored checkpoints
    # of each dataset) and the best checkpoint overall both come from it.
    by_cp, steps, ser_by = _group_points(points)

    scores = {}
    for r, t, qv in zip(own, best_tests, q_best):
        ds = r["dataset_name"]
        b = best_base.get(ds)
        pts = _last_points(ser_by, ds, window, higher_better=r["is_higher_better"])
        tr = stats.trend([p[0] for p in pts], [p[1] for p in pts], window=window)
        trend_d = tr.as_dict()
        if not r["is_higher_better"] and tr.label in ("up", "down", "up_slow", "down_slow"):
            trend_d["note"] = "lower is better on this dataset"
        effect = t.effect if t else None
        baselines = []
        for bb in by_ds.get(ds, []):
            bt = tests_per[(bb["model_id"], ds)]
            bq = q_per.get((bb["model_id"], ds))
            baselines.append({"model_id": bb["model_id"], "display_name": bb["display_name"],
                              "value": bb["metric_value"], "metric_name": bb["metric_name"], "n": bb["n"],
                              "ci_lower": bb["ci_lower"], "ci_upper": bb["ci_upper"],
                              "gap": r["metric_value"] - bb["metric_value"], **bt.as_dict(), "q_value": bq,
                              "significance": stats.significance_label(bq, bt.effect, alpha=alpha)})
        scores[ds] = {
            "value": r["metric_value"], "metric_name": r["metric_name"], "ci_lower": r["ci_lower"],
            "ci_upper": r["ci_upper"], "stderr": r["stderr"], "n": r["n"], "interval_method": r["interval_method"],
            "checkpoint_id": r["checkpoint_id"], "training_step": r["training_step"],
            "is_higher_better": r["is_higher_better"],
            "baseline_best": b["metric_value"] if b else None, "baseline_model": b["model_id"] if b else None,
            "gap": (r["metric_value"] - b["metric_value"]) if b else None,
            "significance": stats.significance_label(qv, effect, alpha=alpha) if t else "insufficient_data",
            **(t.as_dict() if t else {"p_value": None, "effect": None, "effect_ci_lower": None,
                                        "effect_ci_upper": None, "test": None}),
            "q_value": qv,
            "trend": tr.label, "trend_detail": trend_d, "baselines": baselines,
        }

    overall = _best_overall(by_cp, steps)
    return {
        "model_id": model["model_id"], "display_name": model["display_name"], "model_type": model["model_type"],
        "latest_checkpoint": model["latest_checkpoint_id"], "latest_step": model["latest_step"],
        "best_overall_step": overall["training_step"] if overall else None,
        "best_overall": overall,
        "best_per_dataset": {r["dataset_name"]: r["training_step"] for r in best_per},
        "best_per_dataset_detail": {r["dataset_name"]: {"training_step": r["training_step"],
                                                        "checkpoint_id": r["checkpoint_id"],
                                                        "value": r["metric_value"],
                                                        "n_checkpoints_scored": r["n_checkpoints_scored"]}
                                    for r in best_per},
        "alpha": alpha, "correction": "benjamini_hochberg across datasets", "trend_window": window,
        "scores": scores,
    }


_MODEL_POINTS = """select checkpoint_id, training_step, array_agg(dataset_name) as datasets,
                          array_agg(case when is_higher_better then metric_value else -metric_value end) as vals
                   from v_current_scores where model_id = %s and is_scored
                   group by training_step, checkpoint_id
                   order by training_step nulls last, checkpoint_id"""




def _group_points(points: list[tuple]) -> tuple[dict, dict, list]:
    """_model_points as {checkpoint: {dataset: signed value}}, {checkpoint: step} and, for the
    checkpoints with a step, [(step, {dataset: signed value})…] in step order."""
    by_cp = {cid: dict(zip(ds, vals)) for cid, _, ds, vals in points}
    steps = {cid: step for cid, step, _, _ in points}
    series = [(step, by_cp[cid]) for cid, step, _, _ in points if step is not None]
    return by_cp, steps, series


def _last_points(series: list, dataset: str, window: int, *, higher_better: bool) -> list[tuple]:
    """The last `window` (step, value) of a dataset in _group_points' series, step ascending (values
    as scored: the sign put on lower-is-better ones taken off again)."""
    out = []
    for step, vals in reversed(series):
        v = vals.get(dataset)
        if v is not None:
            out.append((step, v if higher_better else -v))
            if len(out) == window:
                break
    out.reverse()
    return out




def _best_overall(by_cp: dict[str, dict[str, float]], steps: dict[str, int | None]) -> dict | None:
    if not by_cp:
        return None
    cover: Counter[str] = Counter()  # checkpoints scored per dataset
    for cp in by_cp.values():
        cover.update(cp.keys())
    order = sorted(cover, key=lambda d: (-cover[d], d))
    alive = set(by_cp)
    best_j, best_cps, best_size = 0, set(), -1
    for j, d in enumerate(order, start=1):
        alive = {c for c in alive if d in by_cp[c]}
        if not alive:
            break
        if len(alive) * j >= best_size:
            best_j, best_cps, best_size = j, set(alive), len(alive) * j
    common = sorted(order[:best_j])
    means = sorted(((sum(by_cp[c][d] for d in common) / len(common), steps[c] if steps[c] is not None else -1, c)
                    for c in best_cps), reverse=True)
    mean, _, cid = means[0]
    return {"checkpoint_id": cid, "training_step": steps[cid], "mean_score": mean, "n_datasets": len(common),
            "common_datasets": common, "n_checkpoints_compared": len(best_cps),
            "n_checkpoints_excluded": len(by_cp) - len(best_cps)}
