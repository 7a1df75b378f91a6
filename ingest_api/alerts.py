"""Alert rules: regression, improvement, new_best (judged per checkpoint) and missing_evaluation.

Semantics (the closing note of issue 5 repeats them with examples):

* Each training checkpoint C is compared, dataset by dataset, with the **previous checkpoint
  that has a completed result on that dataset** (same primary metric). The test is paired when
  both runs have complete per-example rows (mid-p McNemar on 0/1 outcomes, paired t on
  fractional scores), else a two-proportion z-test from the sample counts (proportion metrics),
  else a z-test from the posted standard errors; with none of these the cell is not tested.
* The two-sided p-values of C's datasets are corrected together with Benjamini-Hochberg. The
  family is every dataset C has plus every dataset the previous checkpoint has (a dataset not
  posted yet counts as p = 1), so a checkpoint whose results arrive one by one never raises
  an alert that the later results would have corrected away.
* regression: q < ALPHA, the score moved the bad way (direction from benchmark_metadata), and
  the score is below the best earlier score of the model on that dataset. improvement: q < ALPHA
  and the good way. new_best: an improvement that also beats every earlier checkpoint.
* severity: regression is critical when q < 0.01 and the drop is at least 5 points, or the drop
  is at least 10 points; warning otherwise. improvement / new_best: info.
* missing_evaluation: checkpoint C lacks dataset d of a suite, C has another dataset of that
  suite, and checkpoints of the same model on both sides of C (by step) have d: a hole in the
  curve. severity warning.
* Where it runs: in the ingest transaction (post_result_hooks, registered by routes/alerts.py and by the
  worker), never with network I/O. Example rows usually arrive after their result: a trigger on
  example_results (sql/migrations/0003) queues the cell in alert_recheck, and the worker re-judges it
  with the paired test (McNemar counts read from the outcome bits of example_run_stats, no example rows
  loaded). The hook queues every cell too, which heals two concurrent posts of one checkpoint that
  could not see each other. The long-running worker re-judges every model once at start.
* Alerts are a pure function of the stored data: a re-judgement inserts what newly holds
  (one row per (type, checkpoint, dataset), unique index alerts_once), resolves what no longer
  holds (resolved_at), re-opens what holds again. Posting order does not matter: when a result
  arrives, its checkpoint, the next checkpoint, the next checkpoint on that dataset and later
  checkpoints with alerts on that dataset are re-judged.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from scipy import stats as st

from . import metrics as M
from .db import flush_facts
from .stats import Z95, benjamini_hochberg, mcnemar_test, significance_label, two_proportion_test

log = logging.getLogger("eval360.alerts")

ALPHA = 0.05
MANAGED = ("regression", "improvement", "new_best")
MISSING = "missing_evaluation"
ALL_TYPES = (*MANAGED, "promotion_ready", MISSING)
SEVERITIES = ("critical", "warning", "info")
WEBHOOK_EVENTS = ("regression", "improvement", "new_best", "promotion_ready")


# ------------------------------------------------------------------ the pure part (simulations call these)


@dataclass
class Obs:
    """One (checkpoint, dataset) primary score."""

    checkpoint_id: str
    step: int | None
    value: float
    n: int | None = None  # sample count
    stderr: float | None = None
    metric: str = "accuracy"
    run_id: str | None = None
    n_examples: int = 0
    n_fractional: int = 0  # example rows with a score strictly between 0 and 1


@dataclass
class Comparison:
    p_value: float | None  # two-sided
    effect: float | None  # cur - prev, metric units
    method: str
    n_a: int | None = None
    n_b: int | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None

    def as_dict(self) -> dict:
        return {"p_value": self.p_value, "effect": self.effect, "method": self.method, "n_a": self.n_a,
                "n_b": self.n_b, "effect_ci_lower": self.ci_lower, "effect_ci_upper": self.ci_upper}


def mcnemar_midp(n01: int, n10: int) -> float:
    """Two-sided mid-p McNemar on the discordant pairs (n01 wrong->right, n10 right->wrong).

    The exact conditional test is needlessly conservative; the mid-p version keeps its size
    close to nominal (Fagerland, Lydersen & Laake 2013, BMC Med Res Methodol 13:91).
    """
    k = n01 + n10
    if k == 0:
        return 1.0
    lo = min(n01, n10)
    p = 2.0 * (float(st.binom.cdf(lo, k, 0.5)) - 0.5 * float(st.binom.pmf(lo, k, 0.5)))
    return min(1.0, max(0.0, p))


def compare_paired(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """b vs a on the same examples (aligned): mid-p McNemar for 0/1 scores, else stats.mcnemar_test (paired t)."""
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    n = int(min(len(xa), len(xb)))
    if n < 2:
        return Comparison(None, None, "insufficient_data", n, n)
    xa, xb = xa[:n], xb[:n]
    binary = bool(np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all())
    if not binary:
        t = mcnemar_test(xa, xb)
        return Comparison(t.p_value, t.effect, t.method, n, n, t.ci_lower, t.ci_upper)
    n01 = int(((xa == 0) & (xb == 1)).sum())
    n10 = int(((xa == 1) & (xb == 0)).sum())
    d = xb - xa
    diff = float(d.mean())
    half = Z95 * float(d.std(ddof=1)) / math.sqrt(n)
    return Comparison(mcnemar_midp(n01, n10), diff, "mcnemar_midp", n, n, diff - half, diff + half)


def compare_counts(n01: int, n10: int, n: int) -> Comparison:
    """Paired 0/1 outcomes given as counts: n examples on both sides, n01 wrong->right, n10 right->wrong.

    Same result as compare_paired on the outcome vectors, without reading the example rows.
    """
    if n < 2:
        return Comparison(None, None, "insufficient_data", n, n)
    diff = (n01 - n10) / n
    var = max(0.0, ((n01 + n10) - n * diff * diff) / (n - 1))
    half = Z95 * math.sqrt(var) / math.sqrt(n)
    return Comparison(mcnemar_midp(n01, n10), diff, "mcnemar_midp", n, n, diff - half, diff + half)


def compare_unpaired(prev: Obs, cur: Obs) -> Comparison:
    """cur vs prev from summary numbers: two-proportion z-test, else z-test on posted standard errors."""
    effect = cur.value - prev.value
    if (prev.n and cur.n and M.is_proportion_metric(cur.metric, cur.value)
            and M.is_proportion_metric(prev.metric, prev.value)):
        t = two_proportion_test(prev.value, prev.n, cur.value, cur.n)
        return Comparison(t.p_value, t.effect, "two_proportion_z", t.n_a, t.n_b, t.ci_lower, t.ci_upper)
    if prev.stderr and cur.stderr and prev.stderr > 0 and cur.stderr > 0:
        se = math.sqrt(prev.stderr ** 2 + cur.stderr ** 2)
        p = float(2 * st.norm.sf(abs(effect) / se))
        return Comparison(p, effect, "z_from_stderr", prev.n, cur.n, effect - Z95 * se, effect + Z95 * se)
    return Comparison(None, effect, "insufficient_data", prev.n, cur.n)


@dataclass
class Cell:
    """One dataset of the judged checkpoint: its score, the previous and the best earlier score."""

    dataset: str
    cur: Obs
    prev: Obs | None = None
    best: Obs | None = None
    higher_is_better: bool = True
    comparison: Comparison | None = None
    q_value: float | None = None


@dataclass
class Judgement:
    alert_type: str
    dataset: str | None
    severity: str
    message: str
    detail: dict = field(default_factory=dict)


def _better(a: float, b: float, hib: bool) -> bool:
    return a > b if hib else a < b


def _points(effect: float, prev: float, cur: float) -> float:
    """An effect in points: metrics in [0, 1] are scaled by 100; others are taken as already in points."""
    scale = 100.0 if max(abs(prev), abs(cur)) <= 1.0 else 1.0
    return abs(effect) * scale


def regression_severity(q: float, drop_points: float) -> str:
    if drop_points >= 10 or (q < 0.01 and drop_points >= 5):
        return "critical"
    return "warning"


def judge(cells: list[Cell], family_size: int | None = None, alpha: float = ALPHA) -> list[Judgement]:
    """Decide the alerts of one checkpoint from its cells (comparisons filled in). Sets cell.q_value.

    family_size: datasets in the correction family (at least len(cells)); the extra ones count as p = 1.
    """
    m = max(family_size or 0, len(cells))
    pvals: list[float | None] = [c.comparison.p_value if c.comparison else None for c in cells]
    padded = [1.0 if p is None else p for p in pvals] + [1.0] * (m - len(cells))
    qs = benjamini_hochberg(padded)[:len(cells)] if padded else []
    out: list[Judgement] = []
    for c, p, q in zip(cells, pvals, qs):
        c.q_value = q if p is not None else None
        if p is None or q is None or c.prev is None or c.comparison is None or c.comparison.effect is None:
            continue
        eff = c.comparison.effect
        good = eff if c.higher_is_better else -eff
        if q >= alpha or good == 0:
            continue
        pts = _points(eff, c.prev.value, c.cur.value)
        below_best = c.best is None or _better(c.best.value, c.cur.value, c.higher_is_better)
        above_best = c.best is None or _better(c.cur.value, c.best.value, c.higher_is_better)
        detail = {
            "metric": c.cur.metric, "value": c.cur.value, "step": c.cur.step, "n": c.cur.n,
            "previous": {"checkpoint_id": c.prev.checkpoint_id, "step": c.prev.step, "value": c.prev.value,
                         "n": c.prev.n},
            "best_so_far": None if c.best is None else {"checkpoint_id": c.best.checkpoint_id,
                                                        "step": c.best.step, "value": c.best.value},
            **c.comparison.as_dict(), "q_value": q, "alpha": alpha, "family_size": m,
            "effect_points": pts, "higher_is_better": c.higher_is_better,
            "significance": significance_label(q, eff, alpha=alpha),
        }
        how = (f"{c.comparison.method}, n={c.comparison.n_b}, p={p:.2g}, q={q:.2g} over {m} datasets")
        if good < 0 and below_best:
            sev = regression_severity(q, pts)
            out.append(Judgement("regression", c.dataset, sev,
                                 f"{c.dataset}: {c.cur.metric} fell from {c.prev.value:.4g} (step {c.prev.step}) "
                                 f"to {c.cur.value:.4g} (step {c.cur.step}), {pts:.1f} points ({how})", detail))
        elif good > 0:
            out.append(Judgement("improvement", c.dataset, "info",
                                 f"{c.dataset}: {c.cur.metric} rose from {c.prev.value:.4g} (step {c.prev.step}) "
                                 f"to {c.cur.value:.4g} (step {c.cur.step}), {pts:.1f} points ({how})", detail))
            if above_best:
                prior = "" if c.best is None else f", previous best {c.best.value:.4g} at step {c.best.step}"
                out.append(Judgement("new_best", c.dataset, "info",
                                     f"{c.dataset}: new best {c.cur.metric} {c.cur.value:.4g} at step "
                                     f"{c.cur.step}{prior} ({how})", detail))
    return out


# ------------------------------------------------------------------ reading the cells of a checkpoint

_CELLS_SQL = """
with ck as (
  select checkpoint_id, model_id, training_step from checkpoints where checkpoint_id = %(c)s
), pts as (
  select r.dataset_name, r.checkpoint_id, c.training_step as step, r.eval_run_id as run_id, e.metric_name,
         e.metric_value as value, coalesce(r.sample_count, e.n_samples) as n, e.stderr,
         coalesce(s.n_examples, 0) as n_examples, coalesce(s.n_fractional, 0) as n_fractional,
         coalesce(bm.is_higher_better, true) as hib
    from ck
    join checkpoints c on c.model_id = ck.model_id and c.training_step <= ck.training_step
    join eval_runs r on r.checkpoint_id = c.checkpoint_id and r.is_current and r.status = 'completed'
    join eval_results e on e.eval_run_id = r.eval_run_id and e.is_primary and e.metric_value is not null
    left join example_run_stats s on s.eval_run_id = r.eval_run_id
    left join benchmark_metadata bm on bm.dataset_name = r.dataset_name
), cur as (
  select p.* from pts p join ck on p.checkpoint_id = ck.checkpoint_id
), earlier as (
  select p.* from pts p join cur on cur.dataset_name = p.dataset_name and cur.metric_name = p.metric_name
   where p.step < (select training_step from ck)
), prev as (
  select distinct on (dataset_name) * from earlier order by dataset_name, step desc
), best as (
  select distinct on (dataset_name) * from earlier
   order by dataset_name, case when hib then value else -value end desc, step
)
select 'cur' as role, * from cur
union all select 'prev', * from prev
union all select 'best', * from best
"""

_PREV_FAMILY_SQL = """
select r.dataset_name from eval_runs r
 where r.is_current and r.status = 'completed' and r.checkpoint_id = (
   select c.checkpoint_id from checkpoints c
    where c.model_id = %(m)s and c.training_step < %(s)s
      and exists (select 1 from eval_runs x where x.checkpoint_id = c.checkpoint_id and x.is_current
                  and x.status = 'completed')
    order by c.training_step desc limit 1)
