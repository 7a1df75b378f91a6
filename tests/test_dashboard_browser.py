"""The dashboard as a person uses it: headless Chromium against a real Streamlit server and a real API
process on one real PostgreSQL, seeded through the API. Assertions are on what is visible, never on time.

Skipped, with the reason, where Chromium or Playwright is missing (a laptop); CI installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest

from tests.conftest import ADMIN, INGEST, truncate_all
from tests.helpers import minimal_payload
from tests.plugins.servers import api_and_dashboard

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
try:
    from playwright.sync_api import expect, sync_playwright
    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover
    HAVE_PLAYWRIGHT = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("EVAL360_E2E") == "skip", reason="EVAL360_E2E=skip (run once per CI job)"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not HAVE_PLAYWRIGHT, reason="the playwright package is not installed"),
]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
EVIL = "**bold** [link](http://x) ![img](http://example.invalid/x.png)"
DATASETS = {"gsm8k": "math", "math500": "math", "humaneval": "code"}
# run-a falls on math500 at its last step: the promotion rule's minimum fails there.
VALUES = {100: {"gsm8k": 0.40, "math500": 0.50, "humaneval": 0.20},
          200: {"gsm8k": 0.45, "math500": 0.55, "humaneval": 0.25},
          300: {"gsm8k": 0.50, "math500": 0.30, "humaneval": 0.30}}
TIMEOUT = 60_000


@pytest.fixture(scope="module")
def stack(db_url, tmp_path_factory):
    """API and dashboard processes on one database, seeded through the API."""
    truncate_all(db_url)
    tmp = tmp_path_factory.mktemp("dash-browser")
    with api_and_dashboard(db_url, tmp, EVAL360_DATA_DIR=str(tmp / "data")) as (api, dash, _, _):
        ing = {"Authorization": f"Bearer {INGEST}"}
        adm = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=api, timeout=60) as c:
            r = c.post("/api/admin/benchmark-metadata", headers=adm, json={"benchmarks": [
                {"dataset_name": d, "category": cat} for d, cat in DATASETS.items()]})
            assert r.status_code == 200, r.text
            for step, vals in VALUES.items():
                for ds, v in vals.items():
                    r = c.post("/api/ingest/eval-result", headers=ing, json=minimal_payload(
                        model_id="run-a", display_name="Run A", owner=EVIL, checkpoint_id=f"run-a__step-{step}",
                        training_step=step, model_type="training", dataset_name=ds, metrics={"accuracy": v},
                        sample_count=500))
                    assert r.status_code == 200, r.text
            for ds, v in {"gsm8k": 0.6, "math500": 0.6, "humaneval": 0.4}.items():
                r = c.post("/api/ingest/eval-result", headers=ing, json=minimal_payload(
                    model_id="base-1", display_name="Base 1", owner="ext", checkpoint_id="base-1",
                    model_type="baseline", dataset_name=ds, metrics={"accuracy": v}, sample_count=500))
                assert r.status_code == 200, r.text
            r = c.post("/api/admin/promotion-rules", headers=adm, json={
                "rule_name": "math-gate", "model_id": "run-a", "min_scores": {"math500": 0.45, "gsm8k": 0.45},
                "no_regressions": True})
            assert r.status_code == 200, r.text
        with psycopg.connect(db_url) as conn, conn.transaction():
            # 250 alerts (the rules make them; a bulk insert stands in for months of them).
            conn.execute("""insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message)
                            select 'missing_evaluation', 'run-a', 'run-a__step-200', 'bulk_' || g, 'info',
                                   'bulk alert ' || g from generate_series(1, 250) g""")
        yield {"dash": dash, "db": db_url}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished the page's script run (its app root says notRunning)."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=TIMEOUT)


def _open(page, stack, path: str, title: str):
    page.goto(stack["dash"] + path, wait_until="domcontentloaded", timeout=TIMEOUT)
    expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible(timeout=TIMEOUT)
    _settle(page)


@pytest.mark.parametrize("path,title", [
    ("/observatory", "Observatory"), ("/model", "Model detail"), ("/leaderboard", "Leaderboard"),
    ("/compare", "Compare & diff"), ("/examples", "Example browser"), ("/activity", "Activity & alerts"),
    ("/sql", "SQL"), ("/", "Observatory")])
def test_every_page_path_works_as_typed(stack, page, path, title):
    _open(page, stack, path, title)
    assert "Page not found" not in page.inner_text("body")
    if path == "/":
        assert urlparse(page.url).path == "/observatory"


def test_observatory_heatmap_grouped_and_a_cell_opens_its_curve(stack, page):
    _open(page, stack, "/observatory", "Observatory")
    grid = page.locator("[data-testid='stMain'] .e360-grid")
    expect(grid).to_be_visible(timeout=TIMEOUT)
    # Columns grouped under their category, categories in order, each spanning its datasets.
    cats = grid.locator("th.cat")
    assert cats.all_inner_texts() == ["code", "math"]
    assert [c.get_attribute("colspan") for c in cats.all()] == ["1", "2"]
    # The cell of run-a on math500 shows its latest score; a click opens that model's curve of that dataset.
    cell = grid.locator("tr", has=page.locator("th.model", has_text="run-a")).locator("td a").nth(2)
    expect(cell).to_have_text("0.30")
    assert "0.300" in cell.get_attribute("title") and "95%" in cell.get_attribute("title")
    cell.click()
    expect(page.get_by_role("heading", name="Model detail", exact=True).first).to_be_visible(timeout=TIMEOUT)
    q = parse_qs(urlparse(page.url).query)
    assert q["model"] == ["run-a"] and q["datasets"] == ["math500"], page.url


def test_promotion_verdict_in_the_first_viewport(stack, page):
    _open(page, stack, "/model?model=run-a", "Model detail")
    verdict = page.get_by_text("✗ Blocked", exact=False).first
    expect(verdict).to_be_visible(timeout=TIMEOUT)
    failing = page.get_by_text("math500: accuracy 0.3 ≥ 0.45 required", exact=False).first
    expect(failing).to_be_visible()
    for el in (verdict, failing):
        box = el.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, box  # above the fold at 1440×900
    # The evidence link of a failing condition opens its curve.
    expect(page.get_by_role("link", name="evidence").first).to_be_visible()


def test_diff_deep_link_opens_the_diff_of_those_checkpoints(stack, page):
    for query in ("?view=diff&a=run-a__step-100&b=run-a__step-300", "?a=run-a__step-100&b=run-a__step-300"):
        _open(page, stack, "/compare" + query, "Compare & diff")
        expect(page.get_by_text("b − a per dataset", exact=False)).to_be_visible(timeout=TIMEOUT)
        expect(page.get_by_role("combobox", name="Checkpoint B")).to_be_visible(timeout=TIMEOUT)
        _settle(page)
        snap = page.locator("[data-testid='stMain']").aria_snapshot()
        assert 'combobox "Checkpoint A": step 100' in snap and 'combobox "Checkpoint B": step 300' in snap, snap
        q = parse_qs(urlparse(page.url).query)
        assert q["a"] == ["run-a__step-100"] and q["b"] == ["run-a__step-300"] and q["view"] == ["diff"]
    # Reload keeps the view.
    page.reload(wait_until="domcontentloaded")
    _settle(page)
    expect(page.get_by_text("b − a per dataset", exact=False)).to_be_visible(timeout=TIMEOUT)


def test_unknown_ids_in_the_url_are_named(stack, page):
    _open(page, stack, "/model?model=no-such-model", "Model detail")
    expect(page.get_by_text("Unknown model in this link", exact=False)).to_be_visible(timeout=TIMEOUT)
    assert "no-such-model" in page.inner_text("body")
    assert "Run A" not in page.inner_text("body")  # no other model substituted
    assert parse_qs(urlparse(page.url).query)["model"] == ["no-such-model"]  # the URL is not rewritten
    _open(page, stack, "/compare?view=diff&a=run-a__step-100&b=run-a__step-999", "Compare & diff")
    expect(page.get_by_text("Unknown checkpoint in this link (b)", exact=False)).to_be_visible(timeout=TIMEOUT)


def test_alerts_page_past_200(stack, page):
    _open(page, stack, "/activity?alert_type=missing_evaluation&page=3", "Activity & alerts")
    expect(page.get_by_text("Rows 201–250 of 250", exact=False)).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("250 alerts match", exact=False)).to_be_visible()


def test_bulk_acknowledgement(stack, page):
    _open(page, stack, "/activity?alert_type=missing_evaluation&group=checkpoint", "Activity & alerts")
    page.get_by_text("all 250 unacknowledged alerts matching the filters").click()
    page.get_by_role("textbox", name="Your name").fill("Ana")
    page.get_by_role("textbox", name="Admin token").fill(ADMIN)
    page.get_by_role("button", name="Acknowledge 250 alerts").click()
    expect(page.get_by_text("250 alerts acknowledged by Ana")).to_be_visible(timeout=TIMEOUT)
    assert ADMIN not in page.url
    expect(page.get_by_text("Admin token: remembered for this session.")).to_be_visible()
    with psycopg.connect(stack["db"]) as c:
        n = c.execute("select count(*) from alerts where alert_type = 'missing_evaluation' and is_acknowledged "
                      "and acknowledged_by = 'Ana'").fetchone()[0]
        events = c.execute("select count(*) from activity where event_type = 'acknowledgement'").fetchone()[0]
    assert n == 250 and events == 250


def test_client_markdown_is_shown_literally(stack, page):
    _open(page, stack, "/model?model=run-a", "Model detail")
    expect(page.get_by_text(EVIL, exact=False).first).to_be_visible(timeout=TIMEOUT)
    main = page.locator("[data-testid='stMain']")
    assert main.locator("img[src*='example.invalid']").count() == 0
    assert main.locator("a[href='http://x'], a[href='http://x/']").count() == 0
    assert main.locator("strong", has_text="bold").count() == 0
