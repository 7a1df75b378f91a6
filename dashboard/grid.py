"""The Observatory's heatmap as an HTML table (st.html), not a Vega-Lite chart.

Why a table: in Chromium here a grouped Vega-Lite heatmap (one facet per category, value and status
layers) took about a second to compile and draw after its spec arrived, longer than the whole rest of
the page; an HTML table of the same cells shows with the page's heading (bench/bench_browser.py).
A table also does what the facets did poorly: a header row of categories spanning their datasets,
dataset names above their columns, model names kept in view while the table scrolls sideways.

Each cell: background from the colour value (viridis, or blue/orange around 0 for a gap), the score
to two decimals, the status mark, a tooltip with the 95% interval, n, status and step, and a link to
the model's curve on that dataset (Model detail). All text is escaped; links are relative, so they
work behind a path prefix (nginx at /eval360/).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from urllib.parse import urlencode

import pandas as pd

# Viridis at 10 evenly spaced points (matplotlib's colormap, the same scheme the chart used);
# values between are interpolated linearly.
_VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
            "#b5de2b", "#fde725"]
# Diverging, colour-blind safe: orange below 0 (worse than the baseline), blue above (PuOr-like ends).
_DIVERGING = ["#b35806", "#f1a340", "#fee0b6", "#f7f7f7", "#d8daeb", "#998ec3", "#2166ac"]
_MISSING_BG = "rgba(128, 128, 128, 0.12)"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _ramp(stops: Sequence[str], t: float) -> tuple[int, int, int]:
    """Colour at t in [0, 1] along the stops."""
    t = min(1.0, max(0.0, t))
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    a, b = _rgb(stops[i]), _rgb(stops[i + 1])
    return tuple(round(x + (y - x) * f) for x, y in zip(a, b))  # type: ignore[return-value]


def cell_colour(value: float | None, *, diverging: bool = False, span: float = 1.0) -> tuple[str, str]:
    """(background, text colour) for a colour value: sequential values lie in [0, 1]; diverging ones
    in [-span, span] around 0. None or NaN: a faint grey with the theme's own text colour."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _MISSING_BG, "inherit"
    t = (value / (2 * span) + 0.5) if diverging else value
    r, g, b = _ramp(_DIVERGING if diverging else _VIRIDIS, t)
    # Relative luminance (sRGB, approximate): dark cells get white text.
    lum = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
    return f"rgb({r}, {g}, {b})", ("#ffffff" if lum < 0.5 else "#111111")


_CSS = """<style>
.e360-grid{overflow-x:auto;max-width:100%;padding-bottom:4px}
.e360-grid table{border-collapse:separate;border-spacing:2px;font-size:11px;line-height:1.2}
.e360-grid th{font-weight:600;white-space:nowrap;padding:0 4px}
.e360-grid th.cat{text-align:left;border-bottom:2px solid rgba(128,128,128,.5);font-size:12px}
.e360-grid th.cat div{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.e360-grid th.ds{font-weight:400;vertical-align:bottom;height:110px;padding:0}
.e360-grid th.ds span{display:inline-block;writing-mode:vertical-rl;transform:rotate(180deg);
  max-height:108px;overflow:hidden;text-overflow:ellipsis}
.e360-grid th.model{position:sticky;left:0;z-index:1;text-align:right;font-weight:400;
  background:var(--e360-bg);padding-right:8px;max-width:220px;overflow:hidden;text-overflow:ellipsis}
.e360-grid td{padding:0;min-width:38px;height:26px;text-align:center}
.e360-grid td a{display:block;line-height:26px;text-decoration:none;color:inherit}
.e360-grid td a:hover,.e360-grid td.picked a{outline:2px solid #e69f00;outline-offset:-2px}
.e360-grid td.gap{min-width:8px;background:none}
.e360-legend{font-size:11px;display:flex;align-items:center;gap:6px;margin:2px 0 6px 0}
.e360-legend .bar{width:160px;height:10px;border-radius:2px}
</style>"""


