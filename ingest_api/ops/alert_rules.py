"""The alert rule itself, pure: curves in, judgements out (no database). ops/alerts.py reads the curves
and writes what this decides; bench/bench_alert_sim.py calls the same judge_curves on simulated curves.
The rule is explained at the top of ops/alerts.py and in docs/alerts.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.settings import get_settings
from ..ingest import metrics as M
from ..stats import (
    ALPHA,
    CURVE,
    CurveConfig,
    TestResult,
    benjamini_hochberg,
    compare_scores,
    curve_scan,
    pair_is_usable,
    point_variance,
    scan_p,
    significance_label,
)
from .alert_store import Judgement

STRONG = ALPHA / 10  # "strong evidence" for a critical regression
MANAGED = ("regression", "improvement", "new_best")
MISSING = "missing_evaluation"
RUN_NAMES = {1: "this checkpoint", 2: "the last 2 checkpoints", 3: "the last 3 checkpoints"}


# ------------------------------------------------------------------ the pure part (the simulation calls it too)


@dataclass
class Curve:
    """One (model, dataset, metric) series, sorted by step: what the judge reads for a dataset."""

    dataset: str
    checkpoint_ids: list[str]
    steps: list[int]
    rows: list[dict]  # per point: metric_name, metric_value, n, stderr, eval_run_id, n_examples, n_fractional
    higher_is_better: bool = True
    critical_points: float | None = None
    # pairs[i]: paired counts of point i-1 -> i (v_example_pair_stats row), when both have example rows
    pairs: dict[int, dict] = field(default_factory=dict)


def _points(effect: float, ref: float, cur: float) -> float:
    """An effect in points: metrics in [0, 1] are scaled by 100; others are taken as already in points."""
    scale = 100.0 if max(abs(ref), abs(cur)) <= 1.0 else 1.0
    return abs(effect) * scale


def regression_severity(q: float, drop_points: float, critical_points: float) -> str:
    """critical = large (>= critical_points) AND strongly evidenced (q < STRONG); else warning."""
    return "critical" if drop_points >= critical_points and q < STRONG else "warning"


@dataclass
class _Cell:
    curve: Curve
    i: int
    p: float
    effect: float
    run: int
    test: TestResult | None
    ref: float | None
    n_ref: int


def curve_cells(curve: Curve, cfg: CurveConfig | None = None, resets: Sequence[int] = ()) -> list[_Cell | None]:
    """The test of every point of one curve (None: not testable). Pure; vectorised over the curve."""
    rows = curve.rows
    T = len(rows)
    vals = np.array([float(r["metric_value"]) for r in rows])
    n = np.array([r.get("n") or 0 for r in rows], dtype=float)
    se = np.array([r.get("stderr") if r.get("stderr") is not None else np.nan for r in rows], dtype=float)
    prop = np.array([M.is_proportion_metric(r.get("metric_name") or "", r["metric_value"]) for r in rows])
    var = point_variance(vals, n, se, prop)
    scan = curve_scan(np.asarray(curve.steps, dtype=float), vals, var, cfg, resets)
    p = scan["p"].copy()
    eff = scan["effect"].copy()
    tests: dict[int, TestResult] = {}
    for i in range(1, T):
        pair = curve.pairs.get(i)
        usable = pair_is_usable(pair, rows[i - 1].get("n_examples"), rows[i].get("n_examples"))
        if usable or scan["n_ref"][i, 0] == 1:
            # The one-checkpoint test is the pairwise test of /api/diff when it is paired (more power than
            # the curve) or when the curve before is a single point (then the two are the same question).
            t = compare_scores(rows[i - 1], rows[i], pair)
            if t.p_value is not None and t.effect is not None:
                tests[i] = t
                p[i, 0], eff[i, 0] = t.p_value, t.effect
    pc, idx = scan_p(p, (cfg or CURVE).run_weights)
    out: list[_Cell | None] = [None] * T
    for i in range(1, T):
        if not math.isfinite(pc[i]):
            continue
        j = int(idx[i])
        e = float(eff[i, j])
        if not math.isfinite(e):
            continue
        ref = scan["ref"][i, j]
        out[i] = _Cell(curve, i, float(pc[i]), e, j + 1, tests.get(i) if j == 0 else None,
                       float(ref) if math.isfinite(ref) else float(vals[i] - e), int(scan["n_ref"][i, j]) or 1)
    return out


def judge_curves(curves: Sequence[Curve], family: dict[str, int] | None = None, *, alpha: float = ALPHA,
                 critical_default: float | None = None,
                 cfg: CurveConfig | None = None) -> dict[tuple[str, str, str | None], Judgement]:
    """Every managed alert the curves of one model call for: {(type, checkpoint, dataset): judgement}.

    family: per checkpoint, datasets in its correction family (at least its tested cells; the extra
    ones count as p = 1). The worker and the simulation call this same function.
    """
    crit_default = get_settings().alert_critical_points if critical_default is None else critical_default
    # Two passes: the first finds where the curves changed; the second judges every point against the
    # level after the latest earlier change (one drop is one alert, not a cascade down the window).
    flagged = _flag(curves, first := [curve_cells(c, cfg) for c in curves], family, alpha)
    # Only drops reset the level: a high outlier flagged as an improvement must not become the
    # reference the next checkpoints are measured against.
    resets = [sorted(i for (k, i) in flagged if k == n and _is_drop(curves[n], first[n][i].effect))
              for n in range(len(curves))]
    cells = [curve_cells(c, cfg, r) if r else f for c, r, f in zip(curves, resets, first)]
    out: dict[tuple[str, str, str | None], Judgement] = {}
    for (n, i), (q, m) in _flag(curves, cells, family, alpha).items():
        c = cells[n][i]
        for j in _judgements(c, q, m, alpha, crit_default):
            out[(j.alert_type, curves[n].checkpoint_ids[i], j.dataset)] = j
    return out


def _is_drop(curve: Curve, effect: float) -> bool:
    return effect < 0 if curve.higher_is_better else effect > 0


def _flag(curves: Sequence[Curve], cells: list[list[_Cell | None]], family: dict[str, int] | None,
          alpha: float) -> dict[tuple[int, int], tuple[float, int]]:
    """{(curve index, point index): (q, family size)} of the cells significant after BH per checkpoint."""
    by_ck: dict[str, list[tuple[int, _Cell]]] = {}
    for n, (curve, per) in enumerate(zip(curves, cells)):
        for cell in per:
            if cell is not None:
                by_ck.setdefault(curve.checkpoint_ids[cell.i], []).append((n, cell))
    out: dict[tuple[int, int], tuple[float, int]] = {}
    for ck, group in by_ck.items():
        m = max((family or {}).get(ck, 0), len(group))
        ps = [c.p for _, c in group]
        if min(ps) * m >= alpha:  # BH rejects nothing unless the smallest p passes alpha / m
            continue
        qs = benjamini_hochberg(ps + [1.0] * (m - len(group)))[:len(group)]
        for (n, c), q in zip(group, qs):
            if q is not None and q < alpha and c.effect != 0:
                out[(n, c.i)] = (q, m)
    return out


def _judgements(c: _Cell, q: float, m: int, alpha: float, crit_default: float) -> list[Judgement]:
    curve, i = c.curve, c.i
    rows, hib = curve.rows, curve.higher_is_better
    cur, prev = rows[i], rows[i - 1]
    v, pv = float(cur["metric_value"]), float(prev["metric_value"])
    earlier = [float(r["metric_value"]) for r in rows[:i]]
    best_i = max(range(i), key=lambda k: (earlier[k] if hib else -earlier[k], -k))
    best = earlier[best_i]
    good = c.effect if hib else -c.effect
    pts = _points(c.effect, c.ref, v)
    below_best = best > v if hib else best < v
    above_best = v > best if hib else v < best
    t = c.test
    method = t.method if t is not None else ("curve_z" if c.n_ref > 1 else "z")
    if t is None:
        lo = hi = None
    else:
        lo, hi = t.ci_lower, t.ci_upper
    ref_desc = ("the previous checkpoint" if c.test is not None else
                f"the curve over {c.n_ref} earlier checkpoints")
    detail = {
        "metric": cur.get("metric_name"), "value": v, "step": curve.steps[i], "n": cur.get("n"),
        "previous": {"checkpoint_id": curve.checkpoint_ids[i - 1], "step": curve.steps[i - 1], "value": pv,
                     "n": prev.get("n")},
        "best_so_far": {"checkpoint_id": curve.checkpoint_ids[best_i], "step": curve.steps[best_i], "value": best},
        "reference": {"kind": "previous_checkpoint" if c.test is not None else "curve", "value": c.ref,
                      "n_checkpoints": c.n_ref, "run_length": c.run, "run": RUN_NAMES.get(c.run)},
        "p_value": c.p, "effect": c.effect, "method": method, "n_a": prev.get("n"), "n_b": cur.get("n"),
        "effect_ci_lower": lo, "effect_ci_upper": hi, "q_value": q, "alpha": alpha, "family_size": m,
        "effect_points": pts, "higher_is_better": hib,
        "significance": significance_label(q, c.effect, alpha=alpha),
    }
    how = f"{method} vs {ref_desc}, n={cur.get('n')}, p={c.p:.2g}, q={q:.2g} over {m} datasets"
    what = RUN_NAMES.get(c.run, "")
    ds, metric = curve.dataset, cur.get("metric_name")
    out = []
    if good < 0 and below_best:
        crit = curve.critical_points if curve.critical_points is not None else crit_default
        detail["critical_points"] = crit
        sev = regression_severity(q, pts, crit)
        tail = "" if c.run == 1 else f" (sustained over {what})"
        out.append(Judgement("regression", ds, sev,
                             f"{ds}: {metric} fell to {v:.4g} at step {curve.steps[i]} from {c.ref:.4g} expected "
                             f"(previous {pv:.4g} at step {curve.steps[i - 1]}), {pts:.1f} points{tail} ({how})",
                             detail))
    elif good > 0:
        out.append(Judgement("improvement", ds, "info",
                             f"{ds}: {metric} rose to {v:.4g} at step {curve.steps[i]} from {c.ref:.4g} expected "
                             f"(previous {pv:.4g} at step {curve.steps[i - 1]}), {pts:.1f} points ({how})", detail))
        if above_best:
            out.append(Judgement("new_best", ds, "info",
                                 f"{ds}: new best {metric} {v:.4g} at step {curve.steps[i]}, previous best "
                                 f"{best:.4g} at step {curve.steps[best_i]} ({how})", detail))
    return out
