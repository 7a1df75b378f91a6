"""The one Settings object: every environment variable Eval360 reads, with its default and meaning.

This is the only module that reads the process environment (tests/test_architecture.py fails on any
other). Each field names its variable and says what it means; README.md's configuration table lists
them all (checked by a test too). A malformed number is refused with the variable's name.

Who reads what: the API gets its Settings in create_app (app.state.settings); the CLI, the worker and
the dashboard call get_settings(); code deep in the write path (alert severities, webhook quiet period
and addresses) asks get_settings() too. get_settings() parses the environment once and again only when
one of its variables changed (so a test's monkeypatch.setenv is seen at once).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = REPO_ROOT / "sql"
TRUE = frozenset({"1", "true", "yes", "on"})


class SettingsError(RuntimeError):
    """Raised when the configuration cannot be used (e.g. a missing token outside demo mode)."""


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


def _bool(name: str, raw: str) -> bool:
    return raw.strip().lower() in TRUE


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _root_path(name: str, raw: str) -> str:
    root = raw.rstrip("/")
    return "/" + root if root and not root.startswith("/") else root


def _var(env: str | tuple[str, ...], help: str, parse: Callable[[str, str], Any] = _text) -> dict:
    """A setting's field metadata: its variable(s) (the first one set wins), meaning and parser."""
    return {"env": (env,) if isinstance(env, str) else env, "help": help, "parse": parse}


