"""Dashboard speed as a person waits for it: headless Chromium (Playwright) against a real Streamlit
server, time from navigation to the page's main element being visible, per page.

    python bench/bench_browser.py --database-url URL      # an already loaded database (LLM360 scale)
    python bench/bench_browser.py                          # throwaway embedded DB + `demo-data --scale llm360` (slow)

cold:  a new browser session opens the page's URL after the database's change counter was advanced
       (`select nextval('eval360_data_version')`), so every cached read misses and is queried again
       (the server process is running, as in production).
warm:  the same URL opened again in a new tab of a browser profile that has opened it before (the
       server's caches hold the data, the browser's cache holds Streamlit's scripts: a person opening
       a link again). Each tab is a new Streamlit session that runs the page's script.
page-to-page: in one session, a click on the next page's link in the top navigation bar until its main element
       shows (Streamlit's in-app navigation; the data cached).
Main element: the Observatory heatmap (an HTML table), Model detail's promotion verdict, the leaderboard chart, the
diff chart, the examples table, the alerts table, the SQL result table. Targets (issue 15): cold ≤ 1.5 s,
warm ≤ 0.5 s, page-to-page ≤ 0.5 s. Median of --repeat runs.

Same-run references: (1) the floor: a bare Streamlit app (this project's Streamlit and config, top
navigation, a heading and one 600-cell Vega-Lite heatmap per page, no data read), timed the same
three ways: what any Streamlit page costs in this browser on this machine (a new tab is a new
session: the page's scripts, a websocket, a script run, the first paint); (2) the bare SQL of the
heaviest read (the Observatory heatmap) timed with psycopg.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
TARGETS = (1.5, 0.5, 0.5)  # cold, warm, page-to-page (s)
CHART = "[data-testid='stMain'] [data-testid='stVegaLiteChart'] :is(canvas, svg.marks)"
TABLE = "[data-testid='stMain'] [data-testid='stDataFrame'] canvas"
GRID = "[data-testid='stMain'] .e360-grid td a"
MAIN = {"observatory": ("Observatory", GRID), "model": ("Model detail", "[data-testid='stMain'] [data-testid='stAlert']"),
        "leaderboard": ("Leaderboard", CHART), "compare": ("Compare & diff", CHART),
        "examples": ("Example browser", TABLE),
        "activity": ("Activity & alerts", f"{TABLE}, [data-testid='stMain'] [data-testid='stAlert']"), "sql": ("SQL", TABLE)}
NAV = {"observatory": "Observatory", "model": "Model detail", "leaderboard": "Leaderboard",
       "compare": "Compare & diff", "examples": "Example browser", "activity": "Activity & alerts", "sql": "SQL"}


def _pages(url: str) -> list[tuple[str, dict]]:
    from bench.bench_dashboard import _pages as pages

    out = []
    for name, params in pages(url):
        if name == "compare":
            params = {"view": "diff", **params}
        out.append((name, params))
    return out


def _query(params: dict) -> str:
    from urllib.parse import urlencode

    return ("?" + urlencode(params)) if params else ""


# Reached from the sidebar, a page has no URL parameters: the SQL page then shows its editor, no result.
NAV_MAIN = {"sql": "[data-testid='stMain'] textarea"}


def _visible(page, name: str, timeout: float = 30_000, *, via_nav: bool = False) -> None:
    from playwright.sync_api import expect

    title, sel = MAIN[name]
    if via_nav:
        sel = NAV_MAIN.get(name, sel)
    expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible(timeout=timeout)
    page.locator(sel).first.wait_for(state="visible", timeout=timeout)


def _timed_open(browser, base: str, name: str, params: dict, ctx=None) -> float:
    """Seconds from navigation to the main element; nan when it did not show within the timeout.
    Without `ctx`, in a new browser profile (nothing cached by the browser); with one, in a new tab of
    that profile (the browser's HTTP cache holds Streamlit's scripts, as when a person opens a link again)."""
    from playwright.sync_api import TimeoutError as PwTimeout

    own = ctx is None
    if own:
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(base + "/" + name + _query(params), wait_until="commit")
        _visible(page, name)
        return time.perf_counter() - t0
    except PwTimeout:
        print(f"  {name}: main element not visible within the timeout", flush=True)
        return float("nan")
    finally:
        page.close()
        if own:
            ctx.close()


def _med(xs: list[float]) -> float:
    """Median; a timed-out run (nan) counts as slower than every finished one."""
    if not xs:
        return float("nan")
    s = sorted(xs, key=lambda v: (math.isnan(v), v))
    m = s[len(s) // 2]
    return m


# The floor: a bare Streamlit app (this project's Streamlit and config, top navigation, two pages
# each with a heading and one 40 × 15 Vega-Lite heatmap, no data read), timed exactly as the
# dashboard's pages. What Streamlit itself costs in this browser on this machine, in the same run.
_FLOOR_APP = """import streamlit as st
st.set_page_config(page_title="floor", layout="wide")
st.navigation([st.Page("p/first.py", title="First", url_path="first"),
               st.Page("p/second.py", title="Second", url_path="second")], position="top").run()