"""


def _obs(row: dict) -> Obs:
    return Obs(checkpoint_id=row["checkpoint_id"], step=row["step"], value=float(row["value"]), n=row["n"],
               stderr=row["stderr"], metric=row["metric_name"], run_id=row["run_id"],
               n_examples=int(row["n_examples"] or 0), n_fractional=int(row.get("n_fractional") or 0))


def _complete(o: Obs) -> bool:
    return o.n_examples > 0 and (o.n is None or o.n_examples >= o.n)


def load_scores(conn: psycopg.Connection, run_ids: Iterable[str]) -> dict[str, dict[int, float]]:
    """Per-example scores {run: {example_idx: score}} (score, else is_correct as 0/1)."""
    ids = list(set(run_ids))
    out: dict[str, dict[int, float]] = {r: {} for r in ids}
    if not ids:
        return out
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        cur.execute("""select eval_run_id, example_idx,
                              coalesce(score, case when is_correct then 1.0 when not is_correct then 0.0 end)
                         from example_results where eval_run_id = any(%s)""", (ids,))
        for run, idx, score in cur:
            if score is not None:
                out[run][idx] = float(score)
    return out


_PAIR_COUNTS_SQL = """
select p.a, p.b, bit_count(pa & pb) as n_pairs, bit_count(pa & pb & ~oa & ob) as n01,
       bit_count(pa & pb & oa & ~ob) as n10
  from unnest(%s::text[], %s::text[]) as p(a, b)
  join example_run_stats sa on sa.eval_run_id = p.a
  join example_run_stats sb on sb.eval_run_id = p.b
  cross join lateral (select greatest(length(sa.present_bits), length(sb.present_bits)) as len) l
  cross join lateral (select eval360_pad(sa.present_bits, l.len) pa, eval360_pad(sa.outcome_bits, l.len) oa,
                             eval360_pad(sb.present_bits, l.len) pb, eval360_pad(sb.outcome_bits, l.len) ob) x