@dataclass(frozen=True)
class Settings:
    # Where the data lives
    database_url: str | None = field(default=None, metadata=_var(
        "DATABASE_URL", "PostgreSQL to use; unset: the embedded PostgreSQL under EVAL360_DATA_DIR"))
    data_dir: Path = field(default=Path(".eval360"), metadata=_var(
        "EVAL360_DATA_DIR", "where the embedded database and generated demo tokens live", _path))
    database_password_file: str | None = field(default=None, metadata=_var(
        "EVAL360_DATABASE_PASSWORD_FILE", "a file holding the database password (when DATABASE_URL has none), "
        "re-read when the server refuses a connection for authentication"))
    database_secret_id: str | None = field(default=None, metadata=_var(
        "EVAL360_DATABASE_SECRET_ID", "an AWS Secrets Manager secret in RDS's format holding the database login"))
    credential_cooldown_s: float = field(default=2.0, metadata=_var(
        "EVAL360_DATABASE_REFRESH_COOLDOWN_S", "after an authentication failure, the password file or secret is "
        "read again at most this often", _float))
    # Who may write
    ingest_token: str | None = field(default=None, metadata=_var(
        ("EVAL360_INGEST_TOKEN", "INGEST_TOKEN"), "bearer token for /api/ingest/*"))
    admin_token: str | None = field(default=None, metadata=_var(
        "EVAL360_ADMIN_TOKEN", "bearer token for /api/admin/*, PATCH/DELETE and alert acknowledgement"))
    demo: bool = field(default=False, metadata=_var(
        "EVAL360_DEMO", "demo mode: missing tokens are generated once and kept in EVAL360_DATA_DIR/tokens.env",
        _bool))
    # Serving
    root_path: str = field(default="", metadata=_var(
        "EVAL360_ROOT_PATH", "path prefix behind a proxy, e.g. /eval360", _root_path))
    api_workers: int = field(default=1, metadata=_var("EVAL360_API_WORKERS", "API worker processes", _int))
    log_level: str = field(default="INFO", metadata=_var("EVAL360_LOG_LEVEL", "log level of every eval360 command"))
    # Limits
    max_body_bytes: int = field(default=64 * 1024 * 1024, metadata=_var(
        "EVAL360_MAX_BODY_BYTES", "largest accepted request body", _int))
    max_examples_per_call: int = field(default=50_000, metadata=_var(
        "EVAL360_MAX_EXAMPLES", "largest examples batch per call", _int))
    max_metrics_per_result: int = field(default=1_000, metadata=_var(
        "EVAL360_MAX_METRICS", "metrics accepted in one eval result", _int))
    max_example_idx: int = field(default=1_000_000, metadata=_var(
        "EVAL360_MAX_EXAMPLE_IDX", "largest accepted example_idx", _int))
    statement_timeout_ms: int = field(default=30_000, metadata=_var(
        "EVAL360_STATEMENT_TIMEOUT_MS", "per statement, API connections", _int))
    random_page_cost: float = field(default=1.1, metadata=_var(
        "EVAL360_RANDOM_PAGE_COST", "the planner's cost of a random page read in the service's sessions: 1.1 for "
        "SSD storage or a working set in memory (PostgreSQL's 4.0 assumes spinning disks)", _float))
    pool_min: int = field(default=4, metadata=_var("EVAL360_POOL_MIN", "connections the API keeps open", _int))
    pool_max: int = field(default=10, metadata=_var(
        "EVAL360_POOL_MAX", "connections (and database slots) per API process", _int))
    pool_timeout_s: float = field(default=3.0, metadata=_var(
        "EVAL360_POOL_TIMEOUT_S", "wait for a connection this long, then 503", _float))
    queue_timeout_s: float = field(default=60.0, metadata=_var(
        "EVAL360_QUEUE_TIMEOUT_S", "a request waits this long in its process's queue for a database slot, then 503",
        _float))
    # The SQL page (the read-only eval360_reader login)
    reader_database_url: str | None = field(default=None, metadata=_var(
        "EVAL360_READER_DATABASE_URL", "the SQL page's connection string (the eval360_reader login)"))
    reader_statement_timeout_ms: int = field(default=5_000, metadata=_var(
        "EVAL360_READER_TIMEOUT_MS", "statement timeout of the SQL page", _int))
    sql_max_rows: int = field(default=10_000, metadata=_var(
        "EVAL360_SQL_MAX_ROWS", "rows of one SQL-page result shown at most", _int))
    sql_max_bytes: int = field(default=20_000_000, metadata=_var(
        "EVAL360_SQL_MAX_BYTES", "bytes of text of one SQL-page result at most", _int))
    # Alerts and webhooks
    alerts_inline: bool = field(default=False, metadata=_var(
        "EVAL360_ALERTS_INLINE", "judge alerts inside the ingest transaction (default: queued there, judged by "
        "the worker)", _bool))
    alert_critical_points: float = field(default=5.0, metadata=_var(
        "EVAL360_ALERT_CRITICAL_POINTS", "the drop (in points) a critical regression needs", _float))
    alert_quiet_s: float = field(default=60.0, metadata=_var(
        "EVAL360_ALERT_QUIET_S", "a regression webhook goes out only after its alert has held this long with no "
        "new data for its model", _float))
    webhook_timeout_s: float = field(default=10.0, metadata=_var(
        "EVAL360_WEBHOOK_TIMEOUT_S", "per-attempt timeout of a delivery", _float))
    webhook_backoff_s: float = field(default=30.0, metadata=_var(
        "EVAL360_WEBHOOK_BACKOFF_S", "first retry delay (doubling)", _float))
    webhook_backoff_cap_s: float = field(default=3600.0, metadata=_var(
        "EVAL360_WEBHOOK_BACKOFF_CAP_S", "largest retry delay", _float))
    webhook_max_age_h: float = field(default=24.0, metadata=_var(
        "EVAL360_WEBHOOK_MAX_AGE_H", "how long a delivery is retried", _float))
    webhook_allow_private: bool = field(default=False, metadata=_var(
        "EVAL360_WEBHOOK_ALLOW_PRIVATE", "webhooks may go to loopback, link-local and private addresses", _bool))
    # Clients (backfill, scheduler, notebooks): where results go
    dashboard_url: str | None = field(default=None, metadata=_var(
        "EVAL360_DASHBOARD_URL", "the API a client sends results to"))
    dashboard_token: str | None = field(default=None, metadata=_var(
        "EVAL360_DASHBOARD_TOKEN", "the token a client sends"))
    dashboard_env_file: str = field(default="/mnt/weka/shrd/k2m/eval360/dashboard.env", metadata=_var(
        "EVAL360_DASHBOARD_ENV_FILE", "a file of KEY=value lines with the two above (the shared one by default)"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, demo: bool | None = None) -> Settings:
        """The settings of the environment (os.environ unless given); demo mode generates missing tokens."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            for name in f.metadata["env"]:
                raw = env.get(name)
                if raw:  # unset or empty: the default
                    values[f.name] = f.metadata["parse"](name, raw)
                    break
        if demo is not None:
            values["demo"] = demo
        s = cls(**values)
        if s.demo and (not s.ingest_token or not s.admin_token):
            gen = demo_tokens(s.data_dir)
            s = cls(**{**values, "ingest_token": s.ingest_token or gen["EVAL360_INGEST_TOKEN"],
                       "admin_token": s.admin_token or gen["EVAL360_ADMIN_TOKEN"]})
        return s

    def require_tokens(self) -> None:
        """Refuse to serve writes with no secret configured (demo mode generates them)."""
        missing = []
        if not self.ingest_token:
            missing.append("EVAL360_INGEST_TOKEN")
        if not self.admin_token:
            missing.append("EVAL360_ADMIN_TOKEN")
        if missing:
            raise SettingsError(
                "refusing to start: set " + " and ".join(missing)
                + " (long random strings, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`),"
                " or run in demo mode (`eval360 serve --demo`), which generates them"
            )
        if self.ingest_token == self.admin_token:
            raise SettingsError(
                "refusing to start: EVAL360_INGEST_TOKEN and EVAL360_ADMIN_TOKEN must differ "
                "(the ingest token must not grant admin rights)"
            )


def variables() -> list[tuple[str, Any, str]]:
    """(variable, default, meaning) of every setting, in the order of the Settings fields."""
    return [(name, f.default, f.metadata["help"]) for f in fields(Settings) for name in f.metadata["env"]]


def demo_tokens(data_dir: Path) -> dict[str, str]:
    """Tokens for demo mode: generated once, kept in <data_dir>/tokens.env (mode 600)."""
    path = data_dir / "tokens.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    if not values.get("EVAL360_INGEST_TOKEN") or not values.get("EVAL360_ADMIN_TOKEN"):
        values = {
            "EVAL360_INGEST_TOKEN": "ingest-" + secrets.token_urlsafe(24),
            "EVAL360_ADMIN_TOKEN": "admin-" + secrets.token_urlsafe(24),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values


def get_settings() -> Settings:
    """This process's settings: read from the environment once, and again only if one of the variables
    changed since (a test, or `export` below)."""
    return _settings_for(tuple(os.environ.get(name) for name in _NAMES))


_NAMES = tuple(name for f in fields(Settings) for name in f.metadata["env"])


@lru_cache(maxsize=4)
def _settings_for(values: tuple[str | None, ...]) -> Settings:
    return Settings.from_env({k: v for k, v in zip(_NAMES, values) if v is not None})


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with some variables set: for the processes the CLI starts."""
    return {**os.environ, **overrides}


def export(**values: str) -> None:
    """Set variables in this process's environment (inherited by the servers `eval360 api` forks)."""
    os.environ.update(values)
