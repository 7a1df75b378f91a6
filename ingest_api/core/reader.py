"""The login role of ad-hoc SQL (`eval360_reader`): its connection string, and its password on the
embedded server.

Migration 0009 makes `eval360_reader` a LOGIN role with SELECT on the views only, member of no
role. Where its connection string comes from:

* `EVAL360_READER_DATABASE_URL` when set (a server: deploy/README.md gives the SQL that sets the
  role's password; the operator writes that password into this setting);
* the embedded server (no DATABASE_URL): `eval360 migrate` gives the role a generated password,
  kept in `<EVAL360_DATA_DIR>/reader.env` beside the demo tokens, and makes the embedded server
  require it (its pg_hba.conf trusts every other local connection: the socket directory's
  permissions guard those);
* otherwise DATABASE_URL with its user replaced by eval360_reader and no password, which works
  on a server that trusts local connections (the test server) and fails, with a message naming
  the setting, anywhere else. The application's own login is never used for ad-hoc SQL.

The password of a server's role is the operator's: migrations never set it, so several data
directories (or test runs) sharing one server never overwrite each other's.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from .settings import Settings

log = logging.getLogger("eval360.reader")

READER_ROLE = "eval360_reader"
PASSWORD_FILE = "reader.env"
PASSWORD_KEY = "EVAL360_READER_PASSWORD"
HBA_MARK = "# eval360: the read-only SQL role signs in with its password"


def reader_password(data_dir: Path) -> str:
    """The embedded server's reader password: generated once, kept in <data_dir>/reader.env (mode 600)."""
    path = Path(data_dir).expanduser() / PASSWORD_FILE
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith(PASSWORD_KEY + "="):
                value = line.split("=", 1)[1].strip()
                if value:
                    return value
    value = "reader-" + secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(f"{PASSWORD_KEY}={value}\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return value


def with_login(url: str, user: str, password: str | None = None) -> str:
    """The connection string `url` with its user (and password) replaced; host, port, database and
    options kept. Accepts both URL and `key=value` forms, returns the same form."""
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
        query = "&".join(kv for kv in parts.query.split("&") if kv and kv.split("=", 1)[0] not in ("user", "password"))
        return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, query, parts.fragment))
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: v for k, v in conninfo_to_dict(url).items() if k != "password"}
    params["user"] = user
    if password is not None:
        params["password"] = password
    return make_conninfo(**params)


def reader_url(settings: Settings, owner_url: str) -> str:
    """The reader's connection string (see the module's docstring); never the owner's login."""
    explicit = settings.reader_database_url
    if explicit:
        return explicit
    if not settings.database_url:  # the embedded server
        return with_login(owner_url, READER_ROLE, reader_password(settings.data_dir))
    return with_login(owner_url, READER_ROLE)


def _retry(conn: psycopg.Connection, stmt: sql.Composable) -> None:
    """A role change, retried when a concurrent one (another database migrating) got there first."""
    for attempt in range(50):
        try:
            with conn.transaction():
                conn.execute(stmt)
            return
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation, psycopg.errors.InternalError_):
            if attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))


def set_password(owner_url: str, password: str) -> None:
    """Give the (migrated) reader role this password, sent as a SCRAM verifier, never in clear."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,)).fetchone():
            raise RuntimeError(f"role {READER_ROLE} does not exist: run `eval360 migrate`")
        verifier = conn.pgconn.encrypt_password(password.encode(), READER_ROLE.encode(), b"scram-sha-256").decode()
        _retry(conn, sql.SQL("alter role {} with login password {}").format(sql.Identifier(READER_ROLE),
                                                                            sql.Literal(verifier)))


def require_password_on_embedded(owner_url: str, pgdata: Path) -> bool:
    """Make the embedded server ask the reader role for its password (its pg_hba.conf trusts local
    connections); reloads the configuration when it changed it. Returns whether it changed."""
    hba = Path(pgdata) / "pg_hba.conf"
    text = hba.read_text()
    if HBA_MARK in text:
        return False
    lines = (f"{HBA_MARK} (EVAL360_DATA_DIR/{PASSWORD_FILE})\n"
             f"local   all   {READER_ROLE}   scram-sha-256\n"
             f"host    all   {READER_ROLE}   all   scram-sha-256\n\n")
    # First match wins: these lines come before the trust lines. Rewritten in place, so the file keeps
    # its owner (the embedded server may run as another system user).
    hba.write_text(lines + text)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("select pg_reload_conf()")
    # The server reads the file when it handles the signal: wait (bounded) until a wrong password fails.
    probe = with_login(owner_url, READER_ROLE, "not-the-password")
    for _ in range(100):
        try:
            psycopg.connect(probe, connect_timeout=5).close()
        except psycopg.OperationalError:
            break
        time.sleep(0.05)
    return True


def setup_embedded(settings: Settings, owner_url: str) -> str:
    """After `eval360 migrate` on the embedded server: the reader's password (generated once) set on
    the role and required by the server. Returns the reader's connection string."""
    password = reader_password(settings.data_dir)
    set_password(owner_url, password)
    require_password_on_embedded(owner_url, Path(settings.data_dir).expanduser().resolve() / "pgdata")
    return with_login(owner_url, READER_ROLE, password)
