"""Ingest and admin tokens: 401 without or with a wrong token, 403 a token without the right."""

from __future__ import annotations

import pytest

from ingest_api.core.settings import Settings, SettingsError
from tests.conftest import ADMIN, INGEST, q
from tests.helpers import minimal_payload

INGEST_ROUTES = [("/api/ingest/eval-result", minimal_payload()),
                 ("/api/ingest/eval-results", {"results": [minimal_payload()]}),
                 ("/api/ingest/examples", {"eval_run_id": "x", "examples": [{"example_idx": 0, "correct": True}]})]


@pytest.mark.parametrize("path, body", INGEST_ROUTES)
@pytest.mark.parametrize("header, status", [
    (None, 401), ("Bearer ", 401), ("Bearer wrong", 401), ("Basic " + INGEST, 401), (INGEST, 401),
])
def test_ingest_refuses_bad_tokens(client, db, path, body, header, status):
    headers = {} if header is None else {"Authorization": header}
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == status
    assert r.json()["error"]["code"] == "unauthorized"
    assert q(db, "select count(*) n from models")[0]["n"] == 0


@pytest.mark.parametrize("token", [INGEST, ADMIN])
def test_ingest_and_admin_tokens_may_ingest(client, db, token):
    r = client.post("/api/ingest/eval-result", json=minimal_payload(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_refuses_to_start_without_tokens(tmp_path):
    with pytest.raises(SettingsError, match="EVAL360_INGEST_TOKEN"):
        Settings(data_dir=tmp_path, ingest_token=None, admin_token="x").require_tokens()
    with pytest.raises(SettingsError, match="EVAL360_ADMIN_TOKEN"):
        Settings(data_dir=tmp_path, ingest_token="x", admin_token=None).require_tokens()
    with pytest.raises(SettingsError, match="must differ"):
        Settings(data_dir=tmp_path, ingest_token="same", admin_token="same").require_tokens()


def test_demo_mode_generates_and_keeps_tokens(tmp_path, monkeypatch):
    monkeypatch.delenv("EVAL360_INGEST_TOKEN", raising=False)
    monkeypatch.delenv("INGEST_TOKEN", raising=False)
    monkeypatch.delenv("EVAL360_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("EVAL360_DATA_DIR", str(tmp_path))
    a = Settings.from_env(demo=True)
    b = Settings.from_env(demo=True)
    a.require_tokens()
    assert a.ingest_token == b.ingest_token and a.admin_token == b.admin_token
    assert (tmp_path / "tokens.env").stat().st_mode & 0o077 == 0


def test_legacy_ingest_token_name(monkeypatch, tmp_path):
    monkeypatch.delenv("EVAL360_INGEST_TOKEN", raising=False)
    monkeypatch.setenv("INGEST_TOKEN", "legacy")
    assert Settings.from_env().ingest_token == "legacy"
