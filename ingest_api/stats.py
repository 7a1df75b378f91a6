"""Statistics the SQL views say badly: intervals, tests, multiple-comparison correction, trends.

One module, used by the API, the alert rules and the dashboard. Built on scipy; every
function takes plain numbers so it can be checked against reference values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as st

Z95 = float(st.norm.ppf(0.975))


def wilson_interval(p: float | None, n: int | None, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion p observed on n trials (95% by default)."""
    if p is None or n is None or n <= 0 or not math.isfinite(p):
        return None, None
    p = min(max(p, 0.0), 1.0)
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_stderr(p: float | None, n: int | None) -> float | None:
    if p is None or n is None or n <= 0 or not math.isfinite(p):
        return None
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n)


@dataclass(frozen=True)
class TestResult:
    p_value: float | None
    effect: float | None  # b - a (difference of proportions)
    ci_lower: float | None  # interval of the difference
    ci_upper: float | None
    method: str
    n_a: int | None = None
    n_b: int | None = None

    def as_dict(self) -> dict:
        return {"p_value": self.p_value, "effect": self.effect, "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper, "method": self.method, "n_a": self.n_a, "n_b": self.n_b}


def two_proportion_test(p_a: float | None, n_a: int | None, p_b: float | None, n_b: int | None) -> TestResult:
    """Two-sided pooled z-test for p_b - p_a from independent samples; Newcombe-free Wald CI of the gap."""
    if None in (p_a, n_a, p_b, n_b) or not n_a or not n_b or n_a <= 0 or n_b <= 0 \
            or not math.isfinite(p_a) or not math.isfinite(p_b):
        return TestResult(None, None if p_a is None or p_b is None else p_b - p_a, None, None,
                          "insufficient_data", n_a, n_b)
    diff = p_b - p_a
    pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se0 == 0:
        pval = 1.0 if diff == 0 else 0.0
    else:
        pval = float(2 * st.norm.sf(abs(diff) / se0))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return TestResult(pval, diff, diff - Z95 * se, diff + Z95 * se, "two_proportion_z", n_a, n_b)


def mcnemar_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Paired test on the same examples: exact McNemar on discordant pairs (0/1 outcomes).

    Fractional per-example scores (mean over generations) fall back to a paired t-test on
    the differences, which is what McNemar approximates for 0/1 data.
    """
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    n = int(min(len(xa), len(xb)))
    if n == 0:
        return TestResult(None, None, None, None, "insufficient_data", 0, 0)
    d = xb - xa
    diff = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    half = Z95 * sd / math.sqrt(n) if n > 1 else float("nan")
    binary = np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all()
    if binary:
        n01 = int(((xa == 0) & (xb == 1)).sum())  # wrong -> right
        n10 = int(((xa == 1) & (xb == 0)).sum())  # right -> wrong
        k = n01 + n10
        pval = 1.0 if k == 0 else float(st.binomtest(n01, k, 0.5).pvalue)
        method = "mcnemar_exact"
    else:
        if sd == 0:
            pval = 1.0 if diff == 0 else 0.0
        else:
            pval = float(st.ttest_rel(xb, xa).pvalue)
        method = "paired_t"
    return TestResult(pval, diff, diff - half if n > 1 else None, diff + half if n > 1 else None, method, n, n)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """BH-adjusted q-values, in input order; None stays None (and is not counted)."""
    idx = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    if not idx:
        return out
    adj = st.false_discovery_control([float(p_values[i]) for i in idx], method="bh")
    for i, q in zip(idx, adj):
        out[i] = float(min(1.0, q))
    return out


def significance_label(q_value: float | None, effect: float | None, *, alpha: float = 0.05,
                       min_effect: float = 0.0) -> str:
    """The front end's labels: likely_real / likely_noise / uncertain / insufficient_data."""
    if q_value is None or effect is None:
        return "insufficient_data"
    if q_value < alpha and abs(effect) >= min_effect:
        return "likely_real"
    if q_value > 0.5:
        return "likely_noise"
    return "uncertain"


@dataclass(frozen=True)
class Trend:
    label: str  # up, down, up_slow, down_slow, flat, new
    slope_per_1k_steps: float | None
    slope_ci: tuple[float | None, float | None]
    p_value: float | None
    n_points: int

    def as_dict(self) -> dict:
        return {"label": self.label, "slope_per_1k_steps": self.slope_per_1k_steps,
                "slope_ci_lower": self.slope_ci[0], "slope_ci_upper": self.slope_ci[1],
                "p_value": self.p_value, "n_points": self.n_points}


def trend(steps: Sequence[float], values: Sequence[float | None], *, window: int = 5,
          ses: Sequence[float | None] | None = None, fast: float = 0.01) -> Trend:
    """Trend over the last `window` checkpoints: a fitted (weighted) least-squares slope with its CI.

    "up"/"down": slope CI excludes 0 and the fitted change over the window is at least `fast`;
    "up_slow"/"down_slow": CI excludes 0 but the change is smaller; "flat": CI contains 0;
    "new": fewer than 3 points.
    """
    pts = [(float(s), float(v), (ses[i] if ses else None))
           for i, (s, v) in enumerate(zip(steps, values))
           if v is not None and s is not None and math.isfinite(v)]
    pts.sort(key=lambda t: t[0])
    pts = pts[-window:]
    if len(pts) < 3 or len({p[0] for p in pts}) < 2:
        return Trend("new", None, (None, None), None, len(pts))
    x = np.array([p[0] for p in pts]) / 1000.0
    y = np.array([p[1] for p in pts])
    res = st.linregress(x, y)
    slope, se = float(res.slope), float(res.stderr)
    dof = len(pts) - 2
    tcrit = float(st.t.ppf(0.975, dof))
    lo, hi = slope - tcrit * se, slope + tcrit * se
    span_change = slope * float(x.max() - x.min())
    pval = float(res.pvalue) if math.isfinite(res.pvalue) else None
    if not (lo > 0 or hi < 0):
        label = "flat"
    elif slope > 0:
        label = "up" if span_change >= fast else "up_slow"
    else:
        label = "down" if -span_change >= fast else "down_slow"
    return Trend(label, slope, (lo, hi), pval, len(pts))


def bootstrap_mean_ci(values: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of a mean over examples (scipy.stats.bootstrap)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return None, None
    if arr.size == 1 or np.all(arr == arr[0]):
        return float(arr[0]), float(arr[0])
    res = st.bootstrap((arr,), np.mean, n_resamples=n_boot, confidence_level=level,
                       method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
