"""Paired example counts of two runs, and the examples that flipped: the one reader of
v_example_pair_stats, for diff, diagnosis, the alert rules and promotion alike."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from ..core import sqlrows


def pair_stats(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Paired example counts for (run a, run b) pairs that both have example rows.

    0/1 outcomes: v_example_pair_stats (bit counts, fast). Where either side has fractional scores,
    the sums of differences come from v_example_pair_sums (reads the example rows). Each pair is
    looked up on its own (`offset 0` keeps the planner from joining the view as a whole).
    """
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    params = ([a for a, _ in pairs], [b for _, b in pairs])
    rows = sqlrows.records(conn, """select v.* from unnest(%s::text[], %s::text[]) p(a, b)
                          cross join lateral (select eval_run_id_a, eval_run_id_b, n_pairs, n_wrong_to_right,
                                                     n_right_to_wrong, n_fractional
                                              from v_example_pair_stats
                                              where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0) v""",
                 params)
    out = {(r["eval_run_id_a"], r["eval_run_id_b"]): r for r in rows}
    frac = [k for k, r in out.items() if r["n_fractional"]]
    if frac:
        for r in sqlrows.rows(conn, """select v.* from unnest(%s::text[], %s::text[]) p(a, b)
                                cross join lateral (select eval_run_id_a, eval_run_id_b, n_pairs, diff_sum, diff_sumsq
                                                    from v_example_pair_sums
                                                    where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0) v""",
                       ([a for a, _ in frac], [b for _, b in frac])):
            out[(r["eval_run_id_a"], r["eval_run_id_b"])].update(r)
    return out


def flip_examples(conn: psycopg.Connection, pairs: Sequence[tuple[str, str]],
                   limit: int) -> dict[tuple[str, str], list[dict]]:
    """The first `limit` flipped examples (by example_idx) of each (run a, run b) pair: v_example_pairs
    rows with flip <> 'same'.

    Which examples flipped is read from the runs' outcome bits (v_example_pair_stats.flip_bits), so
    only those example rows are fetched, not every example of both runs up to the limit-th flip.
    The bits mark a superset of the flips (an example with neither is_correct nor a score counts as
    wrong there, as 'same' in v_example_pairs): candidates are checked against v_example_pairs, and
    further ones taken for a pair while any drop out.
    """
    pairs = list(dict.fromkeys(pairs))
    out: dict[tuple[str, str], list[dict]] = {k: [] for k in pairs}
    bits = {(a, b): t for a, b, t in sqlrows.tuples(
        conn, """select v.* from unnest(%s::text[], %s::text[]) p(a, b)
                 cross join lateral (select eval_run_id_a, eval_run_id_b, flip_bits::text
                                     from v_example_pair_stats
                                     where eval_run_id_a = p.a and eval_run_id_b = p.b offset 0) v""",
        ([a for a, _ in pairs], [b for _, b in pairs]))}
    start = dict.fromkeys(bits, 0)  # the next bit of each pair to look at
    todo = list(bits)
    while todo:
        qa, qb, qi = [], [], []
        for k in todo:
            text, pos = bits[k], start[k]
            for _ in range(limit - len(out[k])):
                pos = text.find("1", pos)
                if pos < 0:
                    pos = len(text)
                    break
                qa.append(k[0])
                qb.append(k[1])
                qi.append(pos)
                pos += 1
            start[k] = pos
        if not qi:
            break
        for f in sqlrows.records(conn, """select v.* from unnest(%s::text[], %s::text[], %s::int[]) p(a, b, i)
                                   cross join lateral (
                                     select eval_run_id_a, eval_run_id_b, example_idx, flip, score_a, score_b,
                                            input_preview, ground_truth, output_a, output_b, topic, difficulty
                                     from v_example_pairs
                                     where eval_run_id_a = p.a and eval_run_id_b = p.b and example_idx = p.i
                                       and flip <> 'same' offset 0) v""", (qa, qb, qi)):
            out[(f.pop("eval_run_id_a"), f.pop("eval_run_id_b"))].append(f)
        # Short of the limit with bits left to look at: some candidates were no flip. Take more.
        todo = [k for k in todo if len(out[k]) < limit and start[k] < len(bits[k])]
    for lst in out.values():
        lst.sort(key=lambda f: f["example_idx"])
    return {k: v for k, v in out.items() if v}
