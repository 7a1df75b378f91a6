"""Promotion gates: rules, the verdict for a checkpoint, and the promotion_ready event.

A rule applies to one model (model_id) or to every training model (model_id null). Its datasets
are the suite's datasets, plus `dataset_names`, plus the keys of `min_scores`; a rule naming no
dataset at all requires the datasets of the previous checkpoint (so a checkpoint is not judged
on its first posted result). Conditions, each reported with its numbers:

* coverage: every required dataset has a completed result with a value;
* min_scores {dataset: x}: the primary score is at least x (at most x for lower-is-better);
* min_category_scores {category: x}: the mean primary score over the required datasets of that
  category (benchmark_metadata.category) is at least x;
* baseline_model_id + baseline_margin: on every required dataset the baseline model has, the score
  is at least the baseline's best minus the margin (default 0);
* no_regressions (default true): no dataset is significantly worse than the reference checkpoint,
  which is the latest earlier *promoted* checkpoint of the model, else the earlier checkpoint with
  the best mean over the required datasets (among those that have them all), else the previous
  one. Same tests as the alerts (paired when both have example rows), BH-corrected over the datasets.

A checkpoint is ready when every applicable rule passes. The first time it is (checked on every
ingest of that checkpoint and when its example rows arrive) it is recorded in `promotions`, and a
promotion_ready alert (info), an activity event and the webhooks follow. Promotion is an event:
it is not withdrawn when later data would block it; promotion-status always answers from the
current data.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..core.errors import ApiError, not_found
from ..read.catalog import resolve_checkpoint
from ..read.pairs import pair_stats
from ..stats import ALPHA, benjamini_hochberg, compare_scores
from .activity import record_event
from .alert_store import Judgement, raise_alert

# The scores the verdict reads: v_judged_scores (what the alerts read; v_current_scores, scored runs only).
_VALUES_SQL = """
select checkpoint_id, training_step as step, dataset_name, eval_run_id, eval_run_id as run_id, metric_name,
       metric_value, metric_value as value, n, stderr, n_examples, n_graded, n_fractional,
       is_higher_better as hib, category
  from v_judged_scores where checkpoint_id = any(%s)