"""


def pair_counts(conn: psycopg.Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """McNemar counts of run pairs from the outcome bits kept by the example triggers (sql/migrations/0002)."""
    if not pairs:
        return {}
    rows = conn.execute(_PAIR_COUNTS_SQL, ([a for a, _ in pairs], [b for _, b in pairs])).fetchall()
    return {(r["a"], r["b"]): r for r in rows}


def _enough_common(n_common: int, prev: Obs, cur: Obs) -> bool:
    return n_common > 0 and n_common >= 0.9 * max(prev.n_examples, cur.n_examples)


def compare_many(conn: psycopg.Connection, pairs: list[tuple[Obs, Obs]]) -> list[Comparison]:
    """The proper test for each (prev, cur): paired on examples when both runs have complete example rows
    (counts from the outcome bits for 0/1 outcomes, the rows themselves for fractional scores), else unpaired."""
    out: list[Comparison | None] = [None] * len(pairs)
    binary, fractional = [], []
    for i, (prev, cur) in enumerate(pairs):
        if prev.metric != cur.metric:
            out[i] = Comparison(None, cur.value - prev.value, "different_metrics", prev.n, cur.n)
        elif _complete(prev) and _complete(cur) and prev.run_id and cur.run_id:
            (binary if prev.n_fractional == 0 and cur.n_fractional == 0 else fractional).append(i)
    counts = pair_counts(conn, [(pairs[i][0].run_id, pairs[i][1].run_id) for i in binary])
    for i in binary:
        prev, cur = pairs[i]
        c = counts.get((prev.run_id, cur.run_id))
        if c and _enough_common(c["n_pairs"], prev, cur):
            out[i] = compare_counts(c["n01"], c["n10"], c["n_pairs"])
    if fractional:
        scores = load_scores(conn, [o.run_id for i in fractional for o in pairs[i]])
        for i in fractional:
            prev, cur = pairs[i]
            sa, sb = scores[prev.run_id], scores[cur.run_id]
            common = sorted(set(sa) & set(sb))
            if _enough_common(len(common), prev, cur):
                out[i] = compare_paired([sa[k] for k in common], [sb[k] for k in common])
    return [c if c is not None else compare_unpaired(p, q) for c, (p, q) in zip(out, pairs)]


def compare_obs(conn: psycopg.Connection, prev: Obs, cur: Obs) -> Comparison:
    return compare_many(conn, [(prev, cur)])[0]


def checkpoint_cells(conn: psycopg.Connection, checkpoint_id: str) -> tuple[dict | None, list[Cell], int]:
    """(checkpoint row, cells with comparisons, family size) for a training checkpoint."""
    ck = conn.execute("""select c.checkpoint_id, c.model_id, c.training_step, m.model_type
                           from checkpoints c join models m using (model_id) where c.checkpoint_id = %s""",
                      (checkpoint_id,)).fetchone()
    if ck is None or ck["training_step"] is None or ck["model_type"] != "training":
        return ck, [], 0
    rows = conn.execute(_CELLS_SQL, {"c": checkpoint_id}).fetchall()
    by_ds: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_ds.setdefault(r["dataset_name"], {})[r["role"]] = r
    cells: list[Cell] = []
    for ds, roles in sorted(by_ds.items()):
        if "cur" not in roles:
            continue
        cells.append(Cell(ds, _obs(roles["cur"]), _obs(roles["prev"]) if "prev" in roles else None,
                          _obs(roles["best"]) if "best" in roles else None, bool(roles["cur"]["hib"])))
    tested = [c for c in cells if c.prev is not None]
    for cell, comp in zip(tested, compare_many(conn, [(c.prev, c.cur) for c in tested])):
        cell.comparison = comp
    fam = {r["dataset_name"] for r in conn.execute(
        _PREV_FAMILY_SQL, {"m": ck["model_id"], "s": ck["training_step"]}).fetchall()}
    family = fam | {c.dataset for c in cells}
    return ck, cells, len(family)


# ------------------------------------------------------------------ writing alerts


def _activity(conn: psycopg.Connection, event_type: str, model_id: str | None, checkpoint_id: str | None,
              dataset: str | None, summary: str, detail: dict, actor: str = "eval360") -> None:
    conn.execute(
        """insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
           values (%s, %s, %s, %s, %s, %s, %s)""",
        (event_type, model_id, checkpoint_id, dataset, actor, summary, Jsonb(_json_safe(detail))),
    )


def _json_safe(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return _json_safe(v.item())
    return v


def raise_alert(conn: psycopg.Connection, j: Judgement, model_id: str, checkpoint_id: str,
                training_step: int | None) -> tuple[int, str]:
    """Insert, re-open or refresh one alert. Returns (alert id, 'new' | 'reopened' | 'open')."""
    detail = _json_safe(j.detail)
    row = conn.execute(
        """insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message, detail)
           values (%s, %s, %s, %s, %s, %s, %s)
           on conflict (alert_type, checkpoint_id, dataset_name) do nothing
           returning id, created_at""",
        (j.alert_type, model_id, checkpoint_id, j.dataset, j.severity, j.message, Jsonb(detail)),
    ).fetchone()
    if row is not None:
        _activity(conn, "alert", model_id, checkpoint_id, j.dataset, f"[{j.severity}] {j.alert_type}: {j.message}",
                  {"alert_id": row["id"], "alert_type": j.alert_type, "severity": j.severity})
        if j.alert_type in WEBHOOK_EVENTS:
            from .webhooks import alert_payload, enqueue

            enqueue(conn, j.alert_type, alert_payload(
                row["id"], j.alert_type, model_id, checkpoint_id, training_step, j.dataset, j.severity, j.message,
                detail, row["created_at"]))
        return row["id"], "new"
    old = conn.execute(
        """update alerts a set severity = %s, message = %s, detail = %s, resolved_at = null,
                  updated_at = now()
             from (select id, resolved_at from alerts
                    where alert_type = %s and checkpoint_id = %s and dataset_name is not distinct from %s
                    for update) o
            where a.id = o.id
           returning a.id, o.resolved_at as was_resolved""",
        (j.severity, j.message, Jsonb(detail), j.alert_type, checkpoint_id, j.dataset),
    ).fetchone()
    if old["was_resolved"] is not None:
        _activity(conn, "alert_reopened", model_id, checkpoint_id, j.dataset,
                  f"[{j.severity}] {j.alert_type} holds again: {j.message}",
                  {"alert_id": old["id"], "alert_type": j.alert_type, "severity": j.severity})
        return old["id"], "reopened"
    return old["id"], "open"


def resolve_alert(conn: psycopg.Connection, alert: dict, why: str) -> None:
    conn.execute("update alerts set resolved_at = now(), updated_at = now() where id = %s and resolved_at is null",
                 (alert["id"],))
    _activity(conn, "alert_resolved", alert["model_id"], alert["checkpoint_id"], alert["dataset_name"],
              f"{alert['alert_type']} no longer holds ({why}): {alert['message']}",
              {"alert_id": alert["id"], "alert_type": alert["alert_type"]})


def _reconcile(conn: psycopg.Connection, desired: dict[tuple[str, str, str | None], Judgement],
               existing: list[dict], meta: dict[str, tuple[str, int | None]], why: str) -> None:
    """Make the open alerts in scope equal `desired` ((type, checkpoint, dataset) -> judgement)."""
    # One pass in key order over everything touched: two concurrent re-judgements lock the alert rows in
    # the same order, so they wait for each other instead of deadlocking.
    have = {(a["alert_type"], a["checkpoint_id"], a["dataset_name"]): a for a in existing}
    for key in sorted(set(desired) | set(have), key=lambda k: (k[0], k[1], k[2] or "")):
        j, a = desired.get(key), have.get(key)
        if j is None:
            if a["resolved_at"] is None:
                resolve_alert(conn, a, why)
            continue
        if a is not None and a["resolved_at"] is None and (a["severity"], a["message"]) == (j.severity, j.message):
            continue  # unchanged
        model_id, step = meta[key[1]]
        raise_alert(conn, j, model_id, key[1], step)


def evaluate_checkpoint(conn: psycopg.Connection, checkpoint_id: str, alpha: float = ALPHA) -> list[Judgement]:
    """Re-judge regression / improvement / new_best of one checkpoint from the stored data."""
    ck, cells, fam = checkpoint_cells(conn, checkpoint_id)
    judgements = judge(cells, fam, alpha) if cells else []
    existing = conn.execute(
        """select id, alert_type, model_id, checkpoint_id, dataset_name, severity, message, resolved_at
             from alerts where checkpoint_id = %s and alert_type = any(%s)""",
        (checkpoint_id, list(MANAGED))).fetchall()
    if ck is None:
        return []
    desired = {(j.alert_type, checkpoint_id, j.dataset): j for j in judgements}
    _reconcile(conn, desired, existing, {checkpoint_id: (ck["model_id"], ck["training_step"])},
               "re-judged with the current data")
    return judgements


# ------------------------------------------------------------------ missing evaluations

_MISSING_SQL = """
with have as (
  select r.checkpoint_id, r.dataset_name, c.training_step
    from eval_runs r join checkpoints c on c.checkpoint_id = r.checkpoint_id
   where r.model_id = %(m)s and r.is_current and r.status = 'completed' and c.training_step is not null
), bounds as (
  select dataset_name, min(training_step) lo, max(training_step) hi from have
   where dataset_name = any(%(ds)s) group by dataset_name
), ck as (
  select checkpoint_id, training_step from checkpoints
   where model_id = %(m)s and training_step is not null
     and (%(c)s::text is null or checkpoint_id = %(c)s::text)
)
select ck.checkpoint_id, ck.training_step, b.dataset_name,
       (select array_agg(distinct s.suite_id order by s.suite_id) from suites s
         where b.dataset_name = any(s.dataset_names)
           and exists (select 1 from have h where h.checkpoint_id = ck.checkpoint_id
                        and h.dataset_name = any(s.dataset_names))) as suites
  from ck join bounds b on ck.training_step > b.lo and ck.training_step < b.hi
 where not exists (select 1 from have h where h.checkpoint_id = ck.checkpoint_id and h.dataset_name = b.dataset_name)
   and exists (select 1 from suites s join have h on h.dataset_name = any(s.dataset_names)
                where b.dataset_name = any(s.dataset_names) and h.checkpoint_id = ck.checkpoint_id)
