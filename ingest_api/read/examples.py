"""One eval run: its provenance and interval, a page of its examples, and its slices."""

from __future__ import annotations

import psycopg
from psycopg import sql

from .. import stats
from ..core import sqlrows

# ------------------------------------------------------------------ eval runs and examples


def get_eval_run(conn: psycopg.Connection, eval_run_id: str) -> dict | None:
    """An eval run's provenance, primary value, example counts and the value's interval."""
    r = sqlrows.one(conn, "select * from v_eval_runs where eval_run_id = %s", (eval_run_id,))
    if r is None:
        return None
    iv = stats.score_intervals([{**r, "metric_value": r["primary_value"], "metric_name": r["primary_metric"],
                                 "n": r["sample_count"]}])[0]
    r["interval"] = iv
    r["accuracy"] = (r["n_correct"] / r["n_examples"]) if r["n_examples"] else None
    for k in ("n_graded", "score_sum", "score_sumsq", "n_fractional"):
        r.pop(k, None)
    return r


def eval_run_exists(conn: psycopg.Connection, eval_run_id: str) -> bool:
    return sqlrows.one(conn, "select 1 as x from eval_runs where eval_run_id = %s", (eval_run_id,)) is not None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def run_examples(conn: psycopg.Connection, eval_run_id: str, *, correct: bool | None = None,
                 topic: str | None = None, difficulty: str | None = None, subtask: str | None = None,
                 search: str | None = None, limit: int = 50, offset: int = 0) -> dict | None:
    """A page of a run's examples (filters: correct, topic, difficulty, subtask, text search)."""
    if not eval_run_exists(conn, eval_run_id):
        return None
    where = sql.SQL("""eval_run_id = %(r)s
        and (%(c)s::bool is null or coalesce(is_correct, score >= 0.5) = %(c)s)
        and (%(t)s::text is null or topic = %(t)s)
        and (%(d)s::text is null or difficulty = %(d)s)
        and (%(s)s::text is null or subtask = %(s)s)
        and (%(q)s::text is null or input_preview ilike %(q)s or output_preview ilike %(q)s
             or ground_truth ilike %(q)s)""")
    p = {"r": eval_run_id, "c": correct, "t": topic, "d": difficulty, "s": subtask,
         "q": _like(search) if search else None, "lim": limit, "off": offset}
    agg = sqlrows.one(conn, sql.SQL("select count(*) as total, "
                             "count(*) filter (where coalesce(is_correct, score >= 0.5)) as correct_count "
                             "from example_results where {w}").format(w=where), p)
    rows = sqlrows.rows(conn, sql.SQL("""select id, eval_run_id, example_idx, is_correct as correct, score,
                                         input_preview, output_preview, ground_truth, error_tag, difficulty,
                                         topic, subtask, metadata
                                  from example_results where {w}
                                  order by example_idx limit %(lim)s offset %(off)s""").format(w=where), p)
    total = agg["total"]
    return {"eval_run_id": eval_run_id, "total": total, "correct_count": agg["correct_count"],
            "accuracy": (agg["correct_count"] / total) if total else None, "limit": limit, "offset": offset,
            "examples": rows}


def run_slices(conn: psycopg.Connection, eval_run_id: str, *, alpha: float = stats.ALPHA) -> dict | None:
    """Accuracy with intervals by topic, difficulty and subtask, and where failures concentrate."""
    if not eval_run_exists(conn, eval_run_id):
        return None
    rows = sqlrows.rows(conn, """select dimension, slice, n_examples, n_correct, n_graded, score_sum, score_sumsq,
                                 n_fractional from v_example_slices where eval_run_id = %s
                          order by dimension, slice""", (eval_run_id,))
    # Run totals from one dimension's slices (each dimension partitions the run), so slice and
    # total counts agree by construction.
    topic = [r for r in rows if r["dimension"] == "topic"]
    tot = {"n_examples": sum(r["n_examples"] for r in topic), "n_correct": sum(r["n_correct"] for r in topic)} \
        if topic else None
    ivs = stats.score_intervals([{**r, "metric_value": (r["score_sum"] / r["n_graded"]) if r["n_graded"] else None}
                                 for r in rows])
    n_all = tot["n_examples"] if tot else 0
    fails_all = (tot["n_examples"] - tot["n_correct"]) if tot else 0
    acc_all = (tot["n_correct"] / n_all) if n_all else None
    out: dict[str, dict] = {"topic": {}, "difficulty": {}, "subtask": {}}
    tests, keys = [], []
    for r, iv in zip(rows, ivs):
        n, k = r["n_examples"], r["n_correct"]
        fails = n - k
        cell = {"total": n, "correct": k, "accuracy": k / n if n else None,
                "mean_score": (r["score_sum"] / r["n_graded"]) if r["n_graded"] else None,
                "ci_lower": iv["ci_lower"], "ci_upper": iv["ci_upper"], "interval_method": iv["interval_method"],
                "failures": fails, "failure_share": (fails / fails_all) if fails_all else None}
        # This slice against the rest of the run (two-proportion test), BH-corrected over all slices.
        rest_n, rest_k = n_all - n, (tot["n_correct"] - k) if tot else 0
        if n and rest_n:
            t = stats.two_proportion_test(rest_k / rest_n, rest_n, k / n, n)
            cell["accuracy_rest"] = rest_k / rest_n
            cell["p_vs_rest"] = t.p_value
            tests.append(t.p_value)
        else:
            cell["accuracy_rest"] = None
            cell["p_vs_rest"] = None
            tests.append(None)
        keys.append((r["dimension"], r["slice"]))
        out[r["dimension"]][r["slice"]] = cell
    for (dim, sl), qv in zip(keys, stats.benjamini_hochberg(tests)):
        out[dim][sl]["q_vs_rest"] = qv
    worse = [(dim, sl, c) for dim, d in out.items() for sl, c in d.items()
             if c.get("q_vs_rest") is not None and c["q_vs_rest"] < alpha and c["accuracy_rest"] is not None
             and c["accuracy"] < c["accuracy_rest"]]
    # Most distinctive first: the largest accuracy gap to the rest of the run.
    worse.sort(key=lambda x: (x[2]["accuracy"] - x[2]["accuracy_rest"], x[2]["q_vs_rest"]))
    if not n_all:
        text = "no example rows for this run"
    elif not fails_all:
        text = "no failures"
    elif not worse:
        text = (f"failures are spread out: no topic, difficulty or subtask is significantly worse than the rest "
                f"(BH q >= {alpha}); overall accuracy {acc_all:.3f} on {n_all} examples")
    else:
        parts = [f"{dim} '{sl}' ({c['accuracy']:.3f} vs {c['accuracy_rest']:.3f} elsewhere, "
                 f"{100 * (c['failure_share'] or 0):.0f}% of failures, q={c['q_vs_rest']:.2g})"
                 for dim, sl, c in worse[:3]]
        text = "failures concentrate in " + "; ".join(parts)
    return {"eval_run_id": eval_run_id, "total": n_all, "correct": tot["n_correct"] if tot else 0,
            "accuracy": acc_all, "by_topic": out["topic"], "by_difficulty": out["difficulty"],
            "by_subtask": out["subtask"], "error_concentration": text,
            "failure_concentration": [{"dimension": dim, "slice": sl, "accuracy": c["accuracy"],
                                       "accuracy_rest": c["accuracy_rest"], "failure_share": c["failure_share"],
                                       "q_value": c["q_vs_rest"]} for dim, sl, c in worse]}
