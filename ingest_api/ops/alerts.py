"""Alert rules: regression, improvement, new_best (judged per checkpoint) and missing_evaluation.

The rule (docs/alerts.md has the assumptions and the simulation figures):

* Each (model, dataset) is a curve over the model's checkpoints (same primary metric). A checkpoint
  C is compared with the **level of the curve before it**: a straight line fitted (weights 1/sampling
  variance) to the up to 20 previous checkpoints, evaluated at C; fewer than 4 points give a flat
  weighted mean. The same comparison is made for the mean of the last 2 and the last 3 checkpoints
  (a sustained drop), and the smallest of the three p-values, Bonferroni-corrected, is the
  dataset's p (stats.curve_scan / stats.scan_p). Where C and its predecessor both have complete
  example rows, the one-checkpoint test is the paired one (mid-p McNemar, or paired t on fractional
  scores), and with a single earlier checkpoint it is the test /api/diff uses: stats.compare_scores
  on the same inputs (v_current_scores, v_example_pair_stats), so both report the same p-value.
* Not testable (no n, no examples, no standard error): no p-value, no alert.
* The two-sided p-values of C's datasets are corrected together with Benjamini-Hochberg; the family
  is every dataset C has plus every dataset the previous checkpoint has (a dataset not posted yet
  counts as p = 1), so a checkpoint whose results arrive one by one never raises an alert that its
  later results would correct away.
* regression: q < ALPHA, the score moved the bad way (direction from benchmark_metadata), and it is
  below the best earlier score. improvement: q < ALPHA the good way; new_best: an improvement that
  beats every earlier checkpoint.
* severity: a regression is critical when the drop is at least the dataset's critical size
  (benchmark_metadata.critical_drop_points, else EVAL360_ALERT_CRITICAL_POINTS, default 5 points)
  AND the evidence is strong (q < ALPHA / 10); warning otherwise. improvement / new_best: info.
* missing_evaluation: checkpoint C lacks dataset d of a suite, C has another dataset of that suite,
  and checkpoints of the same model on both sides of C have d. severity warning.
* Where it runs: ingest queues the cell in alert_recheck in its transaction (eval360_store_result, and
  a trigger on example_results); the worker takes a whole batch of queued cells, reads the curves of
  their models in one statement and judges them in Python (vectorised), then writes only what
  changed. EVAL360_ALERTS_INLINE=1 judges in the ingest transaction instead.
* Alerts are a pure function of the stored data: a re-judgement of a model inserts what newly holds
  (one row per (type, checkpoint, dataset)), resolves what no longer holds, re-opens what holds
  again, so posting order does not matter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from ..core.db import flush_facts
from ..core.settings import get_settings
from ..read.pairs import pair_stats
from ..stats import ALPHA
from . import promotion
from .activity import json_safe
from .alert_rules import MANAGED, MISSING, Curve, judge_curves
from .alert_store import WEBHOOK_EVENTS, Judgement, raise_alert
from .webhooks import alert_payload, enqueue

log = logging.getLogger("eval360.alerts")

# ------------------------------------------------------------------ reading the curves of models (one statement)

_CURVES_SQL = """
select model_id, checkpoint_id, training_step, dataset_name, eval_run_id, metric_name, metric_value, n, stderr,
       is_higher_better, n_examples, n_graded, n_fractional, critical_drop_points
  from v_judged_scores
 where model_id = any(%s) and model_type = 'training' and training_step is not null
 order by model_id, dataset_name, metric_name, training_step, checkpoint_id
