"""Admin writes, shared by the API and the dashboard: suites, benchmark metadata, promotion rules,
webhooks, model edits and deletions, alert acknowledgements.

Each function runs inside the caller's transaction, validates what the request models cannot
(references to other rows), writes, records an activity event, and returns a JSON-ready dict.
The public reads of the same tables (alerts, activity) are in read/.
"""

from __future__ import annotations

import math
import secrets
from typing import Annotated, Literal
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from ..core import netguard
from ..core.errors import ApiError, not_found
from ..core.ids import Ident
from ..read.catalog import resolve_checkpoint
from . import alerts as A
from .activity import record_event
from .promotion import check_promotion, rule_out, validate_rule_refs
from .webhooks import DEFAULT_EVENTS, EVENTS, webhook_out

Name = Annotated[str, Field(min_length=1, max_length=300)]
Text = Annotated[str, Field(max_length=5000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(v: float | None, what: str) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number")
    return v


class SuiteIn(_In):
    suite_id: Ident
    display_name: Name
    description: Text | None = None
    dataset_names: list[Ident] = Field(min_length=1, max_length=5000)


class BenchmarkIn(_In):
    dataset_name: Ident
    category: Name | None = None
    subcategory: Name | None = None
    primary_metric: Name | None = None
    description: Text | None = None
    is_higher_better: StrictBool | None = None
    higher_is_better: StrictBool | None = None  # accepted spelling
    chance_level: float | None = None
    # The drop (in points) a regression needs to be critical on this dataset (default
    # EVAL360_ALERT_CRITICAL_POINTS, 5); null clears the override.
    critical_drop_points: float | None = Field(default=None, gt=0, le=1e6)

    @field_validator("chance_level")
    @classmethod
    def _fin(cls, v: float | None) -> float | None:
        return _finite(v, "chance_level")


class BenchmarksIn(_In):
    benchmarks: list[BenchmarkIn] = Field(min_length=1, max_length=10000)


class RuleIn(_In):
    rule_name: Ident
    model_id: Ident | None = None
    suite_id: Ident | None = None
    dataset_names: list[Ident] = Field(default_factory=list, max_length=5000)
    min_scores: dict[Ident, float] = Field(default_factory=dict)
    min_category_scores: dict[Name, float] = Field(default_factory=dict)
    baseline_model_id: Ident | None = None
    baseline_margin: float | None = Field(default=None, ge=0)
    no_regressions: StrictBool = True
    description: Text | None = None

    @field_validator("min_scores", "min_category_scores")
    @classmethod
    def _fin(cls, v: dict) -> dict:
        for k, x in v.items():
            _finite(x, f"threshold of {k}")
        return v

    @field_validator("baseline_margin")
    @classmethod
    def _fin_margin(cls, v: float | None) -> float | None:
        return _finite(v, "baseline_margin")


class WebhookIn(_In):
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    events: list[Literal[EVENTS]] = Field(default_factory=lambda: list(DEFAULT_EVENTS), min_length=1)  # type: ignore[valid-type]
    active: StrictBool = True
    secret: Annotated[str, Field(min_length=16, max_length=500)] | None = None
    description: Text | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        if not parts.hostname:
            raise ValueError("must name a host")
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError as exc:
            raise ValueError(f"invalid port: {exc}") from None
        if any(c.isspace() or ord(c) < 32 for c in v.strip()):
            raise ValueError("must not contain whitespace or control characters")
        netguard.check_registration(v.strip())  # loopback, private, link-local …: 422 (netguard.py)
        return v.strip()


class ModelPatch(_In):
    display_name: Name | None = None
    owner: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    param_count: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    is_pinned: StrictBool | None = None
    model_type: Literal["training", "baseline"] | None = None


class AckIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    by: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    acknowledged_by: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    note: Text | None = None


def record(conn: psycopg.Connection, event_type: str, summary: str, detail: dict, *, actor: str = "admin",
           model_id: str | None = None, checkpoint_id: str | None = None, dataset: str | None = None) -> None:
    record_event(conn, event_type, model_id, checkpoint_id, dataset, summary, detail, actor=actor)


# ------------------------------------------------------------------ suites and benchmark metadata


def upsert_suite(conn: psycopg.Connection, s: SuiteIn, actor: str = "admin") -> dict:
    names = list(dict.fromkeys(s.dataset_names))
    old = conn.execute("select dataset_names from suites where suite_id = %s for update", (s.suite_id,)).fetchone()
    conn.execute(
        """insert into suites (suite_id, display_name, description, dataset_names) values (%s, %s, %s, %s)
           on conflict (suite_id) do update set display_name = excluded.display_name,
             description = excluded.description, dataset_names = excluded.dataset_names, updated_at = now()""",
        (s.suite_id, s.display_name, s.description, names))
    record(conn, "admin", f"suite {s.suite_id} {'updated' if old else 'created'} ({len(names)} datasets)",
           {"action": "suite_upsert", "suite_id": s.suite_id, "dataset_names": names}, actor=actor)
    # Missing-evaluation alerts follow the suites.
    affected = set(names) | set(old["dataset_names"] if old else [])
    for m in conn.execute("""select distinct r.model_id from eval_runs r join models m using (model_id)
                              where m.model_type = 'training' and r.dataset_name = any(%s)""",
                          (list(affected),)).fetchall():
        A.reconcile_missing(conn, m["model_id"], sorted(affected))
    return {"ok": True, "suite_id": s.suite_id, "created": old is None, "dataset_names": names}


def upsert_benchmarks(conn: psycopg.Connection, body: BenchmarksIn, actor: str = "admin") -> dict:
    seen: dict[str, BenchmarkIn] = {}
    for b in body.benchmarks:
        seen[b.dataset_name] = b  # the last entry of a dataset wins
    flipped: list[str] = []
    for b in seen.values():
        given = b.model_fields_set
        hib = b.is_higher_better if "is_higher_better" in given else b.higher_is_better
        hib_given = ("is_higher_better" in given or "higher_is_better" in given) and hib is not None
        old = conn.execute("select is_higher_better from benchmark_metadata where dataset_name = %s for update",
                           (b.dataset_name,)).fetchone()
        conn.execute(
            """insert into benchmark_metadata (dataset_name, category, subcategory, primary_metric,
                                               is_higher_better, chance_level, description, critical_drop_points)
               values (%(d)s, %(cat)s, %(sub)s, %(pm)s, coalesce(%(hib)s, true), %(ch)s, %(desc)s, %(crit)s::float8)
               on conflict (dataset_name) do update set
                 category = case when %(set_cat)s then excluded.category else benchmark_metadata.category end,
                 subcategory = case when %(set_sub)s then excluded.subcategory else benchmark_metadata.subcategory end,
                 primary_metric = case when %(set_pm)s then excluded.primary_metric
                                       else benchmark_metadata.primary_metric end,
                 is_higher_better = case when %(set_hib)s then excluded.is_higher_better
                                         else benchmark_metadata.is_higher_better end,
                 chance_level = case when %(set_ch)s then excluded.chance_level else benchmark_metadata.chance_level end,
                 description = case when %(set_desc)s then excluded.description else benchmark_metadata.description end,
                 critical_drop_points = case when %(set_crit)s then %(crit)s::float8
                                             else benchmark_metadata.critical_drop_points end,
                 updated_at = now()""",
            {"d": b.dataset_name, "cat": b.category, "sub": b.subcategory, "pm": b.primary_metric,
             "hib": hib if hib_given else None, "ch": b.chance_level, "desc": b.description,
             "set_cat": "category" in given, "set_sub": "subcategory" in given, "set_pm": "primary_metric" in given,
             "set_hib": hib_given, "set_ch": "chance_level" in given, "set_desc": "description" in given,
             "set_crit": "critical_drop_points" in given, "crit": b.critical_drop_points})
        if hib_given and (old["is_higher_better"] if old else True) != hib:
            flipped.append(b.dataset_name)
        elif "critical_drop_points" in given:
            flipped.append(b.dataset_name)  # severities change: re-judge too
    record(conn, "admin", f"benchmark metadata upserted for {len(seen)} datasets",
           {"action": "benchmark_metadata_upsert", "dataset_names": sorted(seen)}, actor=actor)
    if flipped:  # the direction of "worse" changed: re-judge the models that have these datasets
        for m in conn.execute("select distinct model_id from eval_runs where dataset_name = any(%s)",
                              (flipped,)).fetchall():
            A.reevaluate_model(conn, m["model_id"])
    return {"ok": True, "count": len(seen), "dataset_names": sorted(seen)}


# ------------------------------------------------------------------ promotion rules


def upsert_rule(conn: psycopg.Connection, r: RuleIn, actor: str = "admin") -> dict:
    validate_rule_refs(conn, r.model_id, r.suite_id, r.baseline_model_id)
    row = conn.execute(
        """insert into promotion_rules (rule_name, model_id, suite_id, dataset_names, min_scores, min_category_scores,
                                        baseline_model_id, baseline_margin, no_regressions, description)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (rule_name) do update set model_id = excluded.model_id, suite_id = excluded.suite_id,
             dataset_names = excluded.dataset_names, min_scores = excluded.min_scores,
             min_category_scores = excluded.min_category_scores, baseline_model_id = excluded.baseline_model_id,
             baseline_margin = excluded.baseline_margin, no_regressions = excluded.no_regressions,
             description = excluded.description, updated_at = now()
           returning (xmax = 0) as created""",
        (r.rule_name, r.model_id, r.suite_id, list(dict.fromkeys(r.dataset_names)), Jsonb(r.min_scores),
         Jsonb(r.min_category_scores), r.baseline_model_id, r.baseline_margin, r.no_regressions, r.description),
    ).fetchone()
    record(conn, "admin", f"promotion rule {r.rule_name} {'created' if row['created'] else 'updated'}",
           {"action": "promotion_rule_upsert", "rule": r.model_dump()}, actor=actor, model_id=r.model_id)
    # The latest checkpoint of each model in scope may pass the new rule set already.
    for ck in conn.execute(
            """select distinct on (c.model_id) c.checkpoint_id from checkpoints c join models m using (model_id)
                where m.model_type = 'training' and c.training_step is not null
                  and (%s::text is null or c.model_id = %s::text)
                order by c.model_id, c.training_step desc""", (r.model_id, r.model_id)).fetchall():
        check_promotion(conn, ck["checkpoint_id"])
    return {"ok": True, "rule_name": r.rule_name, "created": bool(row["created"])}


def list_rules(conn: psycopg.Connection) -> dict:
    return {"rules": [rule_out(r) for r in conn.execute("select * from promotion_rules order by rule_name")]}


def delete_rule(conn: psycopg.Connection, name: str, actor: str = "admin") -> dict:
    row = conn.execute("delete from promotion_rules where rule_name = %s returning model_id", (name,)).fetchone()
    if row is None:
        raise not_found("promotion rule", name)
    record(conn, "admin", f"promotion rule {name} deleted", {"action": "promotion_rule_delete", "rule_name": name},
           actor=actor, model_id=row["model_id"])
    return {"ok": True, "rule_name": name, "deleted": {"promotion_rules": 1}}


# ------------------------------------------------------------------ webhooks


def register_webhook(conn: psycopg.Connection, w: WebhookIn, actor: str = "admin") -> dict:
    secret = w.secret or secrets.token_urlsafe(32)
    events = list(dict.fromkeys(w.events))
    row = conn.execute(
        """insert into webhooks (url, events, secret, is_active, description) values (%s, %s, %s, %s, %s)
           returning *""", (w.url, events, secret, w.active, w.description)).fetchone()
    record(conn, "admin", f"webhook {row['id']} registered for {', '.join(events)}",
           {"action": "webhook_register", "webhook_id": row["id"], "url": _redact(w.url), "events": events},
           actor=actor)
    # The secret is shown once, here: the receiver needs it to verify X-Eval360-Signature.
    return {"ok": True, "id": row["id"], "secret": secret, "webhook": webhook_out(row)}


def _redact(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname}{':' + str(p.port) if p.port else ''}{p.path}"


def list_webhooks(conn: psycopg.Connection) -> dict:
    rows = conn.execute(
        """select w.*, count(*) filter (where d.status = 'pending') n_pending,
                  count(*) filter (where d.status = 'delivered') n_delivered,
                  count(*) filter (where d.status = 'failed') n_failed
             from webhooks w left join webhook_deliveries d on d.webhook_id = w.id
            group by w.id order by w.id""").fetchall()
    return {"webhooks": [webhook_out(r) for r in rows]}


def set_webhook_active(conn: psycopg.Connection, webhook_id: int, active: bool, actor: str = "admin") -> dict:
    row = conn.execute("select id, is_active from webhooks where id = %s for update", (webhook_id,)).fetchone()
    if row is None:
        raise not_found("webhook", str(webhook_id))
    changed = row["is_active"] != active
    if changed:
        conn.execute("update webhooks set is_active = %s, updated_at = now() where id = %s", (active, webhook_id))
        record(conn, "admin", f"webhook {webhook_id} {'activated' if active else 'deactivated'}",
               {"action": "webhook_" + ("activate" if active else "deactivate"), "webhook_id": webhook_id},
               actor=actor)
    return {"ok": True, "id": webhook_id, "active": active, "changed": changed}


def webhook_deliveries(conn: psycopg.Connection, webhook_id: int, limit: int = 50, offset: int = 0) -> dict:
    if not conn.execute("select 1 from webhooks where id = %s", (webhook_id,)).fetchone():
        raise not_found("webhook", str(webhook_id))
    rows = conn.execute(
        """select d.id, d.event_type, d.status, d.n_attempts, d.next_attempt_at, d.last_status_code, d.last_error,
                  d.created_at, d.delivered_at, d.payload,
                  coalesce((select json_agg(json_build_object('attempted_at', a.attempted_at, 'status_code',
                                   a.status_code, 'error', a.error, 'duration_ms', a.duration_ms) order by a.id)
                              from webhook_delivery_attempts a where a.delivery_id = d.id), '[]') as attempts
             from webhook_deliveries d where d.webhook_id = %s order by d.id desc limit %s offset %s""",
        (webhook_id, limit, offset)).fetchall()
    return {"webhook_id": webhook_id, "deliveries": rows}


# ------------------------------------------------------------------ models and checkpoints


def patch_model(conn: psycopg.Connection, model_id: str, p: ModelPatch, actor: str = "admin") -> dict:
    row = conn.execute("select * from models where model_id = %s for update", (model_id,)).fetchone()
    if row is None:
        raise not_found("model", model_id)
    given = {k: getattr(p, k) for k in p.model_fields_set}
    for k in ("display_name", "owner", "is_pinned", "model_type"):
        if k in given and given[k] is None:
            raise ApiError(422, f"{k}: may not be null", field=k)
    changes = {k: v for k, v in given.items() if row[k] != v}
    if changes:
        conn.execute(
            sql.SQL("update models set {}, updated_at = now() where model_id = %s").format(
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in changes)),
            [*changes.values(), model_id])
        record(conn, "admin", f"model {model_id} updated: {', '.join(sorted(changes))}",
               {"action": "model_patch", "changes": {k: {"from": row[k], "to": v} for k, v in changes.items()}},
               actor=actor, model_id=model_id)
        if "model_type" in changes:
            A.reevaluate_model(conn, model_id)
    model = conn.execute("""select model_id, display_name, model_type, owner, param_count, is_pinned, created_at,
                                   updated_at from models where model_id = %s""", (model_id,)).fetchone()
    return {"ok": True, "model_id": model_id, "changed": sorted(changes), "model": model}


_MODEL_COUNTS = """
select
  (select count(*) from checkpoints where model_id = %(m)s) as checkpoints,
  (select count(*) from checkpoint_aliases a join checkpoints c using (checkpoint_id) where c.model_id = %(m)s)
    as checkpoint_aliases,
  (select count(*) from eval_runs where model_id = %(m)s) as eval_runs,
  (select count(*) from eval_results e join eval_runs r using (eval_run_id) where r.model_id = %(m)s) as eval_results,
  (select count(*) from example_results x join eval_runs r using (eval_run_id) where r.model_id = %(m)s)
    as example_results,
  (select count(*) from alerts where model_id = %(m)s) as alerts,
  (select count(*) from promotions where model_id = %(m)s) as promotions,
  (select count(*) from promotion_rules where model_id = %(m)s) as promotion_rules,
  (select count(*) from activity where model_id = %(m)s) as activity
"""

_CHECKPOINT_COUNTS = """
select
  (select count(*) from checkpoint_aliases where checkpoint_id = %(c)s) as checkpoint_aliases,
  (select count(*) from eval_runs where checkpoint_id = %(c)s) as eval_runs,
  (select count(*) from eval_results e join eval_runs r using (eval_run_id) where r.checkpoint_id = %(c)s)
    as eval_results,
  (select count(*) from example_results x join eval_runs r using (eval_run_id) where r.checkpoint_id = %(c)s)
    as example_results,
  (select count(*) from alerts where checkpoint_id = %(c)s) as alerts,
  (select count(*) from promotions where checkpoint_id = %(c)s) as promotions,
  (select count(*) from activity where checkpoint_id = %(c)s) as activity
"""


def delete_model(conn: psycopg.Connection, model_id: str, actor: str = "admin") -> dict:
    """Delete a model and everything hanging off it; the reply counts the rows of each kind."""
    # The row lock makes concurrent ingests of this model wait (their foreign-key checks need it).
    row = conn.execute("select model_id, display_name from models where model_id = %s for update",
                       (model_id,)).fetchone()
    if row is None:
        raise not_found("model", model_id)
    counts = {"models": 1, **{k: int(v) for k, v in conn.execute(_MODEL_COUNTS, {"m": model_id}).fetchone().items()}}
    conn.execute("delete from models where model_id = %s", (model_id,))
    # model_id stays null: the activity row must outlive the model it records (activity cascades).
    record(conn, "admin", f"model {model_id} deleted with {counts['checkpoints']} checkpoints and "
                          f"{counts['eval_runs']} eval runs",
           {"action": "model_delete", "model_id": model_id, "deleted": counts}, actor=actor)
    return {"ok": True, "model_id": model_id, "deleted": counts}


def delete_checkpoint(conn: psycopg.Connection, ident: str, actor: str = "admin") -> dict:
    """Delete a checkpoint (canonical id or alias) and its runs, results, examples, alerts; counts per kind."""
    cid = resolve_checkpoint(conn, ident)  # the checkpoint id first; an alias only when unambiguous (else 409)
    row = None if cid is None else conn.execute(
        "select checkpoint_id, model_id, training_step from checkpoints where checkpoint_id = %s for update",
        (cid,)).fetchone()
    if row is None:
        raise not_found("checkpoint", ident)
    cid = row["checkpoint_id"]
    counts = {"checkpoints": 1,
              **{k: int(v) for k, v in conn.execute(_CHECKPOINT_COUNTS, {"c": cid}).fetchone().items()}}
    datasets = [r["dataset_name"] for r in conn.execute(
        "select distinct dataset_name from eval_runs where checkpoint_id = %s", (cid,)).fetchall()]
    conn.execute("delete from checkpoints where checkpoint_id = %s", (cid,))
    record(conn, "admin", f"checkpoint {cid} deleted with {counts['eval_runs']} eval runs",
           {"action": "checkpoint_delete", "checkpoint_id": cid, "deleted": counts, "dataset_names": datasets},
           actor=actor, model_id=row["model_id"])
    # Its neighbours now compare with someone else: re-judge the model's alerts.
    A.reevaluate_model(conn, row["model_id"])
    return {"ok": True, "checkpoint_id": cid, "model_id": row["model_id"], "deleted": counts}


# ------------------------------------------------------------------ alerts


def acknowledge_alert(conn: psycopg.Connection, alert_id: int, by: str, note: str | None = None) -> dict:
    """Record who acknowledged an alert and when; acknowledging again changes nothing."""
    row = conn.execute("select * from alerts where id = %s for update", (alert_id,)).fetchone()
    if row is None:
        raise not_found("alert", str(alert_id))
    already = row["is_acknowledged"]
    if not already:
        row = conn.execute(
            """update alerts set is_acknowledged = true, acknowledged_by = %s, acknowledged_at = now(),
                      updated_at = now() where id = %s returning *""", (by, alert_id)).fetchone()
        record_event(conn, "acknowledgement", row["model_id"], row["checkpoint_id"], row["dataset_name"],
                    f"{by} acknowledged {row['alert_type']} alert {alert_id}: {row['message']}",
                    {"alert_id": alert_id, "alert_type": row["alert_type"], "note": note}, actor=by)
    return {"ok": True, "alert_id": alert_id, "acknowledged": True, "acknowledged_by": row["acknowledged_by"],
            "acknowledged_at": row["acknowledged_at"], "already_acknowledged": already}
