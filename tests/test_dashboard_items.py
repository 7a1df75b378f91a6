"""The 'Items across training' page rendered with Streamlit's AppTest on known data."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.plugins.items import HISTORIES, STEPS, insert_runs, slice_runs

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture
def env(db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db)
    st.cache_data.clear()
    yield db
    st.cache_data.clear()


def render(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page("app_pages/items.py")
    return at.run()


def frame_with(at: AppTest, *cols: str):
    for d in at.dataframe:
        if all(c in d.value.columns for c in cols):
            return d.value
    raise AssertionError(f"no dataframe with {cols}")


def test_items_page(env):
    insert_runs(env, [(f"i{s}", "m1", s, "dsI") for s in STEPS],
            [(f"i{s}", idx, bool(h[t]), "geo" if idx < 3 else "alg") for idx, h in HISTORIES.items()
             for t, s in enumerate(STEPS)])
    at = render(model="m1", dataset="dsI")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    df = frame_with(at, "example_idx", "label", "first_step_solved", "last_lost_step", "n_flips")
    assert dict(zip(df["example_idx"], df["label"])) == {0: "learned", 1: "forgotten", 2: "forgotten", 3: "never",
                                                         4: "always", 5: "unstable", 6: "unstable"}
    tests = frame_with(at, "slice", "verdict", "q_value")
    assert sorted(tests["slice"]) == ["alg", "geo"]
    # the first item's changes link to the example browser at the checkpoint where it changed
    links = [(el.proto.page, el.proto.query_string) for el in at.get("page_link")]
    assert any("examples" in page and "run=i3000" in qs and "example=0" in qs for page, qs in links), links
    # filter by label from the URL
    at = render(model="m1", dataset="dsI", label="unstable")
    df = frame_with(at, "example_idx", "label")
    assert list(df["example_idx"]) == [5, 6]


def test_items_page_slices_and_empty(env):
    at = render()
    assert not at.exception
    assert any("No completed eval run has per-example rows" in str(i.value) for i in at.info)
    runs, ex, _ = slice_runs("dsS", {"algebra": (0.2, 0.8), "geometry": (0.8, 0.2)}, n_per=50, n_ckpt=5)
    insert_runs(env, runs, ex)
    st.cache_data.clear()
    at = render(model="m1", dataset="dsS")
    assert not at.exception and not at.error
    tests = frame_with(at, "slice", "verdict")
    assert dict(zip(tests["slice"], tests["verdict"]))["geometry"] == "falls_behind"
    pts = frame_with(at, "slice", "n", "correct", "ci_lower", "ci_upper")
    assert set(pts["slice"]) == {"algebra", "geometry", "(all)"}
