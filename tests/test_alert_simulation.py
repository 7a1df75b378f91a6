"""Statistical acceptance of the regression rule (issues 5 and 14), seeded simulations.

`judge_curves` is called directly on simulated curves: the same function the worker calls on the
curves it reads from v_current_scores (tests/test_alert_order.py and tests/test_alert_rules.py go
through the real ingest path). The full side-by-side table is bench/bench_alert_sim.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from ingest_api import stats
from ingest_api.ops.alert_rules import Curve, judge_curves
from tests.plugins.alert_data import paired_outcomes

D, N, T = 40, 500, 60


def _curves(scores: np.ndarray, n: int = N, pairs=None) -> list[Curve]:
    T_, D_ = scores.shape
    cks = [f"c{t}" for t in range(T_)]
    out = []
    for d in range(D_):
        c = Curve(f"d{d}", cks, [1000 * (t + 1) for t in range(T_)],
                  [{"metric_name": "accuracy", "metric_value": float(scores[t, d]), "n": n,
                    "eval_run_id": f"r{t}-{d}", "n_examples": n if pairs else 0} for t in range(T_)])
        if pairs:
            c.pairs = pairs[d]
        out.append(c)
    return out


def _regressions(scores, **kw) -> dict[tuple[int, int], str]:
    got = judge_curves(_curves(scores, **kw), {f"c{t}": scores.shape[1] for t in range(scores.shape[0])},
                       critical_default=5.0)
    return {(int(ck[1:]), int(ds[1:])): j.severity for (typ, ck, ds), j in got.items() if typ == "regression"}


def test_pure_noise_alerts_on_few_checkpoints_and_critical_on_almost_none():
    rng = np.random.default_rng(20261129)
    judged = flagged = critical = 0
    for _ in range(6):
        acc = rng.uniform(0.2, 0.9, D)
        scores = rng.binomial(N, acc, size=(T, D)) / N
        got = _regressions(scores)
        judged += T - 1
        flagged += len({t for t, _ in got})
        critical += len({t for (t, _), s in got.items() if s == "critical"})
    assert flagged / judged <= 0.05, f"{flagged}/{judged}"
    assert critical / judged <= 0.01, f"{critical}/{judged}"


def test_a_rising_learning_curve_does_not_fake_drops():
    rng = np.random.default_rng(77)
    judged = flagged = 0
    for _ in range(6):
        t = np.arange(T)[:, None]
        acc = rng.uniform(0.2, 0.55, D) + rng.uniform(0.05, 0.25, D) * (1 - np.exp(-t / rng.uniform(10, 30, D)))
        got = _regressions(rng.binomial(N, acc) / N)
        judged += T - 1
        flagged += len({t for t, _ in got})
    assert flagged / judged <= 0.05, f"{flagged}/{judged}"


def test_eight_point_drop_sustained_over_three_checkpoints_is_caught_by_the_third():
    rng = np.random.default_rng(5)
    trials, hits = 60, 0
    for _ in range(trials):
        acc = np.tile(rng.uniform(0.3, 0.8, D), (T, 1))
        acc[:, 0] = 0.60
        t0 = int(rng.integers(20, T - 2))
        acc[t0:t0 + 3, 0] -= 0.08
        got = _regressions(rng.binomial(N, acc) / N)
        hits += any((t, 0) in got for t in (t0, t0 + 1, t0 + 2))
    assert hits / trials >= 0.9, hits / trials


def test_one_drop_is_one_alert_not_a_cascade():
    """After a real step down, the following checkpoints are judged against the new level."""
    rng = np.random.default_rng(11)
    acc = np.tile(rng.uniform(0.3, 0.8, D), (T, 1))
    acc[:, 0] = 0.60
    acc[30:, 0] = 0.45
    got = _regressions(rng.binomial(N, acc) / N)
    on_d0 = sorted(t for t, d in got if d == 0)
    assert on_d0 and on_d0[0] in (30, 31, 32) and len(on_d0) <= 2, on_d0


def test_severity_needs_a_large_drop_and_strong_evidence():
    rng = np.random.default_rng(3)
    acc = np.tile(rng.uniform(0.3, 0.8, 8), (12, 1))
    acc[:, 0] = 0.60
    acc[11, 0] = 0.40  # 20 points: critical
    acc[11, 1] = acc[10, 1] - 0.035  # 3.5 points on n = 20,000: certain, but small
    scores = rng.binomial(20_000, acc) / 20_000
    scores[:, 0] = rng.binomial(500, acc[:, 0]) / 500
    got = judge_curves(_curves(scores, n=20_000), critical_default=5.0)
    sev = {ds: j.severity for (typ, ck, ds), j in got.items() if typ == "regression" and ck == "c11"}
    assert sev.get("d1") == "warning"
    # Per-dataset override (benchmark_metadata.critical_drop_points): 3 points make d1 critical.
    curves = _curves(scores, n=20_000)
    curves[1].critical_points = 3.0
    got = judge_curves(curves, critical_default=5.0)
    assert got[("regression", "c11", "d1")].severity == "critical"


def test_paired_examples_beat_the_unpaired_test_on_the_same_data():
    rng = np.random.default_rng(5)
    x, y = paired_outcomes(rng, 1000, 0.6, drop=0.05, agreement=0.85)
    a = {"metric_name": "accuracy", "metric_value": float(x.mean()), "n": 1000}
    b = {"metric_name": "accuracy", "metric_value": float(y.mean()), "n": 1000}
    pair = {"n_pairs": 1000, "n_wrong_to_right": int(((x == 0) & (y == 1)).sum()),
            "n_right_to_wrong": int(((x == 1) & (y == 0)).sum()), "n_fractional": 0}
    paired, unpaired = stats.compare_scores(a, b, pair), stats.compare_scores(a, b)
    assert paired.method == "mcnemar_midp" and unpaired.method == "two_proportion_z"
    assert paired.effect == pytest.approx(unpaired.effect)
    assert paired.p_value < unpaired.p_value / 10
    # The arrays path and the counts path are the same McNemar.
    assert stats.mcnemar_test(x, y).p_value == pytest.approx(paired.p_value, rel=1e-12)


def test_family_placeholders_never_retract_in_order():
    """Results of a checkpoint arriving one by one: the alert set only grows (missing datasets count as p=1)."""
    rng = np.random.default_rng(9)
    acc = rng.uniform(0.3, 0.8, D)
    before = rng.binomial(1000, acc) / 1000
    true_new = acc.copy()
    true_new[[3, 17]] -= 0.12
    after = rng.binomial(1000, true_new) / 1000
    seen: set = set()
    done: list[int] = []
    for d in rng.permutation(D):
        done.append(int(d))
        curves = [Curve(f"d{k}", ["c0", "c1"], [1, 2], [{"metric_name": "accuracy", "metric_value": v, "n": 1000}
                                                      for v in (before[k], after[k])]) for k in done]
        now = {(t, ds) for (t, _, ds) in judge_curves(curves, {"c1": D})}
        assert seen <= now
        seen = now
    assert {("regression", "d3"), ("regression", "d17")} <= seen


def test_not_testable_points_raise_nothing():
    """No n, no standard error: not testable, whatever the move."""
    rows = [{"metric_name": "accuracy", "metric_value": v, "n": None, "stderr": None} for v in (0.9, 0.9, 0.1)]
    assert judge_curves([Curve("d", ["a", "b", "c"], [1, 2, 3], rows)]) == {}