"""


def load_curves(conn: psycopg.Connection, model_ids: Sequence[str]) -> dict[str, tuple[list[Curve], dict[str, int],
                                                                                     dict[str, int]]]:
    """{model: (curves, family size per checkpoint, step per checkpoint)}: one read of the scores, one of
    the paired counts (v_example_pair_stats, through read.pairs.pair_stats)."""
    rows = conn.execute(_CURVES_SQL, (list(model_ids),)).fetchall()
    curves: dict[str, dict[tuple[str, str], Curve]] = {}
    ck_ds: dict[str, dict[str, set[str]]] = {}
    steps: dict[str, dict[str, int]] = {}
    for r in rows:
        m = r["model_id"]
        key = (r["dataset_name"], r["metric_name"])
        c = curves.setdefault(m, {}).get(key)
        if c is None:
            c = curves[m][key] = Curve(r["dataset_name"], [], [], [], bool(r["is_higher_better"]),
                                       r["critical_drop_points"])
        c.checkpoint_ids.append(r["checkpoint_id"])
        c.steps.append(r["training_step"])
        c.rows.append(r)
        ck_ds.setdefault(m, {}).setdefault(r["checkpoint_id"], set()).add(r["dataset_name"])
        steps.setdefault(m, {})[r["checkpoint_id"]] = r["training_step"]
    want: dict[tuple[str, str], tuple[Curve, int]] = {}
    for per in curves.values():
        for c in per.values():
            for i in range(1, len(c.rows)):
                a, b = c.rows[i - 1], c.rows[i]
                if a["n_graded"] and b["n_graded"]:
                    want[(a["eval_run_id"], b["eval_run_id"])] = (c, i)
    if want:
        for k, v in pair_stats(conn, list(want)).items():
            c, i = want[k]
            c.pairs[i] = v
    out = {}
    for m, per in curves.items():
        order = sorted(ck_ds[m], key=lambda ck: (steps[m][ck], ck))
        fam = {}
        for k, ck in enumerate(order):
            fam[ck] = len(ck_ds[m][ck] | (ck_ds[m][order[k - 1]] if k else set()))
        out[m] = (list(per.values()), fam, steps[m])
    return out


# ------------------------------------------------------------------ writing alerts


def _reconcile(conn: psycopg.Connection, desired: dict[tuple[str, str, str | None], Judgement],
               existing: list[dict], meta: dict[str, tuple[str, int | None]], why: str) -> int:
    """Make the open alerts in scope equal `desired` ((type, checkpoint, dataset) -> judgement). Returns
    the number of alerts written. Set-based: new alerts and resolutions are a few statements whatever
    their number; re-opened or changed ones (rare) one by one."""
    # Key order throughout: two concurrent re-judgements lock the alert rows in the same order, so they
    # wait for each other instead of deadlocking.
    have = {(a["alert_type"], a["checkpoint_id"], a["dataset_name"]): a for a in existing}
    fresh: list[tuple[Judgement, str, str, int | None]] = []
    gone: list[dict] = []
    changed: list[tuple[Judgement, str, str, int | None]] = []
    for key in sorted(set(desired) | set(have), key=lambda k: (k[0], k[1], k[2] or "")):
        j, a = desired.get(key), have.get(key)
        if j is None:
            if a["resolved_at"] is None:
                gone.append(a)
            continue
        if a is not None and a["resolved_at"] is None and (a["severity"], a["message"]) == (j.severity, j.message):
            continue  # unchanged
        model_id, step = meta[key[1]]
        (changed if a is not None else fresh).append((j, model_id, key[1], step))
    for j, model_id, ck, step in changed:
        raise_alert(conn, j, model_id, ck, step)
    if gone:
        _resolve_many(conn, gone, why)
    if fresh:
        _raise_many(conn, fresh)
    return len(changed) + len(gone) + len(fresh)


def _raise_many(conn: psycopg.Connection, items: list[tuple[Judgement, str, str, int | None]]) -> None:
    """Insert new alerts in one statement, their activity in one, their webhook events in one per event."""
    details = [json_safe(j.detail) for j, *_ in items]
    rows = conn.execute(
        """insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message, detail)
           select * from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[])
           on conflict (alert_type, checkpoint_id, dataset_name) do nothing
           returning id, created_at, alert_type, checkpoint_id, dataset_name""",
        ([j.alert_type for j, *_ in items], [m for _, m, _, _ in items], [c for _, _, c, _ in items],
         [j.dataset for j, *_ in items], [j.severity for j, *_ in items], [j.message for j, *_ in items],
         [Jsonb(d) for d in details])).fetchall()
    made = {(r["alert_type"], r["checkpoint_id"], r["dataset_name"]): r for r in rows}
    new, raced = [], []
    for (j, m, c, st_), d in zip(items, details):
        r = made.get((j.alert_type, c, j.dataset))
        (new if r is not None else raced).append((j, m, c, st_, d, r))
    for j, m, c, st_, _, _ in raced:  # inserted meanwhile by a concurrent judgement: update it instead
        raise_alert(conn, j, m, c, st_)
    if not new:
        return
    conn.execute(
        """insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
           select 'alert', m, c, ds, 'eval360', s, d
             from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[]) as x(m, c, ds, s, d)""",
        ([m for _, m, *_ in new], [c for _, _, c, *_ in new], [j.dataset for j, *_ in new],
         [f"[{j.severity}] {j.alert_type}: {j.message}" for j, *_ in new],
         [Jsonb({"alert_id": r["id"], "alert_type": j.alert_type, "severity": j.severity})
          for j, _, _, _, _, r in new]))
    hooks = conn.execute("select 1 from webhooks where is_active limit 1").fetchone()
    if hooks:
        for j, m, c, st_, d, r in new:
            if j.alert_type in WEBHOOK_EVENTS:
                enqueue(conn, j.alert_type, alert_payload(r["id"], j.alert_type, m, c, st_, j.dataset, j.severity,
                                                          j.message, d, r["created_at"]))


def _resolve_many(conn: psycopg.Connection, alerts: list[dict], why: str) -> None:
    ids = [a["id"] for a in alerts]
    done = {r["id"] for r in conn.execute(
        """update alerts set resolved_at = now(), updated_at = now()
            where id = any(%s) and resolved_at is null returning id""", (ids,)).fetchall()}
    rows = [a for a in alerts if a["id"] in done]
    if rows:
        conn.execute(
            """insert into activity (event_type, model_id, checkpoint_id, dataset_name, actor, summary, detail)
               select 'alert_resolved', m, c, ds, 'eval360', s, d
                 from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[]) as x(m, c, ds, s, d)""",
            ([a["model_id"] for a in rows], [a["checkpoint_id"] for a in rows], [a["dataset_name"] for a in rows],
             [f"{a['alert_type']} no longer holds ({why}): {a['message']}" for a in rows],
             [Jsonb({"alert_id": a["id"], "alert_type": a["alert_type"]}) for a in rows]))


def judge_models(conn: psycopg.Connection, model_ids: Sequence[str],
                 touched: dict[str, set[tuple[str, str]]] | None = None, alpha: float = ALPHA) -> int:
    """Re-judge the managed alerts of these models, set-based: one read of their curves, the tests in
    Python, then only the alerts that change are written. `touched`: per model, the (checkpoint, dataset)
    cells that changed (missing_evaluation and promotion are re-checked around them); None = everything.
    Returns the number of alerts written (raised, changed or resolved)."""
    models = sorted(set(model_ids))
    if not models:
        return 0
    data = load_curves(conn, models)
    crit = get_settings().alert_critical_points
    desired: dict[tuple[str, str, str | None], Judgement] = {}
    meta: dict[str, tuple[str, int | None]] = {}
    for m, (curves, fam, steps) in data.items():
        desired.update(judge_curves(curves, fam, alpha=alpha, critical_default=crit))
        meta.update({ck: (m, st_) for ck, st_ in steps.items()})
    existing = conn.execute(
        """select id, alert_type, model_id, checkpoint_id, dataset_name, severity, message, resolved_at
             from alerts where model_id = any(%s) and alert_type = any(%s)""", (models, list(MANAGED))).fetchall()
    written = _reconcile(conn, desired, existing, meta, "re-judged with the current data")
    _missing_and_promotion(conn, models, data, touched)
    return written


def _missing_and_promotion(conn: psycopg.Connection, models: list[str], data: dict,
                           touched: dict[str, set[tuple[str, str]]] | None) -> None:
    flags = conn.execute(
        """select exists (select 1 from suites) as suites,
                  array(select distinct model_id from alerts where alert_type = %s and model_id = any(%s)) as missing,
                  exists (select 1 from promotion_rules) as rules""", (MISSING, models)).fetchone()
    if flags["suites"] or flags["missing"]:
        suite_of: dict[str, list[str]] = {}
        if flags["suites"]:
            for r in conn.execute("select dataset_names from suites").fetchall():
                for d in r["dataset_names"] or []:
                    suite_of.setdefault(d, []).extend(r["dataset_names"])
        for m in models:
            if touched is None or m in flags["missing"]:
                ds = {c.dataset for c in data.get(m, ([], {}, {}))[0]} if touched is None else set()
                ds |= {d for _, d in (touched or {}).get(m, ())}
                ds |= {r["dataset_name"] for r in conn.execute(
                    "select distinct dataset_name from alerts where model_id = %s and alert_type = %s "
                    "and dataset_name is not null", (m, MISSING)).fetchall()}
            else:
                ds = {d for _, d in touched.get(m, ())}
            ds = {x for d in ds for x in [d, *suite_of.get(d, [])]} if suite_of else ds
            ds = {d for d in ds if d in suite_of or m in flags["missing"]}
            if ds:
                reconcile_missing(conn, m, sorted(ds))
    if flags["rules"]:
        for m in models:
            cks = ({ck for ck, _ in touched.get(m, ())} if touched is not None
                   else set(data.get(m, ([], {}, {}))[2]))
            for ck in sorted(cks):
                promotion.check_promotion(conn, ck)


# ------------------------------------------------------------------ missing evaluations

_MISSING_SQL = """
with have as (
  select checkpoint_id, dataset_name, training_step from v_current_scores
   where model_id = %(m)s and status = 'completed' and training_step is not null
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


# ------------------------------------------------------------------ what to re-judge when data changes


def reevaluate_model(conn: psycopg.Connection, model_id: str) -> int:
    """Re-judge every checkpoint of a model (after a deletion or a change of benchmark direction).

    The judgement reads the views: the caller has brought the facts up to date (flush_facts), as
    every API request does first, before it takes any lock."""
    judge_models(conn, [model_id], None)
    return conn.execute("select count(*) n from checkpoints where model_id = %s and training_step is not null",
                        (model_id,)).fetchone()["n"]


def rejudge_all(conn: psycopg.Connection) -> int:
    """Re-judge every training model, one transaction each (the worker does this once at start, so data
    written without the ingest hook, e.g. by the demo loader or by SQL, gets its alerts). Returns models done."""
    flush_facts(conn)  # the judgement reads the views, which read the facts
    models = [r["model_id"] for r in conn.execute(
        "select model_id from models where model_type = 'training' order by model_id").fetchall()]
    for m in models:
        with conn.transaction():
            judge_models(conn, [m], None)
    return len(models)


def judge_stored(conn: psycopg.Connection, stored: dict) -> None:
    """Judge a just-stored result inside the ingest transaction (EVAL360_ALERTS_INLINE=1: create_app
    passes this function to the ingest path as its `after_store`).

    Either way eval360_store_result has queued the cell in alert_recheck in the same transaction:
    the worker judges it (or re-judges it, which heals two concurrent posts of one checkpoint that
    could not see each other's rows).
    """
    if stored.get("model_type") != "training":
        return
    # The judgement reads the views, which read the facts: those of this cell (written in this
    # transaction), and whatever other writers queued, unless another inline judgement is draining
    # (then the worker's re-judgement from alert_recheck heals what this one could not see).
    conn.execute("""select score_facts_refresh(array(select eval_run_id from eval_runs
                                                       where checkpoint_id = %s and dataset_name = %s)),
                           eval360_flush_facts(null, false)""",
                 (stored["checkpoint_id"], stored["dataset_name"]))
    model_id = stored["model_id"]
    judge_models(conn, [model_id], {model_id: {(stored["checkpoint_id"], stored["dataset_name"])}})


def process_rechecks(conn: psycopg.Connection, limit: int = 20000) -> int:
    """Worker step: take a batch of queued cells (examples arrived, results posted) and re-judge their
    models set-based (judge_models). Returns the number of queued cells cleared."""
    # The judgement reads the views, which read the facts: bring them up to date first, before this
    # transaction locks queued cells (a writer queueing one of them may hold the facts lock shared).
    # What is written after this flush queues its cell again, so the next round judges it.
    flush_facts(conn)
    with conn.transaction():
        rows = conn.execute(
            """with q as (
                 delete from alert_recheck where (checkpoint_id, dataset_name) in (
                   select checkpoint_id, dataset_name from alert_recheck order by queued_at
                    limit %s for update skip locked)
                 returning checkpoint_id, dataset_name)
               select q.checkpoint_id, q.dataset_name, c.model_id, m.model_type
                 from q left join checkpoints c using (checkpoint_id) left join models m using (model_id)""",
            (limit,)).fetchall()
        if not rows:
            return 0
        touched: dict[str, set[tuple[str, str]]] = {}
        for r in rows:
            if r["model_type"] == "training":
                touched.setdefault(r["model_id"], set()).add((r["checkpoint_id"], r["dataset_name"]))
        if touched:
            judge_models(conn, sorted(touched), touched)
    return len(rows)
