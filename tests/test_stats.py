"""ingest_api.stats against reference values computed here with scipy / numpy (not with the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from ingest_api import stats


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 100), (812, 1000), (1, 3)])
def test_wilson_array_matches_scipy(k, n):
    ref = st.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = stats.wilson_interval_array([k / n], [n])
    assert lo[0] == pytest.approx(ref.low, abs=1e-12)
    assert hi[0] == pytest.approx(ref.high, abs=1e-12)
    assert stats.wilson_interval(k / n, n) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_array_no_trials_is_nan():
    lo, hi = stats.wilson_interval_array([0.5, 0.5], [0, 10])
    assert math.isnan(lo[0]) and math.isnan(hi[0]) and not math.isnan(lo[1])


@pytest.mark.parametrize("k,n", [(30, 50), (7, 40), (120, 200)])
def test_bootstrap_binary_matches_resampling(k, n):
    # Independent reference: scipy's percentile bootstrap on the actual 0/1 data, many resamples.
    data = np.array([1.0] * k + [0.0] * (n - k))
    res = st.bootstrap((data,), np.mean, n_resamples=40_000, method="percentile", confidence_level=0.95,
                       random_state=np.random.default_rng(1), vectorized=True)
    lo, hi = stats.bootstrap_binary_interval([k], [n])
    # Means of n 0/1 values live on a grid of 1/n: the exact quantile is within one step.
    assert abs(lo[0] - res.confidence_interval.low) <= 1.0 / n + 1e-12
    assert abs(hi[0] - res.confidence_interval.high) <= 1.0 / n + 1e-12


def test_bootstrap_binary_is_binomial_quantile():
    lo, hi = stats.bootstrap_binary_interval([30], [50])
    assert lo[0] == st.binom(50, 0.6).ppf(0.025) / 50
    assert hi[0] == st.binom(50, 0.6).ppf(0.975) / 50


def test_bootstrap_normal_matches_plugin_standard_error():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 9, 300) / 8.0  # fractional scores: mean over 8 generations
    se_ref = x.std(ddof=0) / math.sqrt(len(x))
    lo, hi, se = stats.bootstrap_normal_interval([x.sum()], [(x * x).sum()], [len(x)])
    assert se[0] == pytest.approx(se_ref, rel=1e-9)
    z = st.norm.ppf(0.975)
    assert (lo[0], hi[0]) == pytest.approx((x.mean() - z * se_ref, x.mean() + z * se_ref), rel=1e-9)
    # and close to an actual bootstrap
    res = st.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile",
                       random_state=np.random.default_rng(2), vectorized=True)
    assert res.standard_error == pytest.approx(se_ref, rel=0.05)


@pytest.mark.parametrize("b,c,n", [(10, 3, 100), (0, 0, 50), (25, 25, 200), (1, 12, 40)])
def test_mcnemar_from_counts_matches_mid_p_binomial(b, c, n):
    t = stats.mcnemar_from_counts(b, c, n)
    k = min(b, c)
    ref = 1.0 if b + c == 0 else min(1.0, 2 * (st.binom.cdf(k, b + c, 0.5) - 0.5 * st.binom.pmf(k, b + c, 0.5)))
    assert t.p_value == pytest.approx(ref, rel=1e-9)
    assert t.effect == pytest.approx((b - c) / n)
    assert t.method == "mcnemar_midp"


def test_mcnemar_from_counts_agrees_with_arrays():
    rng = np.random.default_rng(5)
    a = (rng.random(300) < 0.5).astype(float)
    b = np.where(rng.random(300) < 0.2, 1 - a, a)
    n01 = int(((a == 0) & (b == 1)).sum())
    n10 = int(((a == 1) & (b == 0)).sum())
    assert stats.mcnemar_from_counts(n01, n10, 300).p_value == pytest.approx(stats.mcnemar_test(a, b).p_value)


def test_paired_from_sums_matches_ttest_rel():
    rng = np.random.default_rng(9)
    a = rng.integers(0, 5, 80) / 4.0
    b = np.clip(a + rng.normal(0.05, 0.2, 80), 0, 1)
    d = b - a
    t = stats.paired_from_sums(d.sum(), (d * d).sum(), len(d))
    ref = st.ttest_rel(b, a)
    assert t.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    ci = ref.confidence_interval(0.95)
    assert (t.ci_lower, t.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-7)


def test_two_proportion_matches_chi_square_without_correction():
    k1, n1, k2, n2 = 45, 100, 62, 110
    t = stats.two_proportion_test(k1 / n1, n1, k2 / n2, n2)
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    ref = st.chi2_contingency(table, correction=False)
    assert t.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert t.effect == pytest.approx(k2 / n2 - k1 / n1)


def test_z_test_from_se():
    t = stats.z_test_from_se(0.5, 0.03, 0.6, 0.04)
    z = 0.1 / math.hypot(0.03, 0.04)
    assert t.p_value == pytest.approx(2 * st.norm.sf(z))
    assert stats.z_test_from_se(0.5, None, 0.6, 0.04).method == "insufficient_data"


def _bh_reference(p):
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p)
    q = np.empty(m)
    prev = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        prev = min(prev, p[i] * m / rank)
        q[i] = prev
    return q


def test_benjamini_hochberg_matches_step_up_reference():
    p = [0.01, 0.04, 0.03, 0.2, 0.5, 0.001]
    assert stats.benjamini_hochberg(p) == pytest.approx(list(_bh_reference(p)))
    out = stats.benjamini_hochberg([0.01, None, 0.04])
    assert out[1] is None and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.04)


def test_trend_matches_linregress():
    steps = [1000, 2000, 3000, 4000, 5000, 6000]
    values = [0.40, 0.43, 0.45, 0.49, 0.50, 0.55]
    tr = stats.trend(steps, values, window=5)
    x = np.array(steps[-5:]) / 1000
    ref = st.linregress(x, values[-5:])
    tcrit = st.t.ppf(0.975, 3)
    assert tr.slope_per_1k_steps == pytest.approx(ref.slope)
    assert tr.slope_ci == pytest.approx((ref.slope - tcrit * ref.stderr, ref.slope + tcrit * ref.stderr))
    assert tr.label == "up" and tr.n_points == 5
    assert stats.trend([1, 2], [0.1, 0.2]).label == "new"
    flat = stats.trend([1000, 2000, 3000, 4000, 5000], [0.5, 0.52, 0.49, 0.51, 0.5])
    assert flat.label == "flat"


def test_tie_groups_from_two_proportion_tests():
    rows = [{"metric_value": 0.80, "n": 1000, "metric_name": "accuracy"},
            {"metric_value": 0.79, "n": 1000, "metric_name": "accuracy"},   # not separable from 0.80
            {"metric_value": 0.60, "n": 1000, "metric_name": "accuracy"},   # clearly worse
            {"metric_value": 0.59, "n": 1000, "metric_name": "accuracy"},
            {"metric_value": 0.30, "n": None, "metric_name": "accuracy"}]   # no n: cannot tie unless equal
    out = stats.tie_groups(rows)
    assert [o["rank"] for o in out] == [1, 1, 3, 3, 5]
    assert [o["tie_group"] for o in out] == [1, 1, 2, 2, 3]
    assert [o["is_tied"] for o in out] == [True, True, True, True, False]
    ref = st.chi2_contingency(np.array([[800, 200], [790, 210]]), correction=False).pvalue
    assert out[1]["p_vs_group_leader"] == pytest.approx(ref)


def test_mean_with_se():
    m = stats.mean_with_se([0.5, 0.7], [0.03, 0.04])
    assert m["mean"] == pytest.approx(0.6)
    assert m["stderr"] == pytest.approx(0.05 / 2)
    assert stats.mean_with_se([0.5], [None])["ci_lower"] is None
    assert stats.mean_with_se([], [])["mean"] is None


def test_score_intervals_pick_the_right_method():
    rows = [
        # example rows, 0/1: bootstrap (exact binomial quantiles)
        {"metric_value": 0.6, "metric_name": "accuracy", "n": 50, "n_graded": 50, "score_sum": 30.0,
         "score_sumsq": 30.0, "n_fractional": 0},
        # sample count only, proportion metric: Wilson
        {"metric_value": 0.6, "metric_name": "accuracy (avg over 4)", "n": 50},
        # not a proportion (rougeL) with a reported interval: kept as reported
        {"metric_value": 12.5, "metric_name": "summarization rougeL", "n": 50, "ci_lower": 11.0, "ci_upper": 14.0},
        # nothing known
        {"metric_value": 0.6, "metric_name": "accuracy"},
    ]
    out = stats.score_intervals(rows)
    assert [o["interval_method"] for o in out] == ["bootstrap", "wilson", "reported", None]
    assert out[0]["ci_lower"] == st.binom(50, 0.6).ppf(0.025) / 50
    ref = st.binomtest(30, 50).proportion_ci(method="wilson")
    assert (out[1]["ci_lower"], out[1]["ci_upper"]) == pytest.approx((ref.low, ref.high))
    assert (out[2]["ci_lower"], out[2]["ci_upper"]) == (11.0, 14.0)


def test_score_interval_columns_agree_with_the_row_form():
    rows = [
        {"metric_value": 0.6, "metric_name": "accuracy", "n": 50, "n_graded": 50, "score_sum": 30.0,
         "score_sumsq": 30.0, "n_fractional": 0},
        {"metric_value": 0.55, "metric_name": "accuracy", "n": None, "n_graded": 40, "score_sum": 22.0,
         "score_sumsq": 15.5, "n_fractional": 12},
        {"metric_value": 0.6, "metric_name": "accuracy (avg over 4)", "n": 50},
        {"metric_value": 12.5, "metric_name": "summarization rougeL", "n": 50, "ci_lower": 11.0, "ci_upper": 14.0},
        {"metric_value": None, "metric_name": "accuracy", "n": 7, "stderr": 0.1},
        {"metric_value": 0.6, "metric_name": "accuracy"},
    ]
    keys = ("metric_value", "metric_name", "n", "ci_lower", "ci_upper", "stderr", "n_graded", "score_sum",
            "score_sumsq", "n_fractional")
    cols = stats.score_interval_columns(*([r.get(k) for r in rows] for k in keys))
    as_rows = [dict(zip(("n", "ci_lower", "ci_upper", "stderr", "interval_method"), t)) for t in zip(*cols)]
    assert as_rows == stats.score_intervals(rows)
    assert [r["interval_method"] for r in as_rows] == ["bootstrap", "bootstrap", "wilson", "reported", "reported",
                                                       None]
    assert as_rows[1]["n"] == 40 and as_rows[4]["n"] == 7
    assert stats.score_interval_columns(*([] for _ in keys)) == ([], [], [], [], [])


def test_benjamini_hochberg_matches_scipy_on_random_p_values():
    rng = np.random.default_rng(8)
    p = rng.random(50) ** 3
    assert stats.benjamini_hochberg(list(p)) == pytest.approx(list(st.false_discovery_control(p, method="bh")))


def test_trend_p_value_matches_linregress():
    steps = [1000, 2000, 3000, 4000, 5000]
    values = [0.40, 0.43, 0.41, 0.47, 0.46]
    assert stats.trend(steps, values).p_value == pytest.approx(st.linregress(np.array(steps) / 1000, values).pvalue)


@pytest.mark.parametrize("k,n", [(0, 20), (20, 20), (1, 1), (0, 1), (3, 7), (512, 1000), (9999, 10000)])
def test_bootstrap_binary_edges_match_binom_ppf(k, n):
    lo, hi = stats.bootstrap_binary_interval([k], [n])
    assert lo[0] == st.binom(n, k / n).ppf(0.025) / n
    assert hi[0] == st.binom(n, k / n).ppf(0.975) / n


def test_bootstrap_binary_matches_binom_ppf_on_many_counts():
    rng = np.random.default_rng(12)
    n = rng.integers(1, 5000, 400)
    k = rng.integers(0, n + 1)
    lo, hi = stats.bootstrap_binary_interval(k, n)
    assert np.array_equal(lo, st.binom.ppf(0.025, n, k / n) / n)
    assert np.array_equal(hi, st.binom.ppf(0.975, n, k / n) / n)
