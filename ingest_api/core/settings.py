"""One Settings object, read once from the environment (see README, "Configuration")."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = REPO_ROOT / "sql"


class SettingsError(RuntimeError):
    """Raised when the configuration cannot be used (e.g. a missing token outside demo mode)."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".eval360")
    ingest_token: str | None = None
    admin_token: str | None = None
    root_path: str = ""
    demo: bool = False
    # Limits: each is a setting with a default, so operators can tune them.
    max_body_bytes: int = 64 * 1024 * 1024  # EVAL360_MAX_BODY_BYTES: largest accepted request body
    max_examples_per_call: int = 50_000  # EVAL360_MAX_EXAMPLES: largest examples batch per call
    max_metrics_per_result: int = 1_000  # EVAL360_MAX_METRICS: metrics per eval result
    max_example_idx: int = 1_000_000  # EVAL360_MAX_EXAMPLE_IDX: largest accepted example_idx (422 past it)
    statement_timeout_ms: int = 30_000  # EVAL360_STATEMENT_TIMEOUT_MS: per statement, API connections
    pool_min: int = 4  # EVAL360_POOL_MIN
    pool_max: int = 10  # EVAL360_POOL_MAX
    pool_timeout_s: float = 3.0  # EVAL360_POOL_TIMEOUT_S: wait for a connection this long, then answer 503
    reader_statement_timeout_ms: int = 5_000  # EVAL360_READER_TIMEOUT_MS: read-only SQL role
    reader_database_url: str | None = None  # EVAL360_READER_DATABASE_URL: ad-hoc SQL's login (ingest_api/reader.py)
    sql_max_rows: int = 10_000  # EVAL360_SQL_MAX_ROWS: rows of one ad-hoc query shown at most
    sql_max_bytes: int = 20_000_000  # EVAL360_SQL_MAX_BYTES: text of one ad-hoc query's result at most
    # Credentials that rotate (issue 18; see ingest_api/credentials.py): used when DATABASE_URL has no password.
    database_password_file: str | None = None  # EVAL360_DATABASE_PASSWORD_FILE: re-read on an auth failure
    database_secret_id: str | None = None  # EVAL360_DATABASE_SECRET_ID: Secrets Manager secret, RDS format
    credential_cooldown_s: float = 2.0  # EVAL360_DATABASE_REFRESH_COOLDOWN_S: at most one refresh per this
    # Requests wait in this process's queue for a database connection up to this long, then 503.
    queue_timeout_s: float = 60.0  # EVAL360_QUEUE_TIMEOUT_S
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, *, demo: bool | None = None) -> Settings:
        env = os.environ
        if demo is None:
            demo = env.get("EVAL360_DEMO", "").lower() in {"1", "true", "yes"}
        data_dir = Path(env.get("EVAL360_DATA_DIR") or ".eval360").expanduser()
        ingest = env.get("EVAL360_INGEST_TOKEN") or env.get("INGEST_TOKEN") or None
        admin = env.get("EVAL360_ADMIN_TOKEN") or None
        if demo and (not ingest or not admin):
            gen = demo_tokens(data_dir)
            ingest = ingest or gen["EVAL360_INGEST_TOKEN"]
            admin = admin or gen["EVAL360_ADMIN_TOKEN"]
        root = (env.get("EVAL360_ROOT_PATH") or "").rstrip("/")
        if root and not root.startswith("/"):
            root = "/" + root
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=data_dir,
            ingest_token=ingest,
            admin_token=admin,
            root_path=root,
            demo=demo,
            max_body_bytes=_int("EVAL360_MAX_BODY_BYTES", cls.max_body_bytes),
            max_examples_per_call=_int("EVAL360_MAX_EXAMPLES", cls.max_examples_per_call),
            max_metrics_per_result=_int("EVAL360_MAX_METRICS", cls.max_metrics_per_result),
            max_example_idx=_int("EVAL360_MAX_EXAMPLE_IDX", cls.max_example_idx),
            statement_timeout_ms=_int("EVAL360_STATEMENT_TIMEOUT_MS", cls.statement_timeout_ms),
            pool_min=_int("EVAL360_POOL_MIN", cls.pool_min),
            pool_max=_int("EVAL360_POOL_MAX", cls.pool_max),
            pool_timeout_s=float(env.get("EVAL360_POOL_TIMEOUT_S") or cls.pool_timeout_s),
            reader_statement_timeout_ms=_int("EVAL360_READER_TIMEOUT_MS", cls.reader_statement_timeout_ms),
            reader_database_url=env.get("EVAL360_READER_DATABASE_URL") or None,
            sql_max_rows=_int("EVAL360_SQL_MAX_ROWS", cls.sql_max_rows),
            sql_max_bytes=_int("EVAL360_SQL_MAX_BYTES", cls.sql_max_bytes),
            database_password_file=env.get("EVAL360_DATABASE_PASSWORD_FILE") or None,
            database_secret_id=env.get("EVAL360_DATABASE_SECRET_ID") or None,
            credential_cooldown_s=_float("EVAL360_DATABASE_REFRESH_COOLDOWN_S", cls.credential_cooldown_s),
            queue_timeout_s=_float("EVAL360_QUEUE_TIMEOUT_S", cls.queue_timeout_s),
        )

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
