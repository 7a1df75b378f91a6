"""Database credentials that can change under a running process (issue 18).

Where the password comes from, first match wins:

1. ``DATABASE_URL`` with a password in it: used as is, never refreshed;
2. ``EVAL360_DATABASE_PASSWORD_FILE``: a file holding the password (what a rotation agent, a mounted
   Kubernetes secret or a systemd credential provides), read again when the server refuses a
   connection for authentication;
3. ``EVAL360_DATABASE_SECRET_ID``: an AWS Secrets Manager secret in RDS's format (JSON with
   ``username``, ``password`` and optionally ``host``, ``port``, ``dbname``), fetched with boto3
   (``pip install '.[aws]'``; region from the usual AWS variables), fetched again on an
   authentication failure. The secret's user and password always apply; its host, port and dbname
   fill in what DATABASE_URL does not say (with no DATABASE_URL, they make the whole address).

Every connection of the process (the API's pools, the worker, the dashboard, ``eval360 migrate``)
goes through one :class:`CredentialSource` per database address. When opening a connection fails for
authentication, the source is refreshed (one refresh at a time under a lock; within a cool-down of a
few seconds a burst of failures shares one refresh, except that a password file whose contents
changed is read at once) and the connection is tried once more with what it found. The secret itself
is never logged.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger("eval360.credentials")

# SQLSTATE class 28 (invalid authorization): 28P01 invalid_password, 28000 invalid_authorization_spec.
AUTH_SQLSTATES = frozenset({"28P01", "28000"})
# A failed *connection* carries no SQLSTATE in psycopg (there is no result, only libpq's message), so
# the server's FATAL text is matched (PostgreSQL sends it in English unless lc_messages says otherwise;
# RDS's default is English). "no password supplied" is libpq's own: an empty password file.
_AUTH_TEXT = re.compile(
    r"password authentication failed|authentication failed for user|no pg_hba\.conf entry"
    r"|role \"[^\"]*\" does not exist|no password supplied|password authentication|SQLSTATE 28",
    re.IGNORECASE)


def is_auth_failure(exc: BaseException) -> bool:
    """True when exc is PostgreSQL refusing the credentials (not an unreachable or busy server)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    if getattr(exc, "sqlstate", None) in AUTH_SQLSTATES:
        return True
    return bool(_AUTH_TEXT.search(str(exc)))


class CredentialsUnavailable(RuntimeError):
    """The configured source could not be read (missing file, unreadable secret)."""


