"""Statistics the SQL views say badly: intervals, tests, multiple-comparison correction, trends.

One module, used by the API, the alert rules and the dashboard. Built on scipy; every
function takes plain numbers so it can be checked against reference values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special as sc
from scipy import stats as st

from .ingest.metrics import is_proportion_metric

Z95 = float(st.norm.ppf(0.975))
ALPHA = 0.05  # the default false discovery rate: the reads' significance and the alert rules


def _two_sided_normal_p(z: float) -> float:
    """2 · P(Z > |z|) for a standard normal Z (= erfc(|z| / √2))."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _mcnemar_p(n_wrong_to_right: int, n_discordant: int) -> float:
    """Two-sided mid-p McNemar p-value: binomial test of the discordant pairs against 1/2, mid-p.

    The exact conditional test is needlessly conservative; the mid-p version keeps its size close
    to nominal (Fagerland, Lydersen & Laake 2013, BMC Med Res Methodol 13:91). The one McNemar of
    the project: diff, diagnosis, alerts and promotion all come here.
    """
    if n_discordant == 0:
        return 1.0
    k = min(n_wrong_to_right, n_discordant - n_wrong_to_right)
    # P(X <= k) - P(X = k) / 2 = (P(X <= k) + P(X <= k - 1)) / 2, doubled.
    lower = float(sc.bdtr(k - 1, n_discordant, 0.5)) if k > 0 else 0.0
    return float(min(1.0, max(0.0, float(sc.bdtr(k, n_discordant, 0.5)) + lower)))


MCNEMAR = "mcnemar_midp"


@lru_cache(maxsize=256)
def _t_crit(dof: int, level: float = 0.95) -> float:
    return float(st.t.ppf(0.5 + level / 2, dof))


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
        """The test as the read API shows it (diff, diagnosis)."""
        return {"p_value": self.p_value, "effect": self.effect, "effect_ci_lower": self.ci_lower,
                "effect_ci_upper": self.ci_upper, "test": self.method}


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
        pval = _two_sided_normal_p(abs(diff) / se0)
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return TestResult(pval, diff, diff - Z95 * se, diff + Z95 * se, "two_proportion_z", n_a, n_b)


def mcnemar_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Paired test on the same examples: mid-p McNemar on discordant pairs (0/1 outcomes).

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
        pval = _mcnemar_p(n01, k)
        method = MCNEMAR
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
    # Step-up BH (as scipy.stats.false_discovery_control(method="bh"), without its per-call overhead).
    ps = np.array([float(p_values[i]) for i in idx])
    m = len(ps)
    order = np.argsort(ps)
    scaled = ps[order] * m / np.arange(1, m + 1)
    adj = np.empty(m)
    adj[order] = np.minimum.accumulate(scaled[::-1])[::-1]
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
    # Ordinary least squares in closed form, in plain floats (what scipy.stats.linregress computes,
    # without its per-call overhead: the diagnosis fits one short line per dataset).
    x = [p[0] / 1000.0 for p in pts]
    y = [p[1] for p in pts]
    n = len(pts)
    dof = n - 2
    xm, ym = sum(x) / n, sum(y) / n
    sxx = sum((a - xm) ** 2 for a in x)
    slope = sum((a - xm) * (b - ym) for a, b in zip(x, y)) / sxx
    sse = sum((b - (ym + slope * (a - xm))) ** 2 for a, b in zip(x, y))
    se = math.sqrt(sse / dof / sxx) if dof > 0 else float("nan")
    tcrit = _t_crit(dof)
    lo, hi = slope - tcrit * se, slope + tcrit * se
    span_change = slope * (max(x) - min(x))
    if not math.isfinite(se):
        pval = None
    elif se == 0:
        pval = 1.0 if slope == 0 else 0.0
    else:
        pval = float(2 * sc.stdtr(dof, -abs(slope / se)))  # stdtr = Student t cdf
    if not (lo > 0 or hi < 0):
        label = "flat"
    elif slope > 0:
        label = "up" if span_change >= fast else "up_slow"
    else:
        label = "down" if -span_change >= fast else "down_slow"
    return Trend(label, slope, (lo, hi), pval, len(pts))




# ------------------------------------------------------------------ read side: vectorised intervals
# The read API puts an interval on hundreds of cells per request: these take arrays and call
# scipy once, instead of once per cell.


