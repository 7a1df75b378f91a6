"""Eval360 dashboard entry point: `streamlit run dashboard/app.py` (or `eval360 dashboard`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path; the pages import `dashboard.*`.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from dashboard.page_kit import friendly_error, md_escape

st.set_page_config(page_title="Eval360", page_icon=":material/monitoring:", layout="wide")

OBSERVATORY = st.Page("app_pages/observatory.py", title="Observatory", icon=":material/grid_on:",
                      url_path="observatory")


def _home() -> None:
    """The root URL: Streamlit serves a default page at "/" only (its url_path is ignored), so the
    Observatory is an ordinary page at /observatory and "/" forwards there, query string included."""
    st.switch_page(OBSERVATORY, query_params={k: st.query_params.get_all(k) for k in st.query_params})


# One flat list, shown as a bar across the top (st.navigation(position="top")): no sidebar, so a
# 1024-px window gives the page its whole width (the bar folds its last links into "more" when narrow).
PAGES = [
    st.Page(_home, title="Home", url_path="home", default=True, visibility="hidden"),
    OBSERVATORY,
    st.Page("app_pages/model.py", title="Model detail", icon=":material/timeline:", url_path="model"),
    st.Page("app_pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:", url_path="leaderboard"),
    st.Page("app_pages/compare.py", title="Compare & diff", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("app_pages/examples.py", title="Example browser", icon=":material/list_alt:", url_path="examples"),
    st.Page("app_pages/items.py", title="Items across training", icon=":material/stacked_line_chart:", url_path="items"),
    st.Page("app_pages/activity.py", title="Activity & alerts", icon=":material/notifications:", url_path="activity"),
    st.Page("app_pages/sql.py", title="SQL", icon=":material/database:", url_path="sql"),
]

# The pages live in app_pages/, not pages/: with a folder named pages/ beside the entry script,
# Streamlit starts in its legacy multipage mode (each page run alone, without this script's
# navigation, layout and error handling) until this script has run once in the process.
page = st.navigation(PAGES, position="top")
# Below the navigation bar, less of Streamlit's default top padding: the first chart or table sits
# higher in the first viewport.
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:4.5rem}</style>")
try:
    page.run()
except Exception as exc:  # noqa: BLE001 - a page failure is a message, never a traceback
    st.error(f"This page failed: {md_escape(friendly_error(exc))}")