def parse_rds_secret(text: str) -> dict[str, str]:
    """Connection parameters from a Secrets Manager secret string in RDS's format.

    ``{"username": ..., "password": ..., "host": ..., "port": 5432, "dbname": ...}`` (RDS also writes
    ``engine`` and ``dbInstanceIdentifier``, ignored here). Returns libpq keywords: user, password and,
    when present, host, port, dbname.
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CredentialsUnavailable("the database secret is not JSON in RDS's format") from exc
    if not isinstance(data, dict):
        raise CredentialsUnavailable("the database secret is not a JSON object in RDS's format")
    missing = [k for k in ("username", "password") if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise CredentialsUnavailable(f"the database secret lacks {' and '.join(missing)} (RDS format)")
    out = {"user": data["username"], "password": data["password"]}
    for key, name in (("host", "host"), ("port", "port"), ("dbname", "dbname")):
        value = data.get(key)
        if value not in (None, ""):
            out[name] = str(value)
    return out


def fetch_aws_secret(secret_id: str) -> str:
    """The SecretString of a Secrets Manager secret (boto3; region and credentials from the environment:
    AWS_REGION / AWS_DEFAULT_REGION, the instance profile, ...)."""
    try:
        import boto3
    except ImportError as exc:  # the optional extra is not installed
        raise CredentialsUnavailable(
            "EVAL360_DATABASE_SECRET_ID needs boto3: pip install '.[aws]'") from exc
    client = boto3.client("secretsmanager")
    try:
        return client.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # botocore's errors; the message names no secret value
        raise CredentialsUnavailable(f"cannot read the database secret: {exc.__class__.__name__}: {exc}") from exc


class CredentialSource:
    """The current connection parameters of one database, refreshed on an authentication failure."""

    def __init__(self, url: str = "", *, password_file: str | Path | None = None, secret_id: str | None = None,
                 fetch_secret: Callable[[str], str] | None = None, cooldown_s: float = 2.0):
        self.url = url or ""
        base = conninfo_to_dict(self.url) if self.url else {}
        self.kind = "static"
        if base.get("password"):
            if password_file or secret_id:
                log.warning("DATABASE_URL holds a password: EVAL360_DATABASE_PASSWORD_FILE / "
                            "EVAL360_DATABASE_SECRET_ID are ignored")
        elif password_file:
            self.kind = "file"
        elif secret_id:
            self.kind = "secret"
        self._base = base
        self._file = Path(password_file).expanduser() if self.kind == "file" else None
        self._secret_id = secret_id if self.kind == "secret" else None
        self._fetch = fetch_secret or fetch_aws_secret
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._params: dict[str, str] = {}
        self._file_stat: tuple | None = None
        self._refreshed_at = float("-inf")
        self.generation = 0  # grows each time a refresh brings different credentials
        self.refreshes = 0
        # The outcome of the last connection attempt through this source: None (none yet), "ok",
        # "auth_failed" (refused for the credentials, a refresh did not help) or "unreachable".
        self.last_connect: str | None = None
        if self.kind != "static":
            self._params = self._load()  # the cool-down counts from refreshes, not from this first read

    # ------------------------------------------------------------------ reading the source

    def _stat(self) -> tuple | None:
        try:
            st = self._file.stat()  # type: ignore[union-attr]
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, str]:
        if self.kind == "file":
            assert self._file is not None
            self._file_stat = self._stat()
            try:
                text = self._file.read_text()
            except OSError as exc:
                raise CredentialsUnavailable(
                    f"cannot read EVAL360_DATABASE_PASSWORD_FILE {self._file}: {exc.strerror}") from exc
            # One trailing newline is what `echo pw > file` writes: not part of the password.
            return {"password": text.rstrip("\r\n")}
        assert self._secret_id is not None
        params = parse_rds_secret(self._fetch(self._secret_id))
        # The secret's user and password always apply (rotation may alternate users); its host, port
        # and dbname only fill in what DATABASE_URL leaves out.
        for key in ("host", "port", "dbname"):
            if self._base.get(key):
                params.pop(key, None)
        return params

    def params(self) -> dict[str, str]:
        """libpq keywords to lay over DATABASE_URL (empty for a static URL)."""
        return dict(self._params)

    def conninfo(self) -> str:
        """The full connection string as of now (with the password: never log it)."""
        if not self._params:
            return self.url
        return make_conninfo(self.url, **self._params)

    def describe(self) -> str:
        return {"static": "DATABASE_URL", "file": f"password file {self._file}",
                "secret": f"Secrets Manager secret {self._secret_id}"}[self.kind]

    # ------------------------------------------------------------------ refresh

    def refresh(self, seen_generation: int | None = None, *, reason: str = "authentication failed") -> bool:
        """Read the source again; True when the caller should retry with what is there now.

        One refresh at a time (a lock). A caller that saw an older generation than the current one
        retries at once (another thread refreshed meanwhile). Within the cool-down after the last read
        nothing is read again, unless the password file changed on disk (a cheap stat).
        """
        if self.kind == "static":
            return False
        with self._lock:
            if seen_generation is not None and seen_generation != self.generation:
                return True
            now = time.monotonic()
            changed_on_disk = self.kind == "file" and self._stat() != self._file_stat
            if now - self._refreshed_at < self.cooldown_s and not changed_on_disk:
                return False
            self._refreshed_at = now
            self.refreshes += 1
            try:
                new = self._load()
            except CredentialsUnavailable as exc:
                log.warning("database credentials: %s after %s; keeping the previous ones", exc, reason)
                return False
            if new == self._params:
                log.warning("database credentials: re-read %s after %s: unchanged", self.describe(), reason)
                return False
            self._params = new
            self.generation += 1
            log.warning("database credentials: re-read %s after %s: new credentials (generation %d)",
                        self.describe(), reason, self.generation)
            return True

    def _note(self, outcome: str) -> None:
        self.last_connect = outcome

    @property
    def auth_failed(self) -> bool:
        return self.last_connect == "auth_failed"

    def state(self) -> dict[str, Any]:
        """For /api/health: where the credentials come from and how the last connection went."""
        return {"source": self.kind, "generation": self.generation, "refreshes": self.refreshes,
                "last_connect": self.last_connect}

    # ------------------------------------------------------------------ connecting

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        """psycopg.connect with the current credentials; on an authentication failure, refresh and
        try once more."""
        return self.connection_class(psycopg.Connection).connect(self.conninfo(), **kwargs)

    def connection_class(self, base: type) -> type:
        """A subclass of psycopg's (Async)Connection whose connect() refreshes the credentials and tries
        again once when the server refuses them; given to the pools as connection_class."""
        cached = getattr(self, "_classes", None)
        if cached is None:
            cached = self._classes = {}
        if base in cached:
            return cached[base]
        source = self
        if issubclass(base, psycopg.AsyncConnection):
            import asyncio

            class AsyncRefreshingConnection(base):  # type: ignore[misc, valid-type]
                @classmethod
                async def connect(cls, conninfo: str = "", **kw: Any):  # type: ignore[override]
                    gen = source.generation
                    try:
                        conn = await super().connect(conninfo, **kw)
                    except psycopg.OperationalError as exc:
                        if not is_auth_failure(exc):
                            source._note("unreachable")
                            raise
                        if not await asyncio.to_thread(source.refresh, gen):
                            source._note("auth_failed")
                            raise
                        try:
                            conn = await super().connect(source.conninfo(), **{**kw, **source.params()})
                        except psycopg.OperationalError as exc2:
                            source._note("auth_failed" if is_auth_failure(exc2) else "unreachable")
                            raise
                    source._note("ok")
                    return conn

            cached[base] = AsyncRefreshingConnection
            return AsyncRefreshingConnection

        class RefreshingConnection(base):  # type: ignore[misc, valid-type]
            @classmethod
            def connect(cls, conninfo: str = "", **kw: Any):  # type: ignore[override]
                gen = source.generation
                try:
                    conn = super().connect(conninfo, **kw)
                except psycopg.OperationalError as exc:
                    if not is_auth_failure(exc):
                        source._note("unreachable")
                        raise
                    if not source.refresh(gen):
                        source._note("auth_failed")
                        raise
                    try:
                        conn = super().connect(source.conninfo(), **{**kw, **source.params()})
                    except psycopg.OperationalError as exc2:
                        source._note("auth_failed" if is_auth_failure(exc2) else "unreachable")
                        raise
                source._note("ok")
                return conn

        cached[base] = RefreshingConnection
        return RefreshingConnection


_sources: dict[tuple, CredentialSource] = {}
_sources_lock = threading.Lock()


def source_for(url: str, *, password_file: str | Path | None = None, secret_id: str | None = None,
               cooldown_s: float = 2.0) -> CredentialSource:
    """The process's one CredentialSource for this address and configuration (shared by its pools,
    its health check and its direct connections, so that a burst of failures makes one refresh)."""
    key = (url, str(password_file or ""), secret_id or "")
    with _sources_lock:
        src = _sources.get(key)
        if src is None:
            src = _sources[key] = CredentialSource(url, password_file=password_file, secret_id=secret_id,
                                                   cooldown_s=cooldown_s)
        return src


def url_from_secret(secret_id: str, fetch_secret: Callable[[str], str] | None = None) -> str:
    """With no DATABASE_URL: the address (without the password) from the secret's host, port, dbname."""
    params = parse_rds_secret((fetch_secret or fetch_aws_secret)(secret_id))
    if not params.get("host"):
        raise CredentialsUnavailable("the database secret has no host and DATABASE_URL is not set")
    params.pop("password", None)
    return make_conninfo("", **params)