"""


def _values(conn: psycopg.Connection, checkpoint_ids: list[str]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {c: {} for c in checkpoint_ids}
    for r in conn.execute(_VALUES_SQL, (checkpoint_ids,)).fetchall():
        out[r["checkpoint_id"]][r["dataset_name"]] = r
    return out


def rule_out(r: dict) -> dict:
    """A rule as the API shows it (formats §6 keys first)."""
    return {"rule_name": r["rule_name"], "model_id": r["model_id"], "suite_id": r["suite_id"],
            "min_scores": r["min_scores"] or {}, "no_regressions": r["no_regressions"],
            "description": r["description"], "dataset_names": list(r["dataset_names"] or []),
            "min_category_scores": r["min_category_scores"] or {}, "baseline_model_id": r["baseline_model_id"],
            "baseline_margin": r["baseline_margin"], "created_at": r["created_at"], "updated_at": r["updated_at"]}


def applicable_rules(conn: psycopg.Connection, model_id: str) -> list[dict]:
    return conn.execute(
        """select p.*, s.dataset_names as suite_datasets from promotion_rules p
             left join suites s on s.suite_id = p.suite_id
             join models m on m.model_id = %s
            where p.model_id = m.model_id or (p.model_id is null and m.model_type = 'training')
            order by p.rule_name""", (model_id,)).fetchall()


def _required(rule: dict) -> list[str]:
    ds = list(rule.get("suite_datasets") or []) + list(rule["dataset_names"] or []) + list(rule["min_scores"] or {})
    return sorted(set(ds))


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.4g}"


def _previous_checkpoint(conn: psycopg.Connection, model_id: str, step: int) -> dict | None:
    return conn.execute(
        """select checkpoint_id, training_step from v_checkpoints
            where model_id = %s and training_step < %s and n_completed > 0
            order by training_step desc limit 1""", (model_id, step)).fetchone()


def _reference(conn: psycopg.Connection, model_id: str, step: int, datasets: list[str]) -> tuple[dict | None, str]:
    """(reference checkpoint, how it was chosen) for the no-regression condition."""
    row = conn.execute(
        """select p.checkpoint_id, c.training_step from promotions p join checkpoints c using (checkpoint_id)
            where p.model_id = %s and c.training_step < %s order by c.training_step desc limit 1""",
        (model_id, step)).fetchone()
    if row:
        return row, "previous promoted checkpoint"
    if datasets:
        row = conn.execute(
            """select checkpoint_id, training_step,
                      avg(case when is_higher_better then metric_value else -metric_value end) as score
                 from v_current_scores
                where model_id = %s and training_step < %s and dataset_name = any(%s)
                  and status = 'completed' and metric_value is not null
                group by checkpoint_id, training_step
               having count(distinct dataset_name) = %s
                order by score desc, training_step desc limit 1""",
            (model_id, step, datasets, len(set(datasets)))).fetchone()
        if row:
            return row, "best earlier checkpoint (mean over the rule's datasets)"
    row = _previous_checkpoint(conn, model_id, step)
    return row, "previous checkpoint"


def evaluate_rule(conn: psycopg.Connection, rule: dict, ck: dict, *, cheap_first: bool = False) -> dict:
    """Verdict of one rule for one checkpoint: passed, failures (text) and every condition with its numbers.

    cheap_first: skip the statistical condition when a cheap one already failed (the ingest hook).
    """
    cid, step, model_id = ck["checkpoint_id"], ck["training_step"], ck["model_id"]
    vals = _values(conn, [cid])[cid]
    required = _required(rule)
    implicit = not required
    if implicit and step is not None:
        prev = _previous_checkpoint(conn, model_id, step)
        prev_ds = list(_values(conn, [prev["checkpoint_id"]])[prev["checkpoint_id"]]) if prev else []
        required = sorted(set(prev_ds) | set(vals))
    conds: list[dict[str, Any]] = []

    def add(kind: str, passed: bool | None, text: str, **kw: Any) -> None:
        conds.append({"kind": kind, "passed": passed, "text": text, **kw})

    for d in required:
        v = vals.get(d)
        add("coverage", v is not None, f"{d}: " + ("completed result present" if v else "no completed result"),
            dataset=d, value=None if v is None else v["value"])
    for d, thr in sorted((rule["min_scores"] or {}).items()):
        v = vals.get(d)
        if v is None:
            continue  # reported by coverage
        ok = v["value"] >= float(thr) if v["hib"] else v["value"] <= float(thr)
        add("min_score", ok, f"{d}: {v['metric_name']} {_fmt(v['value'])} {'≥' if v['hib'] else '≤'} "
            f"{_fmt(float(thr))} required", dataset=d, value=v["value"], threshold=float(thr))
    for cat, thr in sorted((rule["min_category_scores"] or {}).items()):
        members = [vals[d] for d in (required if not implicit else list(vals)) if d in vals and vals[d]["category"] == cat]
        if not members:
            add("min_category_score", False, f"category {cat}: no completed result in this category",
                category=cat, threshold=float(thr), value=None, n_datasets=0)
            continue
        mean = sum(m["value"] for m in members) / len(members)
        add("min_category_score", mean >= float(thr),
            f"category {cat}: mean {_fmt(mean)} over {len(members)} datasets ≥ {_fmt(float(thr))} required",
            category=cat, value=mean, threshold=float(thr), n_datasets=len(members))
    if rule["baseline_model_id"]:
        margin = float(rule["baseline_margin"] or 0.0)
        base_rows = conn.execute(
            """select dataset_name, metric_value as value, is_higher_better as hib, checkpoint_id
                 from v_current_scores
                where model_id = %s and status = 'completed' and metric_value is not null
                  and dataset_name = any(%s)""",
            (rule["baseline_model_id"], required)).fetchall()
        best: dict[str, dict] = {}
        for b in base_rows:
            cur = best.get(b["dataset_name"])
            if cur is None or (b["value"] > cur["value"] if b["hib"] else b["value"] < cur["value"]):
                best[b["dataset_name"]] = b
        for d in required:
            v, b = vals.get(d), best.get(d)
            if v is None or b is None:
                continue
            need = b["value"] - margin if v["hib"] else b["value"] + margin
            ok = v["value"] >= need if v["hib"] else v["value"] <= need
            add("baseline", ok, f"{d}: {_fmt(v['value'])} vs baseline {rule['baseline_model_id']} "
                f"{_fmt(b['value'])} with margin {_fmt(margin)} (needs {'≥' if v['hib'] else '≤'} {_fmt(need)})",
                dataset=d, value=v["value"], baseline=b["value"], margin=margin, threshold=need)
    cheap_failed = any(c["passed"] is False for c in conds)
    if rule["no_regressions"] and step is not None and not (cheap_first and cheap_failed):
        common = [d for d in required if d in vals]
        ref, how = _reference(conn, model_id, step, common)
        if ref is None:
            add("no_regressions", True, "no earlier checkpoint to compare with", reference=None)
        else:
            rvals = _values(conn, [ref["checkpoint_id"]])[ref["checkpoint_id"]]
            pairs = [(d, rvals[d], vals[d], bool(vals[d]["hib"])) for d in common if d in rvals]
            pst = pair_stats(conn, [(a["eval_run_id"], b["eval_run_id"]) for _, a, b, _ in pairs
                                    if a["n_graded"] and b["n_graded"]])
            comps = []
            for _, a, b, _ in pairs:
                comps.append(compare_scores(a, b, pst.get((a["eval_run_id"], b["eval_run_id"]))))
            qs = benjamini_hochberg([c.p_value for c in comps])
            worse = []
            tests = [{"dataset": d, "p_value": comp.p_value, "q_value": q, "method": comp.method, "effect": comp.effect}
                     for (d, _, _, _), comp, q in zip(pairs, comps, qs)]
            for (d, a, b, hib), comp, q in zip(pairs, comps, qs):
                bad = comp.effect is not None and (comp.effect < 0 if hib else comp.effect > 0)
                if q is not None and q < ALPHA and bad:
                    worse.append(d)
                    add("no_regressions", False,
                        f"{d}: significantly worse than step {ref['training_step']} ({how}): "
                        f"{_fmt(a['value'])} → {_fmt(b['value'])}, {comp.method}, p={comp.p_value:.2g}, q={q:.2g}",
                        dataset=d, value=b["value"], reference_value=a["value"], p_value=comp.p_value, q_value=q,
                        method=comp.method, reference=ref["checkpoint_id"])
            if not worse:
                add("no_regressions", True,
                    f"no significant regression vs step {ref['training_step']} ({how}) over {len(pairs)} datasets",
                    reference=ref["checkpoint_id"], n_datasets=len(pairs), tests=tests)
    passed = all(c["passed"] is not False for c in conds)
    return {"rule_name": rule["rule_name"], "passed": passed,
            "failures": [c["text"] for c in conds if c["passed"] is False],
            "description": rule["description"], "datasets": required, "conditions": conds}


def _resolve_checkpoint(conn: psycopg.Connection, model_id: str, checkpoint_id: str | None) -> dict | None:
    if checkpoint_id:
        cid = resolve_checkpoint(conn, checkpoint_id, model_id)  # within the model: its id, else its alias
        row = None if cid is None else conn.execute(
            "select c.checkpoint_id, c.model_id, c.training_step from checkpoints c where c.checkpoint_id = %s",
            (cid,)).fetchone()
        if row is None or row["model_id"] != model_id:
            raise not_found("checkpoint", checkpoint_id)
        return row
    return conn.execute(
        """select checkpoint_id, model_id, training_step from v_checkpoints
            where model_id = %s and n_completed > 0
            order by training_step desc nulls last, created_at desc limit 1""", (model_id,)).fetchone()


def promotion_status(conn: psycopg.Connection, model_id: str, checkpoint_id: str | None = None) -> dict:
    """GET /api/models/{id}/promotion-status: ready / blocked / no_rules / no_data with every condition."""
    model = conn.execute("select model_id, model_type from models where model_id = %s", (model_id,)).fetchone()
    if model is None:
        raise not_found("model", model_id)
    ck = _resolve_checkpoint(conn, model_id, checkpoint_id)
    rules = applicable_rules(conn, model_id)
    out: dict[str, Any] = {"model_id": model_id, "checkpoint_id": ck and ck["checkpoint_id"],
                           "training_step": ck and ck["training_step"], "rules": [], "promoted": False,
                           "promoted_at": None}
    if ck is None:
        out["overall"] = "no_data"
        return out
    prom = conn.execute("select promoted_at from promotions where checkpoint_id = %s",
                        (ck["checkpoint_id"],)).fetchone()
    out["promoted"], out["promoted_at"] = prom is not None, prom and prom["promoted_at"]
    if not rules:
        out["overall"] = "no_rules"
        return out
    out["rules"] = [evaluate_rule(conn, r, ck) for r in rules]
    out["overall"] = "ready" if all(r["passed"] for r in out["rules"]) else "blocked"
    return out


def check_promotion(conn: psycopg.Connection, checkpoint_id: str) -> bool:
    """Record the first time a training checkpoint passes all its rules (promotion_ready). True if now promoted."""
    ck = conn.execute(
        """select c.checkpoint_id, c.model_id, c.training_step, m.model_type,
                  exists (select 1 from promotions p where p.checkpoint_id = c.checkpoint_id) as promoted,
                  exists (select 1 from promotion_rules r where r.model_id = c.model_id or r.model_id is null)
                    as has_rules
             from checkpoints c join models m using (model_id) where c.checkpoint_id = %s""",
        (checkpoint_id,)).fetchone()
    if (ck is None or ck["promoted"] or not ck["has_rules"] or ck["model_type"] != "training"
            or ck["training_step"] is None):
        return False
    rules = applicable_rules(conn, ck["model_id"])
    if not rules:
        return False
    verdicts = []
    for r in rules:
        v = evaluate_rule(conn, r, ck, cheap_first=True)
        if not v["passed"]:
            return False
        verdicts.append(v)
    row = conn.execute(
        """insert into promotions (checkpoint_id, model_id, detail) values (%s, %s, %s)
           on conflict (checkpoint_id) do nothing returning promoted_at""",
        (checkpoint_id, ck["model_id"], psycopg.types.json.Jsonb(
            {"rules": [v["rule_name"] for v in verdicts]}))).fetchone()
    if row is None:
        return False
    names = ", ".join(v["rule_name"] for v in verdicts)
    msg = f"step {ck['training_step']} passes its promotion rules ({names})"
    record_event(conn, "promotion", ck["model_id"], checkpoint_id, None, msg,
              {"rules": [v["rule_name"] for v in verdicts]})
    raise_alert(conn, Judgement("promotion_ready", None, "info", msg,
                                {"rules": [{"rule_name": v["rule_name"], "conditions": v["conditions"]}
                                           for v in verdicts], "step": ck["training_step"]}),
                ck["model_id"], checkpoint_id, ck["training_step"])
    return True


def validate_rule_refs(conn: psycopg.Connection, model_id: str | None, suite_id: str | None,
                       baseline_model_id: str | None) -> None:
    """422 when a rule names a model, suite or baseline that does not exist."""
    if model_id and not conn.execute("select 1 from models where model_id = %s", (model_id,)).fetchone():
        raise ApiError(422, f"model {model_id!r} does not exist", field="model_id")
    if suite_id and not conn.execute("select 1 from suites where suite_id = %s", (suite_id,)).fetchone():
        raise ApiError(422, f"suite {suite_id!r} does not exist", field="suite_id")
    if baseline_model_id and not conn.execute("select 1 from models where model_id = %s",
                                              (baseline_model_id,)).fetchone():
        raise ApiError(422, f"baseline model {baseline_model_id!r} does not exist", field="baseline_model_id")


__all__ = ["applicable_rules", "check_promotion", "evaluate_rule", "promotion_status", "rule_out"]
