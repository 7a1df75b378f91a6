"""End to end through the real production path: nginx (the project's config) → API and dashboard,
with headless Chromium loading /eval360/.

Skipped, with the reason, where nginx or Chromium is not installed (a laptop); CI installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from ingest_api.core.settings import REPO_ROOT
from tests.conftest import INGEST
from tests.helpers import minimal_payload
from tests.plugins.servers import api_and_dashboard, free_port, stop, wait_until_up

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

try:
    import playwright.sync_api  # noqa: F401
    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover
    HAVE_PLAYWRIGHT = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("EVAL360_E2E") == "skip", reason="EVAL360_E2E=skip (run once per CI job)"),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not HAVE_PLAYWRIGHT, reason="the playwright package is not installed"),
]


@pytest.fixture
def stack(db, tmp_path):
    nginx_port = free_port()
    with api_and_dashboard(db, tmp_path, EVAL360_ROOT_PATH="/eval360", EVAL360_DATA_DIR=str(tmp_path / "data")) \
            as (_, _, api_port, dash_port):
        yield from _behind_nginx(tmp_path, api_port, dash_port, nginx_port)


def _behind_nginx(tmp_path, api_port: int, dash_port: int, nginx_port: int):
    """The project's nginx config in front of the two servers; yields (nginx base URL, tmp_path)."""
    # The project's nginx snippet, with the ports of this test substituted.
    snippet = (REPO_ROOT / "deploy" / "nginx" / "eval360.conf").read_text()
    snippet = snippet.replace("127.0.0.1:11003", f"127.0.0.1:{api_port}").replace(
        "127.0.0.1:11004", f"127.0.0.1:{dash_port}")
    (tmp_path / "eval360.conf").write_text(snippet)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / d).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
{'user root;' if os.geteuid() == 0 else ''}
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {tmp_path}/nginx-access.log;
  client_body_temp_path {tmp_path}/body;
  proxy_temp_path {tmp_path}/proxy;
  fastcgi_temp_path {tmp_path}/fastcgi;
  uwsgi_temp_path {tmp_path}/uwsgi;
  scgi_temp_path {tmp_path}/scgi;
  server {{
    listen 127.0.0.1:{nginx_port};
    include {tmp_path}/eval360.conf;
  }}
}}
""")
    nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{nginx_port}"
    try:
        wait_until_up(f"{base}/eval360/api/health", nginx, "the API via nginx")
        wait_until_up(f"{base}/eval360/_stcore/health", nginx, "the dashboard via nginx")
        yield base, tmp_path
    finally:
        stop(nginx)


def test_ingest_read_and_render_through_nginx(stack):
    base, tmp_path = stack
    headers = {"Authorization": f"Bearer {INGEST}"}
    payload = minimal_payload(model_id="e2e-model", display_name="E2E Model", checkpoint_id="e2e-model__step-100",
                              dataset_name="gsm8k", metrics={"accuracy (avg over 1)": 0.625}, sample_count=400)
    r = httpx.post(f"{base}/eval360/api/ingest/eval-result", json=payload, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["checkpoint_id"] == "e2e-model__step-100"

    # Read it back through nginx.
    models = httpx.get(f"{base}/eval360/api/models", timeout=30).json()["models"]
    assert [m["model_id"] for m in models] == ["e2e-model"]
    scores = httpx.get(f"{base}/eval360/api/models/e2e-model/scores", timeout=30).json()["scores"]
    assert any(s["dataset_name"] == "gsm8k" and s["metric_value"] == pytest.approx(0.625) for s in scores)
    # The API docs work behind the proxy prefix.
    docs = httpx.get(f"{base}/eval360/api/docs", timeout=30)
    assert docs.status_code == 200 and "/eval360/api/openapi.json" in docs.text
    assert httpx.get(f"{base}/eval360/api/openapi.json", timeout=30).json()["info"]["title"]

    from playwright.sync_api import sync_playwright

    shot = Path(os.environ.get("EVAL360_E2E_SCREENSHOT", tmp_path / "observatory.png"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/eval360/", wait_until="domcontentloaded", timeout=60_000)
            # The Observatory names every model it shows (in its coverage grid, whose cells are
            # rendered on a canvas with an accessible DOM copy: attached, not "visible").
            page.get_by_text("E2E Model").first.wait_for(state="attached", timeout=90_000)
            # …and its heatmap has rendered, with cells that link (relative links: under /eval360/).
            cell = page.locator(".e360-grid td a").first
            cell.wait_for(timeout=60_000)
            assert cell.get_attribute("href").startswith("model?")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shot), full_page=True)
            assert "Traceback" not in page.content()
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