"""


def reconcile_missing(conn: psycopg.Connection, model_id: str, datasets: Sequence[str],
                      checkpoint_id: str | None = None) -> None:
    """Re-judge missing_evaluation alerts of a model for these datasets (optionally one checkpoint only)."""
    ds = sorted(set(datasets))
    if not ds:
        return
    rows = conn.execute(_MISSING_SQL, {"m": model_id, "ds": ds, "c": checkpoint_id}).fetchall()
    desired: dict[tuple[str, str, str | None], Judgement] = {}
    meta: dict[str, tuple[str, int | None]] = {}
    for r in rows:
        suites = ", ".join(r["suites"] or [])
        desired[(MISSING, r["checkpoint_id"], r["dataset_name"])] = Judgement(
            MISSING, r["dataset_name"], "warning",
            f"step {r['training_step']} has no completed result on {r['dataset_name']} (suite {suites}), "
            "which checkpoints before and after it have",
            {"suites": r["suites"] or [], "step": r["training_step"]})
        meta[r["checkpoint_id"]] = (model_id, r["training_step"])
    existing = conn.execute(
        """select id, alert_type, model_id, checkpoint_id, dataset_name, severity, message, resolved_at
             from alerts where alert_type = %s and model_id = %s and dataset_name = any(%s)
              and (%s::text is null or checkpoint_id = %s::text)""",
        (MISSING, model_id, ds, checkpoint_id, checkpoint_id)).fetchall()
    _reconcile(conn, desired, existing, meta, "the dataset is no longer missing")


def suite_datasets_with(conn: psycopg.Connection, dataset: str) -> list[str]:
    rows = conn.execute("select distinct unnest(dataset_names) d from suites where %s = any(dataset_names)",
                        (dataset,)).fetchall()
    return [r["d"] for r in rows]


# ------------------------------------------------------------------ what to re-judge when data changes


def affected_checkpoints(conn: psycopg.Connection, model_id: str, checkpoint_id: str, dataset: str,
                         step: int) -> list[str]:
    """The checkpoints whose alerts can change when (checkpoint, dataset) changes, in step order."""
    rows = conn.execute(
        """select checkpoint_id, training_step from (
             (select c.checkpoint_id, c.training_step from checkpoints c
               where c.model_id = %(m)s and c.training_step > %(s)s
                 and exists (select 1 from eval_runs x where x.checkpoint_id = c.checkpoint_id and x.is_current
                             and x.status = 'completed')
               order by c.training_step limit 1)
             union
             (select c.checkpoint_id, c.training_step from checkpoints c
                join eval_runs r on r.checkpoint_id = c.checkpoint_id and r.is_current and r.status = 'completed'
                                and r.dataset_name = %(d)s
               where c.model_id = %(m)s and c.training_step > %(s)s order by c.training_step limit 1)
             union
             select c.checkpoint_id, c.training_step from alerts a join checkpoints c using (checkpoint_id)
              where a.model_id = %(m)s and a.dataset_name = %(d)s and a.alert_type = any(%(t)s)
                and c.training_step > %(s)s
           ) x order by training_step""",
        {"m": model_id, "s": step, "d": dataset, "t": list(MANAGED)}).fetchall()
    return [checkpoint_id] + [r["checkpoint_id"] for r in rows if r["checkpoint_id"] != checkpoint_id]


def on_change(conn: psycopg.Connection, model_id: str, checkpoint_id: str, dataset: str,
              step: int | None, done: set[str] | None = None) -> None:
    """Re-judge everything a change of (checkpoint, dataset) can affect. Inside the caller's transaction.

    `done`: checkpoints already re-judged in this transaction (a worker batch holding 40 datasets of
    one checkpoint judges it once, not 40 times).
    """
    done = set() if done is None else done
    if step is not None:
        for cid in affected_checkpoints(conn, model_id, checkpoint_id, dataset, step):
            if cid not in done:
                evaluate_checkpoint(conn, cid)
                done.add(cid)
    row = conn.execute(
        """select (select array_agg(distinct d order by d) from suites, unnest(dataset_names) d
                    where %(d)s = any(dataset_names)) as suite_ds,
                  exists (select 1 from alerts where alert_type = %(t)s and model_id = %(m)s
                          and dataset_name = %(d)s) as has_missing""",
        {"d": dataset, "m": model_id, "t": MISSING}).fetchone()
    if row["suite_ds"] or row["has_missing"]:
        reconcile_missing(conn, model_id, [dataset])
    others = [d for d in (row["suite_ds"] or []) if d != dataset]
    if others:
        reconcile_missing(conn, model_id, others, checkpoint_id)
    from .promotion import check_promotion

    check_promotion(conn, checkpoint_id)


def reevaluate_model(conn: psycopg.Connection, model_id: str) -> int:
    """Re-judge every checkpoint of a model (after a deletion or a change of benchmark direction).

    The judgement reads the views: the caller has brought the facts up to date (flush_facts), as
    every API request does first, before it takes any lock."""
    cks = conn.execute("""select checkpoint_id from checkpoints where model_id = %s and training_step is not null
                          order by training_step""", (model_id,)).fetchall()
    for r in cks:
        evaluate_checkpoint(conn, r["checkpoint_id"])
    ds = [r["dataset_name"] for r in conn.execute(
        "select distinct dataset_name from eval_runs where model_id = %s", (model_id,)).fetchall()]
    ds += [r["dataset_name"] for r in conn.execute(
        "select distinct dataset_name from alerts where model_id = %s and alert_type = %s and dataset_name is not null",
        (model_id, MISSING)).fetchall()]
    reconcile_missing(conn, model_id, ds)
    return len(cks)


def rejudge_all(conn: psycopg.Connection) -> int:
    """Re-judge every training model, one transaction each (the worker does this once at start, so data
    written without the ingest hook, e.g. by the demo loader or by SQL, gets its alerts). Returns models done."""
    flush_facts(conn)  # the judgement reads the views, which read the facts
    models = [r["model_id"] for r in conn.execute(
        "select model_id from models where model_type = 'training' order by model_id").fetchall()]
    for m in models:
        with conn.transaction():
            reevaluate_model(conn, m)
    return len(models)


def judge_inline() -> bool:
    """EVAL360_ALERTS_INLINE=1: judge in the ingest transaction. Default: queue the cell in that
    transaction (never lost) and let the worker judge it within seconds, so ingest stays fast
    (judging a cell re-runs the tests of its whole checkpoint, ~20 ms)."""
    return os.environ.get("EVAL360_ALERTS_INLINE", "").lower() in {"1", "true", "yes"}


def post_result_hook(conn: psycopg.Connection, stored: dict) -> None:
    """Registered in ingest.post_result_hooks; judges inline only with EVAL360_ALERTS_INLINE.

    Either way eval360_store_result has queued the cell in alert_recheck in the same transaction:
    the worker judges it (or re-judges it, which heals two concurrent posts of one checkpoint that
    could not see each other's rows).
    """
    if stored.get("model_type") != "training" or not judge_inline():
        return
    # The judgement reads the views, which read the facts: those of this cell (written in this
    # transaction), and whatever other writers queued, unless another inline judgement is draining
    # (then the worker's re-judgement from alert_recheck heals what this one could not see).
    conn.execute("""select score_facts_refresh(array(select eval_run_id from eval_runs
                                                       where checkpoint_id = %s and dataset_name = %s)),
                           eval360_flush_facts(null, false)""",
                 (stored["checkpoint_id"], stored["dataset_name"]))
    on_change(conn, stored["model_id"], stored["checkpoint_id"], stored["dataset_name"],
              stored.get("training_step"))


# Lets the ingest route skip the explicit transaction when no hook has work to do.
post_result_hook.is_idle = lambda: not judge_inline()  # type: ignore[attr-defined]


def process_rechecks(conn: psycopg.Connection, limit: int = 200) -> int:
    """Worker step: re-judge queued cells (examples arrived, or a post to heal). Returns the count."""
    # The judgement reads the views, which read the facts: bring them up to date first, before this
    # transaction locks queued cells (a writer queueing one of them may hold the facts lock shared).
    # What is written after this flush queues its cell again, so the next round judges it.
    flush_facts(conn)
    with conn.transaction():
        rows = conn.execute(
            """delete from alert_recheck where (checkpoint_id, dataset_name) in (
                 select checkpoint_id, dataset_name from alert_recheck order by queued_at
                  limit %s for update skip locked)
               returning checkpoint_id, dataset_name""", (limit,)).fetchall()
        if not rows:
            return 0
        cks = {r["checkpoint_id"]: r for r in conn.execute(
            """select c.checkpoint_id, c.model_id, c.training_step, m.model_type
                 from checkpoints c join models m using (model_id) where c.checkpoint_id = any(%s)""",
            ([r["checkpoint_id"] for r in rows],)).fetchall()}
        done: set[str] = set()
        for r in sorted(rows, key=lambda r: (r["checkpoint_id"], r["dataset_name"])):
            ck = cks.get(r["checkpoint_id"])
            if ck is None or ck["model_type"] != "training":
                continue
            on_change(conn, ck["model_id"], ck["checkpoint_id"], r["dataset_name"], ck["training_step"], done)
    return len(rows)


def register() -> None:
    """Add the alert hook to the ingest path (idempotent)."""
    from . import ingest

    if post_result_hook not in ingest.post_result_hooks:
        ingest.post_result_hooks.append(post_result_hook)
