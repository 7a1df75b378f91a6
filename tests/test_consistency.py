"""One pair of runs, one p-value: /api/diff, the regression alert (its stored evidence) and the promotion
verdict compare the same two runs with the same test (stats.compare_scores on the paired counts of
v_example_pair_stats, read through read.pairs.pair_stats), so they report the same p-value for it."""

from __future__ import annotations

import pytest
from scipy import stats as st

from ingest_api import stats
from ingest_api.ops.worker import run_worker
from tests.plugins.alert_data import post, post_examples

pytestmark = pytest.mark.usefixtures("alerts_inline")

M, D, N = "cons", "gsm8k", 500


def outcomes(n_right_to_wrong: int, n_wrong_to_right: int) -> tuple[list[bool], list[bool]]:
    """Two runs on the same N examples: the first right on 400; the second loses n_right_to_wrong of
    those and gains n_wrong_to_right of the others."""
    a = [i < 400 for i in range(N)]
    b = list(a)
    for i in range(n_right_to_wrong):
        b[i] = False
    for i in range(400, 400 + n_wrong_to_right):
        b[i] = True
    return a, b


def _post_pair(client, h, step_b: int, lose: int, gain: int) -> None:
    a, b = outcomes(lose, gain)
    for step, o in ((1000, a), (step_b, b)):
        post(client, h, M, step, D, sum(o) / N, n=N)
        post_examples(client, h, f"run-{M}-{step}-{D}", o)


def test_diff_alert_and_promotion_report_the_same_p_value(client, db, ingest_headers, admin_headers):
    # 13 right-to-wrong against 4 wrong-to-right of 500: the counts of issue 13, where two engines gave
    # 0.031 and 0.049.
    _post_pair(client, ingest_headers, 2000, lose=13, gain=4)
    assert run_worker(db, once=True) == 0  # the examples arrived after the results: the worker re-judges
    r = client.post("/api/admin/promotion-rules", headers=admin_headers,
                    json={"rule_name": "gate", "model_id": M, "dataset_names": [D], "no_regressions": True})
    assert r.status_code == 200, r.text

    diff = client.get("/api/diff", params={"checkpoint_a": f"{M}__step-1000", "checkpoint_b": f"{M}__step-2000"})
    assert diff.status_code == 200, diff.text
    (row,) = diff.json()["datasets"]
    assert (row["n_right_to_wrong"], row["n_wrong_to_right"], row["n_paired"]) == (13, 4, N)
    p_diff = row["p_value"]

    alerts = client.get("/api/alerts", params={"type": "regression", "model_id": M}).json()["alerts"]
    assert [(a["checkpoint_id"], a["dataset_name"]) for a in alerts] == [(f"{M}__step-2000", D)]
    p_alert = alerts[0]["detail"]["p_value"]

    verdict = client.get(f"/api/models/{M}/promotion-status", params={"checkpoint_id": f"{M}__step-2000"}).json()
    assert verdict["overall"] == "blocked"
    (cond,) = [c for c in verdict["rules"][0]["conditions"] if c["kind"] == "no_regressions"]
    assert cond["passed"] is False and cond["reference"] == f"{M}__step-1000"
    p_promotion = cond["p_value"]

    expected = stats.mcnemar_from_counts(4, 13, N).p_value
    assert p_diff == pytest.approx(expected, rel=1e-12)
    assert p_alert == pytest.approx(expected, rel=1e-12)
    assert p_promotion == pytest.approx(expected, rel=1e-12)
    assert p_diff < 0.05


def test_the_comparison_tells_different_counts_and_engines_apart():
    """What makes the test above able to fail: other counts give another p-value, and the exact
    binomial McNemar (the second engine issue 13 found) gives another p-value on the same counts."""
    p = stats.mcnemar_from_counts(4, 13, N).p_value
    assert stats.mcnemar_from_counts(4, 20, N).p_value < p < stats.mcnemar_from_counts(6, 13, N).p_value
    exact = st.binomtest(4, 17, 0.5).pvalue
    assert exact == pytest.approx(0.049, abs=0.001) and p == pytest.approx(0.031, abs=0.001)


def test_another_pair_gets_its_own_p_value(client, db, ingest_headers):
    """The same three readers on two pairs with different counts do not report one shared value."""
    _post_pair(client, ingest_headers, 2000, lose=13, gain=4)
    _, c = outcomes(20, 4)
    post(client, ingest_headers, M, 3000, D, sum(c) / N, n=N)
    post_examples(client, ingest_headers, f"run-{M}-3000-{D}", c)
    p12 = client.get("/api/diff", params={"checkpoint_a": f"{M}__step-1000",
                                          "checkpoint_b": f"{M}__step-2000"}).json()["datasets"][0]["p_value"]
    p13 = client.get("/api/diff", params={"checkpoint_a": f"{M}__step-1000",
                                          "checkpoint_b": f"{M}__step-3000"}).json()["datasets"][0]["p_value"]
    assert p13 == pytest.approx(stats.mcnemar_from_counts(4, 20, N).p_value) and p13 < p12