"""
_FLOOR_PAGE = """import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
st.title("{title}")
rng = np.random.default_rng(0)
df = pd.DataFrame({{"x": np.repeat(np.arange(40), 15), "y": np.tile(np.arange(15), 40), "v": rng.random(600)}})
st.altair_chart(alt.Chart(df).mark_rect().encode(x="x:O", y="y:O", color="v:Q"), width="stretch")
"""


@contextmanager
def _floor_server():
    import shutil
    import tempfile

    from bench.common import streamlit_server

    d = Path(tempfile.mkdtemp(prefix="eval360-floor-"))
    try:
        (d / "p").mkdir()
        (d / ".streamlit").mkdir()
        shutil.copy(ROOT / ".streamlit" / "config.toml", d / ".streamlit" / "config.toml")
        (d / "app.py").write_text(_FLOOR_APP)
        for name in ("First", "Second"):
            (d / "p" / f"{name.lower()}.py").write_text(_FLOOR_PAGE.format(title=name))
        with streamlit_server(d) as base:
            yield base
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _floor(browser, repeat: int) -> dict:
    """Cold (new profile), warm (new tab of a profile that saw it) and page-to-page (top-bar click) for
    the bare app; medians of `repeat`."""
    def shown(page, title: str) -> None:
        page.get_by_role("heading", name=title, exact=True).first.wait_for(state="visible")
        page.locator(CHART).first.wait_for(state="visible")

    out: dict[str, list[float]] = {"cold": [], "warm": [], "nav": []}
    with _floor_server() as base:
        for i in range(repeat + 1):  # the first round warms the server (imports, script compile)
            ctx = browser.new_context(viewport={"width": 1440, "height": 900})
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(base + "/", wait_until="commit")  # the default page lives at / only
            shown(page, "First")
            cold = time.perf_counter() - t0
            page.close()
            tab = ctx.new_page()
            t0 = time.perf_counter()
            tab.goto(base + "/", wait_until="commit")
            shown(tab, "First")
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            tab.locator("[data-testid='stTopNav']").get_by_role("link", name="Second", exact=True).click()
            shown(tab, "Second")
            nav = time.perf_counter() - t0
            ctx.close()
            if i:
                out["cold"].append(cold)
                out["warm"].append(warm)
                out["nav"].append(nav)
    return {k: _med(v) for k, v in out.items()}


def run(url: str, repeat: int) -> list[dict]:
    import psycopg
    from playwright.sync_api import sync_playwright

    from bench.common import dashboard_server

    pages = _pages(url)
    res = {n: {"cold": [], "warm": [], "nav": []} for n, _ in pages}
    with dashboard_server(url) as base, sync_playwright() as p, psycopg.connect(url, autocommit=True) as conn:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # Once through every page: the server imports its modules and compiles the scripts.
        for name, params in pages:
            _timed_open(browser, base, name, params)
        for _ in range(repeat):
            for name, params in pages:
                conn.execute("select nextval('eval360_data_version')")  # every cached read is now stale
                res[name]["cold"].append(_timed_open(browser, base, name, params))
                profile = browser.new_context(viewport={"width": 1440, "height": 900})
                _timed_open(browser, base, name, params, profile)  # this profile has now seen the page
                res[name]["warm"].append(_timed_open(browser, base, name, params, profile))
                profile.close()
            # Page to page: one session, sidebar clicks in order (data cached by the runs above).
            ctx = browser.new_context(viewport={"width": 1440, "height": 900})
            page = ctx.new_page()
            page.goto(base + "/" + pages[-1][0] + _query(pages[-1][1]), wait_until="commit")
            _visible(page, pages[-1][0])
            for name, _params in pages:
                t0 = time.perf_counter()
                try:
                    page.locator("[data-testid='stTopNav']").get_by_role("link", name=NAV[name],
                                                                              exact=True).click()
                    _visible(page, name, via_nav=True)
                    res[name]["nav"].append(time.perf_counter() - t0)
                    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for()
                except Exception:  # noqa: BLE001 - a timeout is a result (nan), the run goes on
                    print(f"  {name}: page-to-page did not finish within the timeout", flush=True)
                    res[name]["nav"].append(float("nan"))
            ctx.close()
        floor = _floor(browser, repeat)
        browser.close()
        # The same-run reference: the heaviest read as bare SQL.
        from ingest_api.core.db import flush_facts
        from ingest_api.read import heatmap

        with psycopg.connect(url) as c2:
            from psycopg.rows import dict_row

            c2.row_factory = dict_row
            flush_facts(c2)
            t0 = time.perf_counter()
            heatmap.heatmap(c2)
            ref = time.perf_counter() - t0
    out = []
    for name, _ in pages:
        r = res[name]
        out.append({"page": name, "cold_s": _med(r["cold"]), "warm_s": _med(r["warm"]), "nav_s": _med(r["nav"])})
    out.append({"page": "(ref: bare Streamlit page, one Vega chart)", "cold_s": floor["cold"],
                "warm_s": floor["warm"], "nav_s": floor["nav"]})
    out.append({"page": "(ref: heatmap SQL)", "cold_s": ref, "warm_s": float("nan"), "nav_s": float("nan")})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="an already loaded database (else a throwaway embedded one)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.database_url:
        ctx = nullcontext(args.database_url)
    else:
        from bench.common import embedded_db

        ctx = embedded_db("eval360-bench-browser-")
    with ctx as url:
        if not args.database_url:
            from ingest_api.ingest.demo import load_demo_data

            print(load_demo_data(url, scale="llm360", seed=0), flush=True)
        import psycopg

        with psycopg.connect(url) as c:
            n = c.execute("""select (select count(*) from models), (select count(*) from checkpoints),
                                    (select count(*) from eval_runs), (select count(*) from alerts),
                                    (select count(*) from activity)""").fetchone()
        print(f"database: {n[0]} models, {n[1]} checkpoints, {n[2]:,} eval runs, {n[3]:,} alerts, {n[4]:,} events; "
              f"Chromium {CHROMIUM} at 1440×900; median of {args.repeat}")
        rows = run(url, args.repeat)
        c_t, w_t, n_t = TARGETS
        print(f"\n| page | cold s (≤{c_t:g}) | warm s (≤{w_t:g}) | page-to-page s (≤{n_t:g}) |")
        print("|---|---|---|---|")
        ok = True
        for r in rows:
            def cell(v: float, t: float, is_ref: bool = r["page"].startswith("(")) -> str:
                if math.isnan(v):
                    return "—" if is_ref else "timeout"
                if is_ref:
                    return f"{v:.3f}"
                return f"{v:.2f} {'ok' if v <= t else 'MISSED'}"

            if not r["page"].startswith("("):
                ok &= bool(r["cold_s"] <= c_t and r["warm_s"] <= w_t and r["nav_s"] <= n_t)
            print(f"| {r['page']} | {cell(r['cold_s'], c_t)} | {cell(r['warm_s'], w_t)} | {cell(r['nav_s'], n_t)} |")
        print("\nall targets met" if ok else "\nsome targets missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
