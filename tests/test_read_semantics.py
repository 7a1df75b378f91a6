"""What the read endpoints mean: score choice, intervals, ties, statuses, tests and corrections,
checked against reference values computed here with scipy (not with the code under test)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from tests.conftest import q
from tests.plugins.read_data import build_small, post, post_examples


@pytest.fixture
def data(client, ingest_headers):
    return build_small(client, ingest_headers)


def get(client, url):
    r = client.get(url)
    assert r.status_code == 200, (url, r.text[:500])
    return r.json()


def chi2_p(k1, n1, k2, n2):
    return st.chi2_contingency(np.array([[k1, n1 - k1], [k2, n2 - k2]]), correction=False).pvalue


def bh(ps):
    ps = np.asarray(ps, float)
    m = len(ps)
    order = np.argsort(ps)
    q_ = np.empty(m)
    prev = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        prev = min(prev, ps[i] * m / rank)
        q_[i] = prev
    return q_


# ------------------------------------------------------------------ leaderboard


def test_leaderboard_latest_with_statistical_ties(client, data):
    board = get(client, "/api/datasets/gsm8k/leaderboard?score=latest")["leaderboard"]
    assert [(r["model_id"], r["score"], r["training_step"]) for r in board] == [
        ("alpha", 0.6, 2000), ("gpt-4o", 0.58, None), ("beta", 0.52, 2000), ("llama", 0.3, None)]
    assert [r["rank"] for r in board] == [1, 1, 1, 4]
    assert [r["is_tied"] for r in board] == [True, True, True, False]
    assert board[1]["p_vs_group_leader"] == pytest.approx(chi2_p(60, 100, 58, 100))
    assert board[2]["p_vs_group_leader"] == pytest.approx(chi2_p(60, 100, 52, 100))
    ref = st.binomtest(60, 100).proportion_ci(method="wilson")
    assert (board[0]["ci_lower"], board[0]["ci_upper"]) == pytest.approx((ref.low, ref.high))
    assert board[0]["n"] == 100 and board[0]["interval_method"] == "wilson"


def test_leaderboard_best_and_step(client, data):
    best = get(client, "/api/datasets/gsm8k/leaderboard?score=best")["leaderboard"]
    beta = next(r for r in best if r["model_id"] == "beta")
    assert (beta["score"], beta["training_step"]) == (0.55, 1000)
    assert "maximum over 2" in beta["note"]
    step = get(client, "/api/datasets/gsm8k/leaderboard?score=step&step=1000")["leaderboard"]
    assert [(r["model_id"], r["score"]) for r in step] == [("gpt-4o", 0.58), ("beta", 0.55), ("alpha", 0.5),
                                                          ("llama", 0.3)]
    assert get(client, "/api/datasets/gsm8k/leaderboard?step=1000")["score_choice"] == "step"


def test_spread_figures_are_never_ranked(client, data, ingest_headers):
    post(client, ingest_headers, model_id="alpha", training_step=1000, dataset_name="spready",
         metrics={"bootstrap_std (avg over 4)": 0.03})
    assert get(client, "/api/datasets/spready/leaderboard")["leaderboard"] == []
    hm = get(client, "/api/heatmap")
    assert hm["matrix"]["alpha"]["spready"]["score"] is None
    scores = get(client, "/api/models/alpha/scores?dataset=spready")["scores"]
    assert scores[0]["is_score"] is False


def test_lower_is_better_ranks_ascending(client, data, db, ingest_headers):
    for m, v in (("alpha", 2.5), ("beta", 1.5)):
        post(client, ingest_headers, model_id=m, training_step=1000, dataset_name="ppl",
             metrics={"perplexity": v})
    q(db, "insert into benchmark_metadata (dataset_name, is_higher_better) values ('ppl', false) "
          "on conflict (dataset_name) do update set is_higher_better = false returning 1")
    board = get(client, "/api/datasets/ppl/leaderboard")
    assert board["is_higher_better"] is False
    assert [r["model_id"] for r in board["leaderboard"]] == ["beta", "alpha"]


# ------------------------------------------------------------------ heatmap


def test_heatmap_statuses_coverage_categories(client, data):
    hm = get(client, "/api/heatmap?score=latest")
    m = hm["matrix"]
    assert (m["alpha"]["gsm8k"]["status"], m["alpha"]["gsm8k"]["score"], m["alpha"]["gsm8k"]["training_step"]) == (
        "pending", 0.6, 2000)
    assert (m["alpha"]["ifeval"]["status"], m["alpha"]["ifeval"]["score"]) == ("stale", 0.7)
    assert (m["alpha"]["mmlu"]["status"], m["alpha"]["mmlu"]["score"]) == ("completed", 0.44)
    assert (m["beta"]["mmlu"]["status"], m["beta"]["mmlu"]["score"]) == ("failed", 0.5)
    assert (m["beta"]["ifeval"]["status"], m["beta"]["ifeval"]["score"]) == ("missing", None)
    assert (m["gpt-4o"]["gsm8k"]["status"], m["llama"]["mmlu"]["status"]) == ("completed", "missing")
    assert hm["coverage"]["beta"] == {"evaluated": 2, "total": 3, "missing": ["ifeval"], "fraction": 2 / 3,
                                      "by_status": {"completed": 1, "failed": 1, "missing": 1}}
    assert hm["coverage"]["alpha"]["evaluated"] == 3
    assert hm["categories"] == {"math": ["gsm8k"], "uncategorized": ["ifeval"], "knowledge": ["mmlu"]}


def test_heatmap_filters_and_score_choice(client, data):
    assert [x["model_id"] for x in get(client, "/api/heatmap?model_type=baseline")["models"]] == ["gpt-4o", "llama"]
    assert [x["model_id"] for x in get(client, "/api/heatmap?owner=team-a")["models"]] == ["alpha"]
    assert get(client, "/api/heatmap?category=math")["datasets"] == ["gsm8k"]
    best = get(client, "/api/heatmap?score=best")["matrix"]
    assert (best["alpha"]["mmlu"]["score"], best["alpha"]["mmlu"]["training_step"]) == (0.45, 2000)
    step = get(client, "/api/heatmap?step=1000")["matrix"]
    assert step["alpha"]["mmlu"]["score"] == 0.4 and step["gpt-4o"]["mmlu"]["score"] == 0.7
    assert step["alpha"]["gsm8k"]["status"] == "completed"


# ------------------------------------------------------------------ diagnosis


def test_diagnosis_gaps_tests_and_correction(client, data, ingest_headers):
    rng = np.random.default_rng(4)
    base = rng.random(100) < 0.58
    model = np.where(rng.random(100) < 0.3, ~base, base)
    post_examples(client, ingest_headers, data["g_gsm"], [bool(x) for x in base])
    post_examples(client, ingest_headers, data["a2_gsm"], [bool(x) for x in model])
    d = get(client, "/api/models/alpha/diagnosis")
    assert (d["latest_checkpoint"], d["latest_step"]) == ("alpha__step-3000", 3000)
    g, mm, ife = d["scores"]["gsm8k"], d["scores"]["mmlu"], d["scores"]["ifeval"]
    # gsm8k: paired, exact McNemar on the shared examples
    n01 = int((~base & model).sum())
    n10 = int((base & ~model).sum())
    k = min(n01, n10)
    p_g = min(1.0, 2 * (st.binom.cdf(k, n01 + n10, 0.5) - 0.5 * st.binom.pmf(k, n01 + n10, 0.5)))  # mid-p McNemar
    assert g["test"] == "mcnemar_midp" and g["p_value"] == pytest.approx(p_g)
    assert (g["baseline_model_id"], g["baseline_best"], g["gap"]) == ("gpt-4o", 0.58, pytest.approx(0.02))
    # The earlier dashboard's keys: baseline_model is the display name, sample_count is n.
    assert g["baseline_model"] == "GPT-4O" and g["sample_count"] == g["n"] == 100
    assert g["interval_method"] == "bootstrap" and g["n"] == 100
    # mmlu: counts only, two-proportion test
    p_m = chi2_p(700, 1000, 440, 1000)
    assert mm["test"] == "two_proportion_z" and mm["p_value"] == pytest.approx(p_m)
    assert mm["gap"] == pytest.approx(0.44 - 0.70) and mm["significance"] == "likely_real"
    # Benjamini-Hochberg across the two tested datasets
    qs = bh([p_g, p_m])
    assert (g["q_value"], mm["q_value"]) == pytest.approx((qs[0], qs[1]))
    assert ife["baseline_best"] is None and ife["significance"] == "insufficient_data"
    # every baseline, each gap tested
    assert [b["model_id"] for b in g["baselines"]] == ["gpt-4o", "llama"]
    llama = g["baselines"][1]
    assert llama["p_value"] == pytest.approx(chi2_p(30, 100, 60, 100))
    # trend: fitted slope over the mmlu points 0.40, 0.45, 0.44 at steps 1000..3000
    ref = st.linregress([1, 2, 3], [0.40, 0.45, 0.44])
    assert mm["trend_detail"]["slope_per_1k_steps"] == pytest.approx(ref.slope)
    assert mm["trend"] == "flat" and g["trend"] == "new"


def test_best_overall_uses_common_datasets_only(client, data):
    d = get(client, "/api/models/alpha/diagnosis")
    # Naively averaging whatever each checkpoint has would pick step 1000 (0.5, 0.4, 0.7 → 0.533 > 0.525)
    # thanks to ifeval, which only step 1000 has. On the common datasets (gsm8k, mmlu) 2000 wins.
    assert d["best_overall_step"] == 2000
    assert d["best_overall"]["common_datasets"] == ["gsm8k", "mmlu"]
    assert d["best_overall"]["mean_score"] == pytest.approx((0.6 + 0.45) / 2)
    assert d["best_per_dataset"] == {"gsm8k": 2000, "ifeval": 1000, "mmlu": 2000}


# ------------------------------------------------------------------ diff


def test_diff_with_flips_and_corrected_significance(client, data, ingest_headers):
    a = [True, True, False, False, True, False, True, True]
    b = [True, False, True, True, True, True, True, False]
    post_examples(client, ingest_headers, data["a1_gsm"], a)
    post_examples(client, ingest_headers, data["a2_gsm"], b)
    body = get(client, "/api/diff?checkpoint_a=alpha__step-1000&checkpoint_b=alpha__step-2000")
    by = {d["dataset_name"]: d for d in body["datasets"]}
    g = by["gsm8k"]
    assert g["test"] == "mcnemar_midp" and (g["n_wrong_to_right"], g["n_right_to_wrong"]) == (3, 2)
    assert [(f["example_idx"], f["flip"]) for f in g["flips"]] == [
        (1, "right_to_wrong"), (2, "wrong_to_right"), (3, "wrong_to_right"), (5, "wrong_to_right"),
        (7, "right_to_wrong")]
    p_g = 2 * (st.binom.cdf(2, 5, 0.5) - 0.5 * st.binom.pmf(2, 5, 0.5))  # mid-p McNemar
    p_m = chi2_p(400, 1000, 450, 1000)
    assert g["p_value"] == pytest.approx(p_g) and by["mmlu"]["p_value"] == pytest.approx(p_m)
    qs = bh([p_g, p_m])
    assert (g["q_value"], by["mmlu"]["q_value"]) == pytest.approx(tuple(qs))
    assert g["delta"] == pytest.approx(0.1) and by["ifeval"]["direction"] == "missing"
    assert body["summary"] == {"total": 3, "improved": 1 if qs[1] < 0.05 else 0,
                               "regressed": 0, "unchanged": 1 if qs[1] < 0.05 else 2, "missing": 1,
                               "not_testable": 0}
    capped = get(client, "/api/diff?checkpoint_a=alpha__step-1000&checkpoint_b=alpha__step-2000&flips_limit=2")
    assert len(next(d for d in capped["datasets"] if d["dataset_name"] == "gsm8k")["flips"]) == 2


def test_diff_regression_is_reported(client, data):
    body = get(client, "/api/diff?checkpoint_a=gpt-4o__baseline&checkpoint_b=alpha__step-3000")
    mm = next(d for d in body["datasets"] if d["dataset_name"] == "mmlu")
    assert mm["direction"] == "regressed" and mm["significance"] == "likely_real"
    assert body["summary"]["regressed"] == 1


# ------------------------------------------------------------------ compare


def test_compare_common_only_steps(client, data):
    all_pts = get(client, "/api/compare?models=alpha,beta&dataset=mmlu")["models"]
    assert [p["training_step"] for p in all_pts[0]["data_points"]] == [1000, 2000, 3000]
    assert [p["training_step"] for p in all_pts[1]["data_points"]] == [1000]   # 2000 failed
    common = get(client, "/api/compare?models=alpha,beta&dataset=mmlu&common_only=true")["models"]
    assert [p["training_step"] for p in common[0]["data_points"]] == [1000]
    with_base = get(client, "/api/compare?models=alpha,gpt-4o&dataset=mmlu&common_only=true")["models"]
    assert [p["training_step"] for p in with_base[1]["data_points"]] == [None]   # a baseline is one point


def test_compare_category_profile(client, data):
    prof = get(client, "/api/compare?models=alpha,beta&common_only=true")["profiles"]
    alpha = prof[0]["categories"]
    assert set(alpha) == {"math", "knowledge"}          # ifeval (uncategorized) is not common to both
    se = np.sqrt(0.44 * 0.56 / 1000)
    assert alpha["knowledge"]["mean"] == pytest.approx(0.44)
    assert alpha["knowledge"]["ci_lower"] == pytest.approx(0.44 - st.norm.ppf(0.975) * se)
    everything = get(client, "/api/compare?models=alpha,beta")["profiles"][0]["categories"]
    assert "uncategorized" in everything


# ------------------------------------------------------------------ examples and slices


def test_examples_filters_and_pages(client, data, ingest_headers):
    run = data["a1_mmlu"]
    post_examples(client, ingest_headers, run, [i % 3 == 0 for i in range(30)],
                  topic=lambda i: "alg" if i < 10 else "geo")
    body = get(client, f"/api/eval-runs/{run}/examples?correct=false&limit=5&offset=5")
    assert body["total"] == 20 and body["correct_count"] == 0 and body["accuracy"] == 0.0
    assert [e["example_idx"] for e in body["examples"]] == [8, 10, 11, 13, 14]
    t = get(client, f"/api/eval-runs/{run}/examples?topic=alg")
    assert t["total"] == 10 and t["correct_count"] == 4
    s = get(client, f"/api/eval-runs/{run}/examples?q=question%201")
    assert sorted(e["example_idx"] for e in s["examples"]) == [1] + list(range(10, 20))
    assert get(client, f"/api/eval-runs/{run}/examples?q=%25")["total"] == 0   # % is a literal, not a wildcard


def test_slices_intervals_and_failure_concentration(client, data, ingest_headers):
    run = data["a1_mmlu"]
    topics = ["hard_topic" if i % 4 == 0 else "easy_topic" for i in range(400)]
    correct = [(i % 4 != 0 and i % 5 != 0) or (i % 4 == 0 and i % 10 == 0) for i in range(400)]
    post_examples(client, ingest_headers, run, correct, topic=lambda i: topics[i],
                  difficulty=lambda i: "hard" if i % 2 else "easy")
    body = get(client, f"/api/eval-runs/{run}/slices")
    hard = body["by_topic"]["hard_topic"]
    k = sum(c for c, t in zip(correct, topics) if t == "hard_topic")
    assert (hard["total"], hard["correct"]) == (100, k)
    assert hard["ci_lower"] == st.binom(100, k / 100).ppf(0.025) / 100
    k_rest = sum(correct) - k
    assert hard["p_vs_rest"] == pytest.approx(chi2_p(k_rest, 300, k, 100))
    assert "topic 'hard_topic'" in body["error_concentration"]
    assert body["failure_concentration"][0]["slice"] == "hard_topic"
    assert set(body["by_difficulty"]) == {"easy", "hard"}
    assert body["by_subtask"] == {"unspecified": body["by_subtask"]["unspecified"]}


def test_slices_without_failures_or_examples(client, data, ingest_headers):
    assert get(client, f"/api/eval-runs/{data['b1_gsm']}/slices")["error_concentration"] == \
        "no example rows for this run"
    post_examples(client, ingest_headers, data["b1_gsm"], [True] * 10)
    assert get(client, f"/api/eval-runs/{data['b1_gsm']}/slices")["error_concentration"] == "no failures"


def test_eval_run_provenance(client, ingest_headers):
    from tests.helpers import scheduler_payload

    r = client.post("/api/ingest/eval-result", json=scheduler_payload(), headers=ingest_headers)
    assert r.status_code == 200
    run = get(client, "/api/eval-runs/run-aime-5000-a")["eval_run"]
    for k, v in {"harness_commit": "abc1234", "grader_type": "math_verify", "grader_version": "1.2",
                 "dataset_version": "2026.1", "seed": 1234, "sample_count": 30, "prompt_template": "Solve: {problem}",
                 "inference_config": {"max_tokens": 32768}, "training_step": 5000}.items():
        assert run[k] == v
    ref = st.binomtest(round(0.8145833333333333 * 30), 30)  # noqa: F841 - documents the n behind the interval
    assert run["interval"]["interval_method"] == "wilson" and run["interval"]["n"] == 30


def test_score_only_examples_count_as_right_from_half(client, data, ingest_headers):
    run = data["b2_gsm"]
    post_examples(client, ingest_headers, run, [0.75, 0.25, 0.5, 1.0, 0.0], topic=lambda i: "t")
    sl = get(client, f"/api/eval-runs/{run}/slices")
    assert (sl["total"], sl["correct"]) == (5, 3)
    assert sl["by_topic"]["t"]["mean_score"] == pytest.approx(0.5)
    ex = get(client, f"/api/eval-runs/{run}/examples")
    assert (ex["total"], ex["correct_count"]) == (5, 3)
    assert get(client, f"/api/eval-runs/{run}/examples?correct=true")["total"] == 3
    run_row = get(client, f"/api/eval-runs/{run}")["eval_run"]
    assert run_row["interval"]["interval_method"] == "bootstrap" and run_row["interval"]["n"] == 5
