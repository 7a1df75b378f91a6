"""Simulation benchmark of the alert rule (issue 14): seeded, today's rule printed beside the new one.

    .venv/bin/python bench/bench_alert_sim.py [--reps 200] [--seed 14]

The new rule is ingest_api.ops.alerts.judge_curves: the same function the worker calls on stored
curves (no database needed here). "Today's rule" is the rule before issue 14, rebuilt from the same
stats.py tests: each checkpoint against its predecessor only (two-proportion z, or mid-p McNemar on
example rows), BH over the datasets, critical = (q < 0.01 and >= 5 points) or >= 10 points.

Scenarios (n = 500 per dataset, 40 datasets, 60 checkpoints; the watched dataset d0 sits at 0.60):
flat noise; a rising learning curve (every dataset); an 8-point drop at one checkpoint; 5- and 8-point
drops sustained over 3 checkpoints; a slow decline (10 points over the last 30 checkpoints). Each
with and without example rows (with: 500 shared examples, outcomes from a latent-ability model with
about 85-90% agreement between neighbouring checkpoints).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from scipy import special as sc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest_api.ops.alert_rules import Curve, judge_curves
from ingest_api.stats import benjamini_hochberg, compare_scores, pair_is_usable, wilson_interval

N, D, T = 500, 40, 60
METRIC = "accuracy"


def scenario_truth(name: str, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """(true accuracy [T, D], checkpoints where d0 truly drops)."""
    base = rng.uniform(0.3, 0.8, D)
    base[0] = 0.60
    acc = np.tile(base, (T, 1))
    t = np.arange(T)[:, None]
    if name == "rising":
        lo = rng.uniform(0.2, 0.55, D)
        rise = rng.uniform(0.05, 0.25, D)
        acc = lo + rise * (1 - np.exp(-t / rng.uniform(10, 30, D)))
        return acc, []
    if name == "noise":
        return acc, []
    if name == "drop8_single":
        t0 = int(rng.integers(20, T))
        acc[t0, 0] -= 0.08
        return acc, [t0]
    if name in ("drop5_sustained", "drop8_sustained"):
        t0 = int(rng.integers(20, T - 2))
        acc[t0:t0 + 3, 0] -= 0.05 if name == "drop5_sustained" else 0.08
        return acc, [t0, t0 + 1, t0 + 2]
    if name == "slow_decline":
        acc[30:, 0] -= np.linspace(0, 0.10, T - 30)
        return acc, list(range(31, T))
    raise ValueError(name)


def draw(acc: np.ndarray, rng: np.random.Generator, examples: bool):
    """Observed scores [T, D] and, with examples, McNemar counts of each checkpoint vs the previous."""
    if not examples:
        return rng.binomial(N, acc) / N, None
    # Latent ability model: example i is right at checkpoint t when z_i + e_ti < c_t·sqrt(1 + s²),
    # z ~ N(0,1), e ~ N(0, s²): the marginal accuracy is exactly acc; s sets the agreement.
    s = 0.35
    z = rng.standard_normal((D, N))
    cut = sc.ndtri(np.clip(acc, 1e-6, 1 - 1e-6)) * math.sqrt(1 + s * s)  # [T, D]
    right = (z[None, :, :] + s * rng.standard_normal((T, D, N))) < cut[:, :, None]
    scores = right.mean(axis=2)
    n01 = ((~right[:-1]) & right[1:]).sum(axis=2)  # wrong -> right, [T-1, D]
    n10 = (right[:-1] & (~right[1:])).sum(axis=2)
    return scores, (n01, n10)


def curves_of(scores: np.ndarray, pairs) -> list[Curve]:
    out = []
    cks = [f"c{t}" for t in range(T)]
    steps = [1000 * (t + 1) for t in range(T)]
    for d in range(D):
        rows = [{"metric_name": METRIC, "metric_value": float(scores[t, d]), "n": N, "stderr": None,
                 "eval_run_id": f"r{t}-{d}", "n_examples": N if pairs is not None else 0} for t in range(T)]
        c = Curve(f"d{d}", cks, steps, rows)
        if pairs is not None:
            n01, n10 = pairs
            c.pairs = {t: {"n_pairs": N, "n_wrong_to_right": int(n01[t - 1, d]), "n_right_to_wrong": int(n10[t - 1, d]),
                           "n_fractional": 0} for t in range(1, T)}
        out.append(c)
    return out


def new_rule(scores, pairs) -> dict[tuple[int, int], str]:
    """{(checkpoint, dataset): severity} of the regression alerts of the new rule."""
    fam = {f"c{t}": D for t in range(T)}
    got = judge_curves(curves_of(scores, pairs), fam, critical_default=5.0)
    return {(int(ck[1:]), int(ds[1:])): j.severity for (typ, ck, ds), j in got.items() if typ == "regression"}


def todays_rule(scores, pairs) -> dict[tuple[int, int], str]:
    out = {}
    for t in range(1, T):
        tests = []
        for d in range(D):
            a = {"metric_name": METRIC, "metric_value": float(scores[t - 1, d]), "n": N}
            b = {"metric_name": METRIC, "metric_value": float(scores[t, d]), "n": N}
            pair = None
            if pairs is not None:
                pair = {"n_pairs": N, "n_wrong_to_right": int(pairs[0][t - 1, d]),
                        "n_right_to_wrong": int(pairs[1][t - 1, d]), "n_fractional": 0}
                pair = pair if pair_is_usable(pair, N, N) else None
            tests.append(compare_scores(a, b, pair))
        qs = benjamini_hochberg([x.p_value for x in tests])
        for d, (x, q) in enumerate(zip(tests, qs)):
            if q is None or q >= 0.05 or x.effect >= 0 or scores[t, d] >= scores[:t, d].max():
                continue
            pts = -x.effect * 100
            out[(t, d)] = "critical" if pts >= 10 or (q < 0.01 and pts >= 5) else "warning"
    return out


def run(reps: int, seed: int) -> list[dict]:
    rows = []
    for examples in (False, True):
        for name in ("noise", "rising", "drop8_single", "drop5_sustained", "drop8_sustained", "slow_decline"):
            rng = np.random.default_rng([seed, zlib.crc32(name.encode()), int(examples)])
            acc_counts = {"new": [0, 0, 0], "today": [0, 0, 0]}  # any regression, critical, caught
            units = 0
            t0 = time.perf_counter()
            for _ in range(reps):
                acc, drops = scenario_truth(name, rng)
                scores, pairs = draw(acc, rng, examples)
                for rule, fn in (("new", new_rule), ("today", todays_rule)):
                    got = fn(scores, pairs)
                    if drops:
                        # caught: a regression on d0 at a dropped checkpoint by the third (or, for the slow
                        # decline, anywhere in it).
                        window = drops[:3] if name != "slow_decline" else drops
                        acc_counts[rule][2] += any((t, 0) in got for t in window)
                    else:
                        ts = {t for t, _ in got}
                        crit = {t for (t, _), sev in got.items() if sev == "critical"}
                        acc_counts[rule][0] += len(ts)
                        acc_counts[rule][1] += len(crit)
                units += (T - 1) if not drops else 1
            row = {"scenario": name, "examples": examples, "reps": reps, "seconds": round(time.perf_counter() - t0, 1)}
            for rule, (anyr, crit, caught) in acc_counts.items():
                if drops:
                    row[rule] = {"caught": _rate(caught, units)}
                else:
                    row[rule] = {"any_regression": _rate(anyr, units), "critical": _rate(crit, units)}
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _rate(k: int, n: int) -> dict:
    lo, hi = wilson_interval(k / n, n)
    return {"k": k, "n": n, "rate": k / n, "ci": [lo, hi]}


def _fmt(r: dict) -> str:
    return f"{100 * r['rate']:5.1f}% [{100 * r['ci'][0]:.1f}, {100 * r['ci'][1]:.1f}]"


def _line(row: dict) -> str:
    ex = "with examples" if row["examples"] else "no examples  "
    parts = []
    for k in row["new"]:
        parts.append(f"{k}: new {_fmt(row['new'][k])} | today {_fmt(row['today'][k])}")
    return f"{row['scenario']:16s} {ex}  " + "; ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    print(f"alert simulation: n={N}, {D} datasets, {T} checkpoints, {a.reps} runs per scenario, seed {a.seed}; "
          "rates with 95% Wilson intervals (Monte-Carlo)")
    rows = run(a.reps, a.seed)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