def wilson_interval_array(p: Sequence[float], n: Sequence[float], z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95% intervals for arrays of proportions and trial counts (nan where n <= 0)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = z * z
        denom = 1 + z2 / n
        centre = (p + z2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
        lo = np.clip(centre - half, 0.0, 1.0)
        hi = np.clip(centre + half, 0.0, 1.0)
    bad = ~(n > 0) | ~np.isfinite(p)
    lo[bad] = np.nan
    hi[bad] = np.nan
    return lo, hi


def _binom_ppf(q: float, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial quantile, as scipy.stats.binom.ppf computes it (from bdtrik, then one step down if
    the cdf allows), without the distribution object's per-call overhead."""
    with np.errstate(invalid="ignore"):
        k = np.ceil(sc.bdtrik(q, n, p))
        k1 = np.maximum(k - 1, 0)
        out = np.where(sc.bdtr(k1, n, p) >= q, k1, k)
    out = np.where(p <= 0, 0.0, out)
    out = np.where(p >= 1, n, out)
    return np.clip(out, 0, n)


def bootstrap_binary_interval(k: Sequence[float], n: Sequence[float],
                              level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of the mean of n 0/1 outcomes with k successes, without resampling.

    Resampling n outcomes with replacement makes the resampled mean exactly Binomial(n, k/n)/n, so
    the percentile interval is the quantiles of that distribution: the limit of infinitely many
    bootstrap resamples, with no Monte Carlo noise.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    a = (1 - level) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / n, np.nan)
        lo = _binom_ppf(a, n, p) / n
        hi = _binom_ppf(1 - a, n, p) / n
    bad = ~(n > 0)
    lo[bad] = np.nan
    hi[bad] = np.nan
    return lo, hi


_BINARY_CACHE: dict[tuple[float, float], tuple[float, float]] = {}
_BINARY_CACHE_MAX = 200_000


def _cached_binary_intervals(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bootstrap_binary_interval, memoised on (k, n): a pure function of the counts, and the same
    runs are shown again and again (heatmap, leaderboard, diagnosis)."""
    keys = list(zip(k.tolist(), n.tolist()))
    miss = [i for i, key in enumerate(keys) if key not in _BINARY_CACHE]
    if miss:
        lo_m, hi_m = bootstrap_binary_interval(k[miss], n[miss])
        if len(_BINARY_CACHE) + len(miss) > _BINARY_CACHE_MAX:
            _BINARY_CACHE.clear()
        for i, a, b in zip(miss, lo_m.tolist(), hi_m.tolist()):
            _BINARY_CACHE[keys[i]] = (a, b)
    pairs = [_BINARY_CACHE[key] for key in keys]
    return np.array([a for a, _ in pairs], dtype=float), np.array([b for _, b in pairs], dtype=float)


def bootstrap_normal_interval(score_sum: Sequence[float], score_sumsq: Sequence[float], n: Sequence[float],
                              z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap interval of a mean of fractional per-example scores from its sufficient statistics.

    The bootstrap standard error of a mean is exactly the plug-in sd / sqrt(n); the percentile
    interval is then the normal one (CLT). Returns (lower, upper, standard error), clipped to [0, 1].
    """
    s = np.asarray(score_sum, dtype=float)
    s2 = np.asarray(score_sumsq, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        se = np.sqrt(var / n)
        lo = np.clip(mean - z * se, 0.0, 1.0)
        hi = np.clip(mean + z * se, 0.0, 1.0)
    bad = ~(n > 0)
    for arr in (lo, hi, se):
        arr[bad] = np.nan
    return lo, hi, se


def score_intervals(rows: list[dict], *, value_key: str = "metric_value",
                    name_key: str = "metric_name") -> list[dict]:
    """An interval for each score row: bootstrap over examples when the run has example rows,
    else Wilson from n for a proportion metric, else the interval the caller stored (if any).

    Rows carry n, ci_lower, ci_upper, stderr and the example sums of v_current_scores
    (n_examples, n_graded, n_correct, score_sum, score_sumsq, n_fractional). Returns, per row,
    {n, ci_lower, ci_upper, stderr, interval_method}.
    """
    g = [r.get for r in rows]
    cols = score_interval_columns([f(value_key) for f in g], [f(name_key) for f in g], [f("n") for f in g],
                                  [f("ci_lower") for f in g], [f("ci_upper") for f in g], [f("stderr") for f in g],
                                  [f("n_graded") for f in g], [f("score_sum") for f in g],
                                  [f("score_sumsq") for f in g], [f("n_fractional") for f in g])
    keys = ("n", "ci_lower", "ci_upper", "stderr", "interval_method")
    return [dict(zip(keys, t)) for t in zip(*cols)] if rows else []


def score_interval_columns(values: Sequence, names: Sequence, ns: Sequence, ci_lower: Sequence,
                           ci_upper: Sequence, stderr: Sequence, n_graded: Sequence, score_sum: Sequence,
                           score_sumsq: Sequence, n_fractional: Sequence) -> tuple[list, list, list, list, list]:
    """score_intervals() on columns (one sequence per field, rows in the same order): returns the
    columns (n, ci_lower, ci_upper, stderr, interval_method). For callers that fetch tuples."""
    # Default: the caller's own figures ("reported" when it stored any, else no interval).
    out_n, out_lo, out_hi, out_se = list(ns), list(ci_lower), list(ci_upper), list(stderr)
    out_m: list[str | None] = ["reported" if a is not None or b is not None or c is not None else None
                               for a, b, c in zip(ci_lower, ci_upper, stderr)]
    boot_bin, boot_frac, wil = [], [], []
    for i, (v, ng, nf, n) in enumerate(zip(values, n_graded, n_fractional, ns)):
        if v is None:
            continue
        if ng:
            (boot_frac if nf else boot_bin).append(i)
        elif n and is_proportion_metric(names[i] or "", v):
            wil.append(i)

    def fill(idx: list[int], n: np.ndarray, lo: np.ndarray, hi: np.ndarray, se: np.ndarray, method: str) -> None:
        # nan -> None for whole arrays at once, rather than a conversion call per value.
        cols = [np.where(np.isfinite(a), a, None).tolist() for a in (lo, hi, se)]
        for i, nn, a, b, c in zip(idx, n.tolist(), *cols):
            out_n[i], out_lo[i], out_hi[i], out_se[i], out_m[i] = int(nn), a, b, c, method

    if boot_bin:
        n = np.array([n_graded[i] for i in boot_bin], dtype=float)
        # Successes from the score sum: scores are 0/1 here, so this is the correct count.
        k = np.array([score_sum[i] for i in boot_bin], dtype=float)
        lo, hi = _cached_binary_intervals(k, n)
        p = k / n
        fill(boot_bin, n, lo, hi, np.sqrt(p * (1 - p) / n), "bootstrap")
    if boot_frac:
        n = np.array([n_graded[i] for i in boot_frac], dtype=float)
        lo, hi, se = bootstrap_normal_interval([score_sum[i] for i in boot_frac],
                                               [score_sumsq[i] for i in boot_frac], n)
        fill(boot_frac, n, lo, hi, se, "bootstrap")
    if wil:
        p = np.array([values[i] for i in wil], dtype=float)
        n = np.array([ns[i] for i in wil], dtype=float)
        lo, hi = wilson_interval_array(p, n)
        pc = np.clip(p, 0, 1)
        fill(wil, n, lo, hi, np.sqrt(pc * (1 - pc) / n), "wilson")
    return out_n, out_lo, out_hi, out_se, out_m


# ------------------------------------------------------------------ read side: tests from summaries


def mcnemar_from_counts(n_wrong_to_right: int, n_right_to_wrong: int, n_pairs: int) -> TestResult:
    """Mid-p McNemar test from discordant-pair counts; effect = (wrong→right − right→wrong) / n (b − a)."""
    if not n_pairs:
        return TestResult(None, None, None, None, "insufficient_data", 0, 0)
    b, c = int(n_wrong_to_right), int(n_right_to_wrong)
    k = b + c
    pval = _mcnemar_p(b, k)
    diff = (b - c) / n_pairs
    # Wald interval of a paired difference of proportions.
    var = ((b + c) / n_pairs - diff * diff) / n_pairs
    half = Z95 * math.sqrt(max(var, 0.0))
    return TestResult(pval, diff, diff - half, diff + half, MCNEMAR, n_pairs, n_pairs)


def paired_from_sums(diff_sum: float, diff_sumsq: float, n_pairs: int) -> TestResult:
    """Paired t-test of b − a from the sums of per-example differences (fractional scores)."""
    if not n_pairs or n_pairs < 2:
        return TestResult(None, None, None, None, "insufficient_data", n_pairs or 0, n_pairs or 0)
    n = int(n_pairs)
    mean = diff_sum / n
    var = max((diff_sumsq - n * mean * mean) / (n - 1), 0.0)
    sd = math.sqrt(var)
    if sd == 0:
        return TestResult(1.0 if mean == 0 else 0.0, mean, mean, mean, "paired_t", n, n)
    se = sd / math.sqrt(n)
    t = mean / se
    pval = float(2 * sc.stdtr(n - 1, -abs(t)))
    half = _t_crit(n - 1) * se
    return TestResult(pval, mean, mean - half, mean + half, "paired_t", n, n)


def z_test_from_se(v_a: float | None, se_a: float | None, v_b: float | None, se_b: float | None) -> TestResult:
    """Two-sided z-test of b − a for independent estimates with known standard errors."""
    if None in (v_a, se_a, v_b, se_b):
        return TestResult(None, None if v_a is None or v_b is None else v_b - v_a, None, None,
                          "insufficient_data")
    diff = v_b - v_a
    se = math.sqrt(se_a * se_a + se_b * se_b)
    if se == 0:
        return TestResult(1.0 if diff == 0 else 0.0, diff, diff, diff, "z_from_stderr")
    pval = _two_sided_normal_p(abs(diff) / se)
    return TestResult(pval, diff, diff - Z95 * se, diff + Z95 * se, "z_from_stderr")


def compare_scores(a: dict, b: dict, pair: dict | None = None) -> TestResult:
    """b − a for two score rows: paired test on shared examples when given and usable (pair_is_usable),
    else a two-proportion test from counts for proportion metrics with n, else a z-test from standard
    errors. The one comparison of two scores: diff, diagnosis, alerts and promotion call it."""
    va, vb = a.get("metric_value"), b.get("metric_value")
    if va is None or vb is None:
        return TestResult(None, None if va is None or vb is None else vb - va, None, None, "insufficient_data")
    if pair_is_usable(pair, a.get("n_examples"), b.get("n_examples")):
        if pair.get("n_fractional"):
            return paired_from_sums(pair["diff_sum"], pair["diff_sumsq"], pair["n_pairs"])
        return mcnemar_from_counts(pair["n_wrong_to_right"], pair["n_right_to_wrong"], pair["n_pairs"])
    na, nb = a.get("n"), b.get("n")
    if na and nb and is_proportion_metric(a.get("metric_name") or "", va) \
            and is_proportion_metric(b.get("metric_name") or "", vb):
        return two_proportion_test(va, na, vb, nb)
    return z_test_from_se(va, a.get("stderr"), vb, b.get("stderr"))


def tie_groups(rows: list[dict], *, alpha: float = 0.05, higher_better: bool = True) -> list[dict]:
    """Ranks with ties for rows sorted best first: a row joins the current group unless it is
    significantly worse than the group's leader (compare_scores, two-sided p < alpha).

    Returns per row {rank, tie_group, is_tied, p_vs_group_leader}. Rank is the leader's position
    (1-based); rows whose difference cannot be tested tie only when their values are equal.
    """
    out: list[dict] = []
    leader = None
    group = 0
    rank = 0
    for i, r in enumerate(rows):
        p = None
        if leader is None:
            new = True
        else:
            t = compare_scores(rows[leader], r)
            p = t.p_value
            if p is None:
                new = r.get("metric_value") != rows[leader].get("metric_value")
            else:
                new = p < alpha
        if new:
            leader, group, rank = i, group + 1, i + 1
            p = None
        out.append({"rank": rank, "tie_group": group, "p_vs_group_leader": p})
    sizes: dict[int, int] = {}
    for o in out:
        sizes[o["tie_group"]] = sizes.get(o["tie_group"], 0) + 1
    for o in out:
        o["is_tied"] = sizes[o["tie_group"]] > 1
    return out


def mean_with_se(values: Sequence[float], ses: Sequence[float | None]) -> dict:
    """Mean of k scores with the standard error from their own uncertainty: sqrt(sum se²) / k.

    Datasets without a standard error make the interval unknown (None) rather than too narrow.
    """
    vals = [float(v) for v in values]
    k = len(vals)
    if k == 0:
        return {"mean": None, "n_datasets": 0, "stderr": None, "ci_lower": None, "ci_upper": None}
    mean = sum(vals) / k
    if any(s is None for s in ses):
        return {"mean": mean, "n_datasets": k, "stderr": None, "ci_lower": None, "ci_upper": None}
    se = math.sqrt(sum(float(s) ** 2 for s in ses)) / k
    return {"mean": mean, "n_datasets": k, "stderr": se, "ci_lower": mean - Z95 * se, "ci_upper": mean + Z95 * se}


# ------------------------------------------------------------------ tests against the curve (alerts, simulation)

NOT_TESTABLE_NO_N = "no sample count, no example rows and no standard error on at least one side"


def not_testable_reason(a: dict, b: dict, t: TestResult) -> str | None:
    """Why compare_scores(a, b) has no p-value (None when it has one): the reply says `not_testable`."""
    if t.p_value is not None:
        return None
    if a.get("metric_value") is None or b.get("metric_value") is None:
        return "a side has no score"
    if (a.get("metric_name") or "") != (b.get("metric_name") or ""):
        return "different metrics"
    return NOT_TESTABLE_NO_N


def pair_is_usable(pair: dict | None, n_examples_a: int | None, n_examples_b: int | None) -> bool:
    """A paired test needs the examples of both runs to (nearly) coincide: at least 90% of the larger
    run's example rows shared. Partial uploads fall back to the unpaired test until complete."""
    if not pair or not pair.get("n_pairs"):
        return False
    most = max(int(n_examples_a or 0), int(n_examples_b or 0))
    return int(pair["n_pairs"]) >= 0.9 * most


def point_variance(values: np.ndarray, n: np.ndarray, stderr: np.ndarray, proportion: np.ndarray) -> np.ndarray:
    """Sampling variance of each score: p(1-p)/n for proportions with n (p kept half an example away
    from 0 and 1), else the posted standard error squared; nan when neither is known."""
    v = np.asarray(values, dtype=float)
    n = np.asarray(n, dtype=float)
    se = np.asarray(stderr, dtype=float)
    prop = np.asarray(proportion, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = 0.5 / np.where(n > 0, n, np.nan)
        p = np.clip(v, half, 1 - half)
        binom = p * (1 - p) / n
    out = np.where(prop & (n > 0), binom, np.where(se > 0, se * se, np.nan))
    return out


@dataclass(frozen=True)
class CurveConfig:
    """The regression rule's reference (docs/alerts.md): a weighted straight line through the `window`
    checkpoints before the run, evaluated where the run is; runs of 1..max_run checkpoints are scanned
    and the smallest p-value, Bonferroni-corrected for the number scanned, is the dataset's p."""
    window: int = 20
    max_run: int = 3
    min_trend_points: int = 4  # fewer points than this: a flat (weighted mean) reference
    # The fitted slope is damped (multiplied by this) before it is carried forward to the run: a
    # saturating learning curve's average slope over the window exceeds its current slope, and an
    # undamped line would then predict too high and fake drops (docs/alerts.md, "rising").
    damping: float = 0.5
    # Weighted Bonferroni over the run lengths 1, 2, 3 (weights sum to 1): the one-checkpoint test
    # keeps 60% of the level.
    run_weights: tuple[float, ...] = (0.6, 0.2, 0.2)


CURVE = CurveConfig()


def curve_scan(x: Sequence[float], y: Sequence[float], var: Sequence[float],
               cfg: CurveConfig | None = None, resets: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """For every point c of one curve (sorted by x) and run length m = 1..max_run: the mean of points
    c-m+1..c against a reference line fitted (weights 1/var) to the `window` points before the run.

    Returns arrays of shape (T, max_run): effect (run mean - reference), se, z, p (two-sided), n_ref
    (reference points), ref (the reference level at the run). nan where not testable (no reference
    point, or an unknown variance inside the run or the window). Vectorised with prefix sums: the
    worker and the simulation call this same function.

    resets: indices of points where a change was already signalled. A reference window never
    reaches back past the latest one (the curve is judged against its new level), and a run of 2+
    points that contains one is not tested again (the change is already reported).
    """
    cfg = cfg or CURVE
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    var = np.asarray(var, dtype=float)
    T = len(x)
    M = cfg.max_run
    shape = (T, M)
    out = {k: np.full(shape, np.nan) for k in ("effect", "se", "z", "p", "ref")}
    out["n_ref"] = np.zeros(shape, dtype=int)
    if T < 2:
        return out
    # Centre and scale x so the sums keep their precision whatever the step numbers are.
    span = float(np.nanmax(x) - np.nanmin(x)) or 1.0
    xs = (x - x[0]) / span * max(T - 1, 1)
    ok = np.isfinite(var) & (var > 0) & np.isfinite(y)
    w = np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)
    yv = np.where(ok, y, 0.0)
    bad = (~ok).astype(float)

    def prefix(a: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(a)))

    P = {k: prefix(a) for k, a in (("w", w), ("wx", w * xs), ("wxx", w * xs * xs), ("wy", w * yv),
                                   ("wxy", w * xs * yv), ("c", np.ones(T)), ("bad", bad))}
    c = np.arange(T)
    # last_reset[i]: the latest reset strictly before point i (-1 when none).
    mark = np.full(T, -1)
    for r in resets:
        if 0 <= r < T - 1:
            mark[r + 1] = max(mark[r + 1], r)
    last_reset = np.maximum.accumulate(mark)
    for m in range(1, M + 1):
        r0 = c - m + 1  # run = [r0, c]
        e = r0  # window = [s, e)
        s = np.maximum(np.maximum(0, e - cfg.window), last_reset)
        valid = (r0 >= 1) & ~((m > 1) & (last_reset >= r0))
        r0c, ec, sc_ = np.clip(r0, 0, T), np.clip(e, 0, T), np.clip(s, 0, T)

        def win(k: str, ec: np.ndarray = ec, sc_: np.ndarray = sc_) -> np.ndarray:
            return P[k][ec] - P[k][sc_]

        def run(k: str, r0c: np.ndarray = r0c) -> np.ndarray:
            return P[k][c + 1] - P[k][r0c]

        with np.errstate(divide="ignore", invalid="ignore"):
            Sw, Swx, Swxx, Swy, Swxy, cnt = (win(k) for k in ("w", "wx", "wxx", "wy", "wxy", "c"))
            xbar = Swx / Sw
            ybar = Swy / Sw
            Sxx = Swxx - Sw * xbar * xbar
            Sxy = Swxy - Sw * xbar * ybar
            trend = (cnt >= cfg.min_trend_points) & (Sxx > 1e-12 * np.maximum(Sw, 1e-300))
            b = cfg.damping * np.where(trend, Sxy / np.where(trend, Sxx, 1.0), 0.0)
            Rw, Rwx, Rwy = run("w"), run("wx"), run("wy")
            xr = Rwx / Rw
            yr = Rwy / Rw
            ref = ybar + b * (xr - xbar)
            var_ref = 1.0 / Sw + np.where(trend, cfg.damping ** 2 * (xr - xbar) ** 2 / np.where(trend, Sxx, 1.0),
                                          0.0)
            se = np.sqrt(1.0 / Rw + var_ref)
            eff = yr - ref
            z = eff / se
        testable = valid & (cnt >= 1) & (win("bad") == 0) & (run("bad") == 0) & np.isfinite(z)
        j = m - 1
        out["effect"][:, j] = np.where(testable, eff, np.nan)
        out["se"][:, j] = np.where(testable, se, np.nan)
        out["z"][:, j] = np.where(testable, z, np.nan)
        out["ref"][:, j] = np.where(testable, ref, np.nan)
        out["p"][:, j] = np.where(testable, sc.erfc(np.abs(np.where(testable, z, 0.0)) / math.sqrt(2.0)), np.nan)
        out["n_ref"][:, j] = np.where(testable, cnt, 0).astype(int)
    return out


def scan_p(p_runs: np.ndarray, weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per point: (weighted-Bonferroni smallest p over the run lengths scanned, index of that run length).

    The weights of the run lengths that are testable at a point are renormalised to sum to 1, so a
    point with only the one-checkpoint test keeps the full level. nan where none is testable."""
    p = np.asarray(p_runs, dtype=float)
    w = np.asarray(weights if weights is not None else CURVE.run_weights, dtype=float)[:p.shape[1]]
    fin = np.isfinite(p)
    wsum = np.sum(np.where(fin, w, 0.0), axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        adj = np.where(fin, p * wsum / w, np.inf)
    idx = np.argmin(adj, axis=1)
    best = adj[np.arange(len(p)), idx]
    return np.where(fin.any(axis=1), np.minimum(1.0, best), np.nan), idx
