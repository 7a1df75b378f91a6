"""`eval360 api` moves the objects alive at start-up out of the cyclic collector's reach (gc.freeze)
before serving, so that full collections during requests stay short; apps built in tests are not frozen."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_api_command_freezes_startup_objects_before_serving(monkeypatch, unfrozen):
    import uvicorn

    from ingest_api import cli

    seen = {}

    def fake_run(app, **kw):
        seen["app"], seen["frozen"] = app, gc.get_freeze_count()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("EVAL360_INGEST_TOKEN", "ingest-token-for-gc-test")
    monkeypatch.setenv("EVAL360_ADMIN_TOKEN", "admin-token-for-gc-test")
    monkeypatch.setenv("EVAL360_API_WORKERS", "1")
    assert cli.main(["api", "--no-migrate", "--quiet"]) == 0
    assert seen["app"].title.startswith("Eval360")
    assert seen["frozen"] > 10_000  # the modules, the app and its routes


def test_apps_built_in_process_are_not_frozen(unfrozen):
    from ingest_api.api.app import create_app
    from ingest_api.core.settings import Settings

    create_app(Settings(ingest_token="i" * 20, admin_token="a" * 20))
    assert gc.get_freeze_count() == 0
