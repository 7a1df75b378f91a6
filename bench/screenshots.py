"""Retake docs/screenshots/ in headless Chromium (Playwright) against a real Streamlit server.

    python bench/screenshots.py --database-url URL [--out docs/screenshots]

Use an LLM360-scale database (`eval360 demo-data --scale llm360`). Every page at 1440×900 (light);
the Observatory and Model detail also at 1024×768, and the Observatory in the dark theme at both widths
(Streamlit follows the browser's colour scheme unless a theme is configured). Each shot waits for the
page's main element (the same one bench/bench_browser.py times), then for the script to finish.
Not a benchmark: it shares bench/'s harness.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_browser import ARGS, CHROMIUM, _pages, _query, _visible

SHOTS = [  # (file stem, page, width, height, colour scheme)
    ("observatory", "observatory", 1440, 900, "light"),
    ("observatory_1024", "observatory", 1024, 768, "light"),
    ("observatory_dark", "observatory", 1440, 900, "dark"),
    ("observatory_1024_dark", "observatory", 1024, 768, "dark"),
    ("model_detail", "model", 1440, 900, "light"),
    ("model_detail_1024", "model", 1024, 768, "light"),
    ("leaderboard", "leaderboard", 1440, 900, "light"),
    ("diff", "compare", 1440, 900, "light"),
    ("example_browser", "examples", 1440, 900, "light"),
    ("activity_alerts", "activity", 1440, 900, "light"),
    ("sql", "sql", 1440, 900, "light"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--full-page", action="store_true", help="the whole page, not the first viewport")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from bench.common import dashboard_server

    params = dict(_pages(a.database_url))
    a.out.mkdir(parents=True, exist_ok=True)
    with dashboard_server(a.database_url) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for stem, page_name, w, h, scheme in SHOTS:
            ctx = browser.new_context(viewport={"width": w, "height": h}, color_scheme=scheme)
            page = ctx.new_page()
            page.goto(base + "/" + page_name + _query(params[page_name]), wait_until="commit")
            _visible(page, page_name, timeout=120_000)
            page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=120_000)
            page.wait_for_timeout(1500)  # charts finish their first paint
            path = a.out / f"{stem}.png"
            page.screenshot(path=str(path), full_page=a.full_page)
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {w}×{h} {scheme}",
                  flush=True)
            ctx.close()
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