def _fmt(v: object, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return format(v, spec)


def heatmap_html(df: pd.DataFrame, *, models: Sequence[str], datasets: Sequence[str],
                 categories: dict[str, str], color_field: str, color_title: str, diverging: bool = False,
                 marks: dict[str, str] | None = None, link_page: str = "model",
                 picked: tuple[str, str] | None = None, background: str = "#ffffff") -> str:
    """Models (rows) × datasets (columns, grouped by category in `datasets`' order within each
    category, categories alphabetical) as an HTML table. `df` has one row per cell with model_id,
    dataset_name, score, ci_lower, ci_upper, n, status, training_step and `color_field`."""
    marks = marks or {}
    cells = {(r["model_id"], r["dataset_name"]): r for r in df.to_dict("records")}
    groups: dict[str, list[str]] = {}
    for d in datasets:
        groups.setdefault(categories.get(d) or "uncategorised", []).append(d)
    order = sorted(groups)
    span = 1.0
    if diverging:
        vals = [abs(v) for v in pd.to_numeric(df[color_field], errors="coerce").dropna()]
        span = max(vals) if vals and max(vals) > 0 else 1.0

    esc = html.escape
    out = [_CSS, f'<div class="e360-grid" style="--e360-bg:{esc(background)}">',
           '<table role="grid" aria-label="models by datasets"><thead><tr><th></th>']
    for i, cat in enumerate(order):
        if i:
            out.append('<th class="gap"></th>')
        # The label widens its columns at most to ~10 characters; longer names are cut (whole on hover).
        width = max(40 * len(groups[cat]) - 6, 76)
        out.append(f'<th class="cat" colspan="{len(groups[cat])}" title="{esc(cat)}">'
                   f'<div style="width:{width}px">{esc(cat)}</div></th>')
    out.append("</tr><tr><th></th>")
    for i, cat in enumerate(order):
        if i:
            out.append('<th class="gap"></th>')
        out.extend(f'<th class="ds" title="{esc(d)}"><span>{esc(d)}</span></th>' for d in groups[cat])
    out.append("</tr></thead><tbody>")
    for m in models:
        out.append(f'<tr><th class="model" scope="row" title="{esc(m)}">{esc(m)}</th>')
        for i, cat in enumerate(order):
            if i:
                out.append('<td class="gap"></td>')
            for d in groups[cat]:
                c = cells.get((m, d)) or {}
                score = c.get("score")
                has = score is not None and not (isinstance(score, float) and math.isnan(score))
                bg, fg = cell_colour(c.get(color_field) if has else None, diverging=diverging, span=span)
                mark = marks.get(c.get("status") or "missing", "")
                text = " ".join(t for t in ((f"{score:.2f}" if has else ""), mark) if t)
                step = c.get("training_step")
                tip = (f"{m} · {d}\nscore {_fmt(score, '.3f')}  95% [{_fmt(c.get('ci_lower'), '.3f')}, "
                       f"{_fmt(c.get('ci_upper'), '.3f')}]  n {_fmt(c.get('n'), '.0f')}\n"
                       f"status {c.get('status') or 'missing'}"
                       + (f"  · step {step:.0f}" if isinstance(step, (int, float)) and not math.isnan(step) else "")
                       + (f"\n{color_title} {_fmt(c.get(color_field), '.3f')}" if has else ""))
                href = f"{link_page}?" + urlencode({"model": m, "datasets": d, "tab": "curves"})
                cls = ' class="picked"' if picked == (m, d) else ""
                out.append(f'<td{cls} style="background:{bg};color:{fg}"><a href="{esc(href)}" target="_self" '
                           f'title="{esc(tip)}">{esc(text)}</a></td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def legend_html(title: str, *, diverging: bool = False, low: str = "low", high: str = "high") -> str:
    """A one-line colour key for heatmap_html."""
    stops = _DIVERGING if diverging else _VIRIDIS
    grad = ", ".join(stops)
    return (f'<div class="e360-legend"><span>{html.escape(title)}:</span><span>{html.escape(low)}</span>'
            f'<span class="bar" style="background:linear-gradient(to right, {grad})"></span>'
            f'<span>{html.escape(high)}</span></div>')
