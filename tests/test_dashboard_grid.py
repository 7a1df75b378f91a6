"""The Observatory's HTML heatmap (dashboard/grid.py): structure, escaping, links and colours."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from dashboard import grid


class _Table(HTMLParser):
    """Collects header cells (class, colspan, text) and body rows (cells' style, link, title, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: list[dict] = []
        self.rows: list[list[dict]] = []
        self.row_names: list[str] = []
        self._cur: dict | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "th":
            self._cur = {"kind": "th", "class": a.get("class"), "colspan": a.get("colspan"), "text": ""}
        elif tag == "td":
            self._cur = {"kind": "td", "class": a.get("class"), "style": a.get("style"), "text": ""}
        elif tag == "a" and self._cur is not None:
            self._cur["href"], self._cur["title"] = a.get("href"), a.get("title")

    def handle_data(self, data):
        if self._cur is not None:
            self._cur["text"] += data

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cur is not None:
            c, self._cur = self._cur, None
            if c["kind"] == "th" and c["class"] == "model":
                self.row_names.append(c["text"])
            elif c["kind"] == "th":
                self.heads.append(c)
            elif c["class"] != "gap":
                self.rows[-1].append(c)


def _parse(text: str) -> _Table:
    t = _Table()
    t.feed(text)
    return t


def _cells() -> pd.DataFrame:
    rows = [("m<1>", "gsm8k", 0.9, 0.85, 0.94, 500, "completed", 300, 1.0),
            ("m<1>", "humaneval", 0.2, 0.14, 0.27, 164, "stale", 200, 0.0),
            ("m<1>", "math500", None, None, None, None, "missing", None, None),
            ("base", "gsm8k", 0.7, 0.66, 0.74, 500, "completed", None, 0.5),
            ("base", "humaneval", 0.5, 0.42, 0.58, 164, "completed", None, 0.6)]
    return pd.DataFrame(rows, columns=["model_id", "dataset_name", "score", "ci_lower", "ci_upper", "n", "status",
                                       "training_step", "colour"])


CATS = {"gsm8k": "math", "math500": "math", "humaneval": "code"}


def test_columns_grouped_by_category_and_every_cell_present():
    html = grid.heatmap_html(_cells(), models=["m<1>", "base"], datasets=["gsm8k", "humaneval", "math500"],
                             categories=CATS, color_field="colour", color_title="norm",
                             marks={"missing": "∅", "stale": "↻"})
    t = _parse(html)
    cats = [(h["text"], h["colspan"]) for h in t.heads if h["class"] == "cat"]
    assert cats == [("code", "1"), ("math", "2")]  # categories in order, each spanning its datasets
    assert [h["text"] for h in t.heads if h["class"] == "ds"] == ["humaneval", "gsm8k", "math500"]
    assert t.row_names == ["m<1>", "base"]  # the model id shown as text, not as markup
    assert "<1>" not in html and "m&lt;1&gt;" in html
    assert [len(r) for r in t.rows] == [3, 3]
    first = {c: cell for c, cell in zip(["humaneval", "gsm8k", "math500"], t.rows[0])}
    assert first["gsm8k"]["text"] == "0.90"
    assert first["humaneval"]["text"] == "0.20 ↻"  # a stale cell carries its mark
    assert first["math500"]["text"] == "∅"  # no score: the missing mark, a neutral background
    assert "rgba(128, 128, 128" in first["math500"]["style"]
    # The tooltip carries the interval and n; the link opens that model's curve of that dataset.
    assert "95% [0.850, 0.940]" in first["gsm8k"]["title"] and "n 500" in first["gsm8k"]["title"]
    link = urlparse(first["gsm8k"]["href"])
    assert link.path == "model" and not link.netloc  # relative: works behind /eval360/
    assert parse_qs(link.query) == {"model": ["m<1>"], "datasets": ["gsm8k"], "tab": ["curves"]}


def test_picked_cell_is_marked():
    html = grid.heatmap_html(_cells(), models=["m<1>", "base"], datasets=["gsm8k", "humaneval"], categories=CATS,
                             color_field="colour", color_title="norm", picked=("base", "humaneval"))
    t = _parse(html)
    picked = [(i, c["href"]) for i, r in enumerate(t.rows) for c in r if c["class"] == "picked"]
    assert len(picked) == 1 and picked[0][0] == 1 and "humaneval" in picked[0][1]


def _rgb(style: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.search(r"rgb\((\d+), (\d+), (\d+)\)", style).groups())


def test_sequential_colours_run_dark_to_light_with_readable_text():
    lo_bg, lo_fg = grid.cell_colour(0.0)
    hi_bg, hi_fg = grid.cell_colour(1.0)
    assert _rgb(lo_bg) == (0x44, 0x01, 0x54) and _rgb(hi_bg) == (0xfd, 0xe7, 0x25)  # viridis' two ends
    assert lo_fg == "#ffffff" and hi_fg == "#111111"
    lum = [sum(w * v for w, v in zip((0.2126, 0.7152, 0.0722), _rgb(grid.cell_colour(x / 10)[0])))
           for x in range(11)]
    assert lum == sorted(lum)  # lighter as the value grows
    assert grid.cell_colour(None)[1] == "inherit" and grid.cell_colour(float("nan"))[1] == "inherit"


@pytest.mark.parametrize("value,side", [(-0.2, "orange"), (0.2, "blue")])
def test_diverging_colours_orange_below_blue_above(value, side):
    r, _g, b = _rgb(grid.cell_colour(value, diverging=True, span=0.2)[0])
    assert (r > b) if side == "orange" else (b > r)
    mid = _rgb(grid.cell_colour(0.0, diverging=True, span=0.2)[0])
    assert min(mid) > 230  # no gap: near white


def test_diverging_span_is_the_largest_gap_shown():
    df = _cells().assign(colour=[0.1, -0.4, None, 0.0, 0.2])
    html = grid.heatmap_html(df, models=["m<1>", "base"], datasets=["gsm8k", "humaneval"], categories=CATS,
                             color_field="colour", color_title="gap", diverging=True)
    t = _parse(html)
    worst = next(c for c in t.rows[0] if "humaneval" in c["href"])
    assert _rgb(worst["style"]) == _rgb(grid.cell_colour(-1.0, diverging=True)[0])  # -0.4 is the far end
