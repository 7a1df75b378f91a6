"""Cached loaders: thin wrappers over ingest_api.read (and ops: promotion, admin), cached on the data's version.

Every loader takes the database URL as its first argument, so the caches (and the connection
pool, a cached resource keyed on the URL) never mix two databases. Loaders return plain dicts
and lists; pages turn them into frames and charts.

Caching: each loader's cache key includes the database's change counter (`eval360_data_version`,
a sequence every write statement on a shown table advances, sql/functions/70_data_version.sql). A call first reads
that counter (one cheap `select`, after bringing the facts up to date); while it is unchanged, the
cached answer is served and the database is not queried again. A new result shows on the next rerun.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool

from ingest_api.core.auth import role_of
from ingest_api.core.db import checkout, make_pool, release, resolve_database_url
from ingest_api.core.settings import get_settings
from ingest_api.ops import admin, promotion
from ingest_api.read import catalog, compare, examples, scores
from ingest_api.read import diagnosis as diagnosis_q
from ingest_api.read import heatmap as heatmap_q
from ingest_api.read import leaderboard as leaderboard_q
from ingest_api.read.activity import list_activity
from ingest_api.read.alerts import backlog, list_alerts

# Only a safety net: entries are keyed on the data version, so a write shows at once. The TTL bounds
# the one race a counter read outside the writer's transaction allows (the comment in sql/functions/70_data_version.sql).
TTL = 3600
SCORE_CHOICES = ("latest", "best", "step")


# ------------------------------------------------------------------ connection


def database_url() -> str:
    """DATABASE_URL (set by `eval360 dashboard`), else the URL the rest of Eval360 would resolve."""
    settings = get_settings()
    return settings.database_url or _resolved_url(str(settings.data_dir))


@st.cache_resource(show_spinner=False)
def _resolved_url(data_dir: str) -> str:
    return resolve_database_url(get_settings())


@st.cache_resource(show_spinner=False)
def pool(url: str) -> ConnectionPool:
    """One small pool per database URL, shared by every session of this process (the API's pool set-up:
    the password from DATABASE_URL, EVAL360_DATABASE_PASSWORD_FILE or EVAL360_DATABASE_SECRET_ID, fetched
    again when the server refuses it)."""
    return make_pool(url, get_settings(), name="eval360-dashboard", min_size=1, max_size=4, timeout_s=5.0,
                     open_wait=False)


@contextmanager
def connection(url: str) -> Iterator[psycopg.Connection]:
    """A pooled connection; its transaction commits on success and rolls back on error. Its first
    statement brings the facts up to date (the views read them); an idle connection the server closed
    meanwhile is replaced, not shown as an error."""
    p = pool(url)
    conn = checkout(p)
    try:
        yield conn
    except BaseException as exc:
        release(p, conn, exc)
        raise
    release(p, conn)


def _call(url: str, fn: Any, *args: Any, **kw: Any) -> Any:
    with connection(url) as conn:
        return fn(conn, *args, **kw)


# The counter as last read, per database URL: (monotonic time, value). A page calls several loaders
# in one run (~0.1 s); each read of the counter is a pool checkout, a facts flush and a select
# (~10 ms here), so one read serves every loader of the run. A write from elsewhere within this
# window shows on the rerun after (as one landing just after the read would anyway).
_VERSION_FRESH_S = 0.3
_versions: dict[str, tuple[float, int]] = {}


def data_version(url: str) -> int:
    """The database's change counter (sql/functions/70_data_version.sql), read after bringing the
    facts up to date; a read younger than _VERSION_FRESH_S is reused."""
    now = time.monotonic()
    seen = _versions.get(url)
    if seen is not None and now - seen[0] < _VERSION_FRESH_S:
        return seen[1]
    with connection(url) as conn:  # checkout() brings the facts up to date first
        v = int(conn.execute("select last_value from eval360_data_version").fetchone()["last_value"])
    _versions[url] = (now, v)
    return v


def versioned(fn: Any) -> Any:
    """st.cache_data for a loader `fn(url, ...)`, keyed on the data version besides its arguments."""

    def with_version(url: str, version: int, *args: Any, **kw: Any) -> Any:
        return fn(url, *args, **kw)

    with_version.__qualname__ = with_version.__name__ = fn.__name__  # one cache per loader
    with_version.__module__ = fn.__module__
    cached = st.cache_data(ttl=TTL, show_spinner=False, max_entries=256)(with_version)

    @functools.wraps(fn)
    def loader(url: str, *args: Any, **kw: Any) -> Any:
        return cached(url, data_version(url), *args, **kw)

    loader.clear = cached.clear  # type: ignore[attr-defined]
    return loader


def clear_caches() -> None:
    """After a write (acknowledging an alert): drop the cached reads so the page shows it at once."""
    _versions.clear()
    st.cache_data.clear()


# ------------------------------------------------------------------ overview


@versioned
def counts(url: str) -> dict:
    """How much data there is (for empty states)."""
    with connection(url) as conn:
        return conn.execute(
            """select (select count(*) from v_models) as n_models,
                      (select count(*) from v_models where model_type = 'training') as n_training,
                      (select count(*) from v_eval_runs where is_current) as n_runs,
                      (select count(*) from v_run_example_stats) as n_runs_with_examples""").fetchone()


@versioned
def filters(url: str) -> dict:
    return _call(url, catalog.filters)


@versioned
def list_models(url: str, model_type: str | None = None, owner: str | None = None) -> list[dict]:
    return _call(url, catalog.list_models, model_type=model_type, owner=owner)


@versioned
def list_suites(url: str) -> list[dict]:
    return _call(url, catalog.list_suites)


@versioned
def list_datasets(url: str) -> list[dict]:
    return _call(url, catalog.list_datasets)


@versioned
def heatmap(url: str, score: str = "latest", step: int | None = None, suite: str | None = None,
            category: str | None = None, model_type: str | None = None, owner: str | None = None) -> dict:
    with connection(url) as conn:
        suite_datasets = None
        if suite:
            s = catalog.get_suite(conn, suite)
            suite_datasets = list(s["dataset_names"]) if s else []
        return heatmap_q.heatmap(conn, score=score, step=step, suite_datasets=suite_datasets, category=category,
                         model_type=model_type, owner=owner)


# ------------------------------------------------------------------ one model


@versioned
def get_model(url: str, model_id: str) -> dict | None:
    return _call(url, catalog.get_model, model_id)


@versioned
def checkpoint_info(url: str, ident: str) -> dict | None:
    """The checkpoint an id (or alias) names: checkpoint_id, model_id, training_step; None if unknown."""
    with connection(url) as conn:
        cid = catalog.resolve_checkpoint(conn, ident)
        if cid is None:
            return None
        return conn.execute("select checkpoint_id, model_id, training_step from checkpoints where checkpoint_id = %s",
                            (cid,)).fetchone()


@versioned
def model_scores(url: str, model_id: str) -> dict | None:
    return _call(url, catalog.model_scores, model_id)


@versioned
def diagnosis(url: str, model_id: str) -> dict | None:
    return _call(url, diagnosis_q.diagnosis, model_id)


@versioned
def category_profile(url: str, models: tuple[str, ...], common_only: bool = False, score: str = "latest",
                     step: int | None = None) -> dict:
    return _call(url, compare.category_profile, list(models), common_only=common_only, score=score, step=step)


@versioned
def promotion_status(url: str, model_id: str, checkpoint_id: str | None = None) -> dict:
    return _call(url, promotion.promotion_status, model_id, checkpoint_id)


# ------------------------------------------------------------------ leaderboard, compare, diff


@versioned
def leaderboard(url: str, dataset: str, score: str = "latest", step: int | None = None,
                model_type: str | None = None) -> dict | None:
    return _call(url, leaderboard_q.leaderboard, dataset, score=score, step=step, model_type=model_type)


@versioned
def suite(url: str, suite_id: str) -> dict | None:
    return _call(url, catalog.get_suite, suite_id)


@versioned
def compare_curves(url: str, models: tuple[str, ...], dataset: str, common_only: bool = False) -> dict:
    return _call(url, compare.compare_curves, list(models), dataset, common_only=common_only)


@versioned
def curves(url: str, models: tuple[str, ...], datasets: tuple[str, ...] | None = None) -> list[dict]:
    """Every scored current point of some models on some datasets (None: all), in one query:
    model_id, model_type, checkpoint_id, training_step, dataset_name, category, metric_value, n, ci_lower,
    ci_upper, interval_method (the interval the API reports, computed as compare_curves does)."""
    with connection(url) as conn:
        rows = conn.execute(
            """select s.model_id, s.model_type, s.checkpoint_id, s.training_step, s.dataset_name, b.category,
                      s.metric_name, s.metric_value, s.n, s.ci_lower, s.ci_upper, s.stderr, s.n_examples, s.n_graded,
                      s.n_correct, s.score_sum, s.score_sumsq, s.n_fractional
                 from v_current_scores s left join benchmark_metadata b using (dataset_name)
                where s.model_id = any(%(m)s) and (%(all)s or s.dataset_name = any(%(d)s)) and s.is_scored
                order by s.model_id, s.dataset_name, s.training_step nulls last""",
            {"m": list(models), "d": list(datasets or ()), "all": datasets is None}).fetchall()
    scores.with_intervals(rows)
    keep = ("model_id", "model_type", "checkpoint_id", "training_step", "dataset_name", "category", "metric_name",
            "metric_value", "n", "ci_lower", "ci_upper", "interval_method")
    return [{k: r.get(k) for k in keep} for r in rows]


@versioned
def nearest_steps(url: str, step: int, limit: int = 5) -> list[int]:
    """The training steps that have a checkpoint, nearest to `step` first."""
    with connection(url) as conn:
        return [r["training_step"] for r in conn.execute(
            """select training_step from (select distinct training_step from checkpoints
                                           where training_step is not null) s
                order by abs(training_step - %s), training_step limit %s""", (step, limit)).fetchall()]


@versioned
def diff_checkpoints(url: str, checkpoint_a: str, checkpoint_b: str, flips_limit: int = 20) -> dict | None:
    return _call(url, compare.diff_checkpoints, checkpoint_a, checkpoint_b, flips_limit=flips_limit)


# ------------------------------------------------------------------ eval runs and examples


@versioned
def eval_run(url: str, eval_run_id: str) -> dict | None:
    return _call(url, examples.get_eval_run, eval_run_id)


@versioned
def runs_with_examples(url: str, model_id: str | None = None, dataset: str | None = None) -> list[dict]:
    """Current eval runs that have example rows (for the example browser's picker), newest step first."""
    with connection(url) as conn:
        return conn.execute(
            """select r.eval_run_id, r.model_id, r.display_name, r.model_type, r.checkpoint_id, r.training_step,
                      r.dataset_name, r.primary_metric, r.primary_value, r.n_examples, r.created_at
                 from v_eval_runs r
                where r.is_current and r.n_examples > 0
                  and (%(m)s::text is null or r.model_id = %(m)s)
                  and (%(d)s::text is null or r.dataset_name = %(d)s)
                order by r.model_id, r.dataset_name, r.training_step desc nulls last""",
            {"m": model_id, "d": dataset}).fetchall()


@versioned
def run_examples(url: str, eval_run_id: str, correct: bool | None = None, topic: str | None = None,
                 difficulty: str | None = None, search: str | None = None, limit: int = 50,
                 offset: int = 0) -> dict | None:
    return _call(url, examples.run_examples, eval_run_id, correct=correct, topic=topic, difficulty=difficulty,
                 search=search, limit=limit, offset=offset)


@versioned
def run_slices(url: str, eval_run_id: str) -> dict | None:
    return _call(url, examples.run_slices, eval_run_id)


@versioned
def slices_across_runs(url: str, run_ids: tuple[str, ...], dimension: str = "topic") -> list[dict]:
    """Accuracy per slice for several runs (a model's checkpoints on one dataset), from v_example_slices.

    Postgres answers this directly. bench/bench_dashboard.py on the LLM360-scale demo (40,200 runs,
    2.56 M example rows), median of 3: this query 10.8 ms in Postgres vs 590 ms through DuckDB's
    postgres scanner; flips between two runs 8.0 vs 934 ms; even a scan of every example row
    (accuracy by dataset × difficulty) 1,126 vs 1,591 ms. The scanner copies the rows out before
    aggregating, and these queries are index lookups by run: DuckDB is not used.
    """
    with connection(url) as conn:
        return conn.execute(
            """select s.eval_run_id, r.training_step, r.checkpoint_id, s.slice, s.n_examples, s.n_correct
                 from v_example_slices s join v_eval_runs r using (eval_run_id)
                where s.eval_run_id = any(%s) and s.dimension = %s
                order by r.training_step nulls last, s.slice""", (list(run_ids), dimension)).fetchall()


# ------------------------------------------------------------------ alerts and activity


@versioned
def alerts(url: str, model_id: str | None = None, status: str = "open", severity: str | None = None,
           alert_type: str | None = None, acknowledged: bool | None = None, limit: int = 200, offset: int = 0,
           since: Any = None, checkpoint_id: str | None = None) -> dict:
    """Alerts newest first, one page (limit/offset) of all that match; `since`: created at or after it
    (the admin API's own list_alerts)."""
    return _call(url, list_alerts, model_id=model_id, status=status, severity=severity,
                 alert_type=alert_type, acknowledged=acknowledged, checkpoint_id=checkpoint_id, limit=limit,
                 offset=offset, since=since)


@versioned
def activity(url: str, model_id: str | None = None, event_type: str | None = None, limit: int = 100,
             offset: int = 0, since: Any = None) -> dict:
    """The activity feed newest first, one page of all events that match; `since`: at or after it."""
    return _call(url, list_activity, model_id=model_id, event_type=event_type, limit=limit,
                 offset=offset, since=since)


def alert_backlog(url: str) -> dict:
    """Alert checks queued and not judged yet (not cached: the worker drains them without other writes)."""
    return _call(url, backlog)




def acknowledge_many(url: str, alert_ids: Sequence[int], by: str, note: str | None = None) -> list[dict]:
    """Acknowledge several alerts in one transaction, each through admin.acknowledge_alert (the function
    POST /api/alerts/{id}/acknowledge calls): all or none. The caller has checked the admin token."""
    with connection(url) as conn, conn.transaction():
        out = [admin.acknowledge_alert(conn, int(a), by, note) for a in alert_ids]
    clear_caches()
    return out


def admin_token_ok(token: str) -> bool:
    """The API's token rule (core.auth.role_of): only the admin token may acknowledge."""
    return role_of(token, get_settings()) == "admin"

