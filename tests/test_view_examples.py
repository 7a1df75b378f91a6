"""dbt-style tests of the example views (run stats, slices, pairs) and the trigger-kept outcome bits."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from scipy import stats as st

from ingest_api.stats import mcnemar_from_counts
from tests.conftest import q
from tests.plugins.views import EXAMPLES, assert_not_null, assert_unique, seed


def test_run_example_stats(db):
    seed(db, EXAMPLES)
    rows = q(db, "select eval_run_id, n_examples, n_correct, n_graded, score_sum, is_binary, accuracy "
                 "from v_run_example_stats order by 1")
    assert rows == [
        {"eval_run_id": "r1", "n_examples": 6, "n_correct": 3, "n_graded": 6, "score_sum": 3.0, "is_binary": True,
         "accuracy": 0.5},
        {"eval_run_id": "r2", "n_examples": 6, "n_correct": 5, "n_graded": 6, "score_sum": 5.0, "is_binary": True,
         "accuracy": 5 / 6},
        {"eval_run_id": "r8", "n_examples": 4, "n_correct": 3, "n_graded": 4, "score_sum": 3.0, "is_binary": True,
         "accuracy": 0.75},
    ]


def test_example_slices(db):
    seed(db, EXAMPLES)
    rows = q(db, "select dimension, slice, n_examples, n_correct from v_example_slices where eval_run_id = 'r1' "
                 "order by dimension, slice")
    assert rows == [
        {"dimension": "difficulty", "slice": "easy", "n_examples": 2, "n_correct": 2},
        {"dimension": "difficulty", "slice": "hard", "n_examples": 3, "n_correct": 0},
        {"dimension": "difficulty", "slice": "unspecified", "n_examples": 1, "n_correct": 1},
        {"dimension": "subtask", "slice": "unspecified", "n_examples": 4, "n_correct": 2},
        {"dimension": "subtask", "slice": "x", "n_examples": 2, "n_correct": 1},
        {"dimension": "topic", "slice": "alg", "n_examples": 2, "n_correct": 1},
        {"dimension": "topic", "slice": "geo", "n_examples": 3, "n_correct": 2},
        {"dimension": "topic", "slice": "unspecified", "n_examples": 1, "n_correct": 0},
    ]
    all_rows = q(db, "select * from v_example_slices")
    assert_unique(all_rows, ("eval_run_id", "dimension", "slice"))
    assert_not_null(all_rows, ("eval_run_id", "dimension", "slice", "n_examples"))
    # each dimension partitions the run
    totals = q(db, "select eval_run_id, dimension, sum(n_examples) n from v_example_slices group by 1, 2")
    n = {r["eval_run_id"]: r["n_examples"] for r in q(db, "select * from v_run_example_stats")}
    assert all(t["n"] == n[t["eval_run_id"]] for t in totals)


def test_example_pairs_and_flips(db):
    seed(db, EXAMPLES)
    rows = q(db, "select example_idx, flip from v_example_pairs where eval_run_id_a = 'r1' and eval_run_id_b = 'r2' "
                 "order by example_idx")
    assert [r["flip"] for r in rows] == ["same", "wrong_to_right", "right_to_wrong", "wrong_to_right",
                                         "wrong_to_right", "same"]
    # runs of different datasets never pair
    assert q(db, "select count(*) n from v_example_pairs where eval_run_id_a = 'r1' and eval_run_id_b = 'r4'") == [
        {"n": 0}]


def test_pair_stats_from_bits_match_the_rows(db):
    seed(db, EXAMPLES)
    got = q(db, "select eval_run_id_a, eval_run_id_b, n_pairs, n_wrong_to_right, n_right_to_wrong "
                "from v_example_pair_stats where eval_run_id_a in ('r1', 'r8') and eval_run_id_b in ('r2', 'r1') "
                "order by 1, 2")
    assert got == [
        {"eval_run_id_a": "r1", "eval_run_id_b": "r2", "n_pairs": 6, "n_wrong_to_right": 3, "n_right_to_wrong": 1},
        {"eval_run_id_a": "r8", "eval_run_id_b": "r1", "n_pairs": 4, "n_wrong_to_right": 0, "n_right_to_wrong": 1},
        {"eval_run_id_a": "r8", "eval_run_id_b": "r2", "n_pairs": 4, "n_wrong_to_right": 1, "n_right_to_wrong": 1},
    ]
    sums = q(db, "select n_pairs, n_wrong_to_right, n_right_to_wrong, diff_sum from v_example_pair_sums "
                 "where eval_run_id_a = 'r1' and eval_run_id_b = 'r2'")
    assert sums == [{"n_pairs": 6, "n_wrong_to_right": 3, "n_right_to_wrong": 1, "diff_sum": 2.0}]


def test_flip_bits_and_flipped_examples_match_the_rows(db):
    from psycopg.rows import dict_row

    from ingest_api.read import pairs

    # Example 6 has no outcome on r1 (neither is_correct nor a score): its bit says wrong, so the bits
    # mark it as a flip candidate, but v_example_pairs calls it 'same'; the flips after it still count.
    seed(db, EXAMPLES + """insert into example_results (eval_run_id, example_idx, is_correct, score) values
        ('r1', 6, null, null), ('r1', 7, false, 0), ('r1', 8, true, 1),
        ('r2', 6, true, 1), ('r2', 7, true, 1), ('r2', 8, false, 0);""")
    assert q(db, "select flip_bits::text b from v_example_pair_stats where eval_run_id_a = 'r1' "
                 "and eval_run_id_b = 'r2'") == [{"b": "011110111"}]
    with psycopg.connect(db, row_factory=dict_row) as c:
        for limit in range(1, 9):
            want = q(db, """select example_idx, flip, score_a, score_b, input_preview, ground_truth, output_a,
                                   output_b, topic, difficulty
                            from v_example_pairs where eval_run_id_a = 'r1' and eval_run_id_b = 'r2'
                              and flip <> 'same' order by example_idx limit %s""", (limit,))
            got = pairs.flip_examples(c, [("r1", "r2"), ("r8", "r1")], limit)
            assert got[("r1", "r2")] == want
            assert [f["example_idx"] for f in got[("r8", "r1")]] == [3][:limit]
    assert [f["example_idx"] for f in want] == [1, 2, 3, 4, 7, 8]


def _bits(url):
    return q(url, "select eval_run_id, n_examples, n_correct, score_sum, present_bits::text p, outcome_bits::text o "
                  "from example_run_stats order by 1")


def test_bits_follow_inserts_deletes_and_updates(db):
    seed(db, EXAMPLES)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into example_results (eval_run_id, example_idx, is_correct, score) values "
                  "('r1', 9, true, 1)")                                    # a gap: 6..8 absent
        c.execute("delete from example_results where eval_run_id = 'r1' and example_idx = 1")
        c.execute("update example_results set is_correct = false, score = 0 where eval_run_id = 'r2' "
                  "and example_idx = 5")
        c.execute("insert into example_results (eval_run_id, example_idx, score) values ('r9', 0, 0.75), "
                  "('r9', 2, 0.25)")                                       # fractional, no is_correct
    rows = {r["eval_run_id"]: r for r in _bits(db)}
    assert rows["r1"]["p"] == "1011110001" and rows["r1"]["o"] == "1010010001"
    assert rows["r2"]["o"] == "110110" and rows["r2"]["n_correct"] == 4
    assert rows["r9"]["p"] == "101" and rows["r9"]["o"] == "100"           # score >= 0.5 counts as right
    live = _bits(db)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("select eval360_rebuild_read_facts()")
    assert _bits(db) == live
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("delete from example_results where eval_run_id = 'r8'")
    assert not q(db, "select 1 from v_run_example_stats where eval_run_id = 'r8'")


def test_examples_posted_through_the_api_give_mcnemar_counts(client, db, ingest_headers):
    from tests.plugins.read_data import build_small, post_examples

    ids = build_small(client, ingest_headers)
    rng = np.random.default_rng(11)
    a = rng.random(120) < 0.55
    b = np.where(rng.random(120) < 0.25, ~a, a)
    post_examples(client, ingest_headers, ids["g_gsm"], [bool(x) for x in a])
    # two batches, the second re-posting part of the first (replaces those indexes)
    post_examples(client, ingest_headers, ids["a2_gsm"], [bool(not x) for x in b[:60]])
    post_examples(client, ingest_headers, ids["a2_gsm"], [bool(x) for x in b])
    row = q(db, "select * from v_example_pair_stats where eval_run_id_a = %s and eval_run_id_b = %s",
            (ids["g_gsm"], ids["a2_gsm"]))[0]
    n01 = int((~a & b).sum())
    n10 = int((a & ~b).sum())
    assert (row["n_pairs"], row["n_wrong_to_right"], row["n_right_to_wrong"]) == (120, n01, n10)
    assert mcnemar_from_counts(row["n_wrong_to_right"], row["n_right_to_wrong"], row["n_pairs"]).p_value == \
        pytest.approx(min(1.0, 2 * (st.binom.cdf(min(n01, n10), n01 + n10, 0.5)
                                    - 0.5 * st.binom.pmf(min(n01, n10), n01 + n10, 0.5))))  # mid-p
