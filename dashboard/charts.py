"""Altair builders with typed encodings (:Q quantitative, :N nominal, :O ordinal, :T time).

Each builder takes a tidy DataFrame the page made from a query's reply and returns a chart;
no builder computes statistics (intervals come with the data).
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

STATUS_MARKS = {"missing": "∅", "pending": "…", "running": "▶", "failed": "✕", "invalidated": "⊘",
                "stale": "↻"}
# Colour-blind safe (Okabe-Ito): never a red/green pair; severities also differ by shape where drawn.
SEVERITY_COLORS = {"critical": "#d55e00", "warning": "#e69f00", "info": "#0072b2"}
SEVERITY_SHAPES = {"critical": "triangle-down", "warning": "diamond", "info": "circle"}
# Two greys far apart in lightness, so "noise" and "insufficient data" stay distinct on a light and a
# dark background; the diff chart also gives each significance its own shape.
SIGNIFICANCE_COLORS = {"likely_real": "#0072b2", "uncertain": "#e69f00", "likely_noise": "#6b6b6b",
                       "insufficient_data": "#c4c4c4"}
SIGNIFICANCE_SHAPES = {"likely_real": "circle", "uncertain": "diamond", "likely_noise": "square",
                       "insufficient_data": "cross"}


def _sig_scale() -> alt.Scale:
    return alt.Scale(domain=list(SIGNIFICANCE_COLORS), range=list(SIGNIFICANCE_COLORS.values()))


def training_curve(points: pd.DataFrame, baselines: pd.DataFrame | None = None,
                   alerts: pd.DataFrame | None = None, *, title: str = "", height: int = 240) -> alt.LayerChart:
    """Score vs step with its 95% interval band; baselines as dashed reference lines; alerts marked.

    points: training_step, metric_value, ci_lower, ci_upper, n. baselines: name, value, label (text drawn
    by the line; give it to one or two baselines only, the rest show their name on hover).
    alerts: training_step, metric_value, severity, alert_type, message.
    """
    x = alt.X("training_step:Q", title="training step")
    y_scale = alt.Scale(zero=False)
    base = alt.Chart(points).encode(x=x)
    band = base.mark_area(opacity=0.25, color="#1f77b4").encode(
        y=alt.Y("ci_lower:Q", title="score", scale=y_scale), y2=alt.Y2("ci_upper:Q"))
    tip = [alt.Tooltip("training_step:Q", title="step"), alt.Tooltip("metric_value:Q", title="score", format=".3f"),
           alt.Tooltip("ci_lower:Q", title="95% low", format=".3f"),
           alt.Tooltip("ci_upper:Q", title="95% high", format=".3f"), alt.Tooltip("n:Q", title="n")]
    line = base.mark_line(point=True, color="#1f77b4").encode(y=alt.Y("metric_value:Q", scale=y_scale),
                                                             tooltip=tip)
    layers: list[alt.Chart] = [band, line]
    if baselines is not None and not baselines.empty:
        rule = alt.Chart(baselines).mark_rule(strokeDash=[4, 3], color="#7f7f7f").encode(
            y=alt.Y("value:Q"), tooltip=[alt.Tooltip("name:N", title="baseline"),
                                         alt.Tooltip("value:Q", format=".3f")])
        text = alt.Chart(baselines).mark_text(align="left", dx=3, dy=-5, fontSize=10, color="#555555").encode(
            y=alt.Y("value:Q"), x=alt.value(2), text=alt.Text("label:N"))
        layers += [rule, text]
    if alerts is not None and not alerts.empty:
        layers.append(alt.Chart(alerts).mark_point(shape="triangle-down", size=140, filled=True).encode(
            x=alt.X("training_step:Q"), y=alt.Y("metric_value:Q"),
            color=alt.Color("severity:N", title="alert", scale=alt.Scale(
                domain=list(SEVERITY_COLORS), range=list(SEVERITY_COLORS.values()))),
            tooltip=[alt.Tooltip("alert_type:N"), alt.Tooltip("severity:N"), alt.Tooltip("message:N")]))
    return alt.layer(*layers).properties(title=title, width="container", height=height)


def curves(points: pd.DataFrame, *, title: str = "", height: int = 320) -> alt.LayerChart:
    """Several models' curves on one dataset (model, training_step, metric_value, ci_lower, ci_upper);
    baselines (no step) as horizontal rules."""
    train = points[points["training_step"].notna()]
    base_pts = points[points["training_step"].isna()]
    color = alt.Color("model:N", title="model", scale=alt.Scale(scheme="tableau10"))
    tip = [alt.Tooltip("model:N"), alt.Tooltip("training_step:Q", title="step"),
           alt.Tooltip("metric_value:Q", title="score", format=".3f"),
           alt.Tooltip("ci_lower:Q", title="95% low", format=".3f"),
           alt.Tooltip("ci_upper:Q", title="95% high", format=".3f"), alt.Tooltip("n:Q")]
    enc = alt.Chart(train).encode(x=alt.X("training_step:Q", title="training step"), color=color)
    layers: list[alt.Chart] = [
        enc.mark_area(opacity=0.15).encode(y=alt.Y("ci_lower:Q", title="score", scale=alt.Scale(zero=False)),
                                           y2="ci_upper:Q"),
        enc.mark_line(point=True).encode(y=alt.Y("metric_value:Q"), tooltip=tip),
    ]
    if not base_pts.empty:
        layers.append(alt.Chart(base_pts).mark_rule(strokeDash=[4, 3]).encode(
            y=alt.Y("metric_value:Q"), color=color, tooltip=tip))
    return alt.layer(*layers).properties(title=title, width="container", height=height)


def interval_dots(df: pd.DataFrame, *, y: str, x: str = "value", lo: str = "ci_lower", hi: str = "ci_upper",
                  color: str | None = None, color_title: str | None = None, sort: list[str] | None = None,
                  x_title: str = "score", zero_rule: bool = False, height: int | None = None) -> alt.LayerChart:
    """A dot per row with its 95% interval as a horizontal bar (leaderboards, deltas)."""
    enc_y = alt.Y(f"{y}:N", title=None, sort=sort, axis=alt.Axis(labelLimit=240))
    col = alt.Color(f"{color}:N", title=color_title or color) if color else alt.value("#1f77b4")
    tip = [alt.Tooltip(f"{y}:N"), alt.Tooltip(f"{x}:Q", format=".3f"), alt.Tooltip(f"{lo}:Q", format=".3f"),
           alt.Tooltip(f"{hi}:Q", format=".3f")]
    base = alt.Chart(df).encode(y=enc_y)
    layers: list[alt.Chart] = [
        base.mark_rule(strokeWidth=2).encode(x=alt.X(f"{lo}:Q", title=x_title, scale=alt.Scale(zero=False)),
                                             x2=alt.X2(f"{hi}:Q"), color=col),
        base.mark_point(filled=True, size=70).encode(x=alt.X(f"{x}:Q"), color=col, tooltip=tip),
    ]
    if zero_rule:
        layers.insert(0, alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#999999").encode(
            x=alt.X("zero:Q")))
    return alt.layer(*layers).properties(width="container", height=height or max(120, 24 * max(1, df[y].nunique())))


def delta_bars(df: pd.DataFrame, *, category: str = "category", delta: str = "delta", lo: str = "ci_lower",
               hi: str = "ci_upper", title: str = "") -> alt.LayerChart:
    """Delta to a baseline per category: a bar (blue above, orange below zero) with its 95% interval."""
    base = alt.Chart(df).encode(y=alt.Y(f"{category}:N", title=None, sort=None))
    bars = base.mark_bar().encode(
        x=alt.X(f"{delta}:Q", title="difference (model − baseline)"),
        color=alt.condition(f"datum['{delta}'] >= 0", alt.value("#0072b2"), alt.value("#e69f00")),
        tooltip=[alt.Tooltip(f"{category}:N"), alt.Tooltip(f"{delta}:Q", format="+.3f"),
                 alt.Tooltip(f"{lo}:Q", title="95% low", format="+.3f"),
                 alt.Tooltip(f"{hi}:Q", title="95% high", format="+.3f")])
    err = base.mark_rule(color="black").encode(x=alt.X(f"{lo}:Q"), x2=alt.X2(f"{hi}:Q"))
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#555555").encode(x=alt.X("zero:Q"))
    return alt.layer(bars, err, zero).properties(title=title, width="container",
                                                 height=max(140, 28 * max(1, df[category].nunique())))


def radar(df: pd.DataFrame, *, category: str = "category", value: str = "mean", group: str = "model",
          lo: str = "ci_lower", hi: str = "ci_upper", title: str = "") -> alt.LayerChart:
    """A radar (capability profile) drawn in Cartesian coordinates: one closed polygon per group,
    with each category's 95% interval as a radial segment. Values are scores in [0, 1]."""
    cats = list(dict.fromkeys(df[category].tolist()))
    k = max(len(cats), 1)
    ang = {c: math.pi / 2 - 2 * math.pi * i / k for i, c in enumerate(cats)}
    d = df.copy()
    d["angle"] = d[category].map(ang)
    for col, src in (("x", value), ("y", value), ("x_lo", lo), ("y_lo", lo), ("x_hi", hi), ("y_hi", hi)):
        trig = pd.Series([math.cos(a) for a in d["angle"]], index=d.index) if col.startswith("x") else \
            pd.Series([math.sin(a) for a in d["angle"]], index=d.index)
        d[col] = pd.to_numeric(d[src], errors="coerce").clip(0, 1) * trig
    d["order"] = d[category].map({c: i for i, c in enumerate(cats)})
    closing = d[d["order"] == 0].copy()
    closing["order"] = k
    poly = pd.concat([d, closing], ignore_index=True)
    grid_rows = []
    for r in (0.25, 0.5, 0.75, 1.0):
        for i, c in enumerate(cats + cats[:1]):
            a = ang[c]
            grid_rows.append({"ring": r, "order": i, "x": r * math.cos(a), "y": r * math.sin(a)})
    grid = pd.DataFrame(grid_rows)
    axes = pd.DataFrame([{"category": c, "x": 1.12 * math.cos(a), "y": 1.12 * math.sin(a)} for c, a in ang.items()])
    sc = alt.Scale(domain=[-1.3, 1.3])
    xe = alt.X("x:Q", scale=sc, axis=None)
    ye = alt.Y("y:Q", scale=sc, axis=None)
    color = alt.Color(f"{group}:N", title=None, scale=alt.Scale(scheme="tableau10"))
    rings = alt.Chart(grid).mark_line(color="#dddddd").encode(x=xe, y=ye, detail="ring:N", order="order:O")
    labels = alt.Chart(axes).mark_text(fontSize=10, color="#444444").encode(x=xe, y=ye, text="category:N")
    shape = alt.Chart(poly).mark_line(point=True, strokeWidth=2).encode(
        x=xe, y=ye, color=color, order="order:O",
        tooltip=[alt.Tooltip(f"{group}:N"), alt.Tooltip(f"{category}:N"),
                 alt.Tooltip(f"{value}:Q", format=".3f"), alt.Tooltip(f"{lo}:Q", title="95% low", format=".3f"),
                 alt.Tooltip(f"{hi}:Q", title="95% high", format=".3f")])
    whiskers = alt.Chart(d).mark_rule(strokeWidth=3, opacity=0.5).encode(
        x=alt.X("x_lo:Q", scale=sc, axis=None), y=alt.Y("y_lo:Q", scale=sc, axis=None), x2="x_hi:Q", y2="y_hi:Q",
        color=color)
    return alt.layer(rings, labels, whiskers, shape).properties(title=title, width=380, height=380)


def slices(df: pd.DataFrame, *, slice_col: str = "slice", title: str = "") -> alt.LayerChart:
    """Accuracy per slice with its 95% interval and n (accuracy, ci_lower, ci_upper, total)."""
    base = alt.Chart(df).encode(y=alt.Y(f"{slice_col}:N", title=None, sort=None))
    tip = [alt.Tooltip(f"{slice_col}:N"), alt.Tooltip("accuracy:Q", format=".3f"),
           alt.Tooltip("ci_lower:Q", title="95% low", format=".3f"),
           alt.Tooltip("ci_upper:Q", title="95% high", format=".3f"), alt.Tooltip("total:Q", title="n")]
    bars = base.mark_bar(color="#9ecae1").encode(x=alt.X("accuracy:Q", title="accuracy",
                                                          scale=alt.Scale(domain=[0, 1])), tooltip=tip)
    err = base.mark_rule(color="black").encode(x=alt.X("ci_lower:Q"), x2=alt.X2("ci_upper:Q"))
    text = base.mark_text(align="left", dx=4, fontSize=10).encode(x=alt.X("ci_upper:Q"),
                                                                  text=alt.Text("label:N"))
    return alt.layer(bars, err, text).properties(title=title, width="container", height=max(100, 26 * max(1, len(df))))


def slices_over_steps(df: pd.DataFrame, *, title: str = "") -> alt.Chart:
    """Accuracy per slice across checkpoints (training_step, slice, accuracy, n_examples)."""
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("training_step:Q", title="training step"),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(zero=False)),
        color=alt.Color("slice:N", title=None, scale=alt.Scale(scheme="tableau10")),
        tooltip=[alt.Tooltip("slice:N"), alt.Tooltip("training_step:Q", title="step"),
                 alt.Tooltip("accuracy:Q", format=".3f"), alt.Tooltip("n_examples:Q", title="n")],
    ).properties(title=title, width="container", height=260)


def diff(df: pd.DataFrame, *, title: str = "") -> alt.LayerChart:
    """Per-dataset delta (b − a) with its 95% interval, coloured by significance."""
    base = alt.Chart(df).encode(y=alt.Y("dataset_name:N", title=None, sort=None))
    col = alt.Color("significance:N", scale=_sig_scale(), title="significance")
    tip = [alt.Tooltip("dataset_name:N"), alt.Tooltip("delta:Q", format="+.3f"),
           alt.Tooltip("delta_ci_lower:Q", title="95% low", format="+.3f"),
           alt.Tooltip("delta_ci_upper:Q", title="95% high", format="+.3f"),
           alt.Tooltip("q_value:Q", title="q (BH)", format=".3g"), alt.Tooltip("test:N")]
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#555555").encode(x=alt.X("zero:Q"))
    err = base.mark_rule(strokeWidth=2).encode(x=alt.X("delta_ci_lower:Q", title="delta (b − a)"),
                                              x2=alt.X2("delta_ci_upper:Q"), color=col)
    shape = alt.Shape("significance:N", title="significance", scale=alt.Scale(
        domain=list(SIGNIFICANCE_SHAPES), range=list(SIGNIFICANCE_SHAPES.values())))
    dot = base.mark_point(filled=True, size=70).encode(x=alt.X("delta:Q"), color=col, shape=shape, tooltip=tip)
    return alt.layer(zero, err, dot).properties(title=title, width="container", height=max(120, 24 * max(1, len(df))))


def _field(name: str) -> str:
    """A data column name as a Vega-Lite field reference (dots and brackets escaped)."""
    return name.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace("]", "\\]")


def multi_curves(points: pd.DataFrame, baselines: pd.DataFrame | None = None, alerts: pd.DataFrame | None = None,
                 *, series_title: str = "series", title: str = "", height: int = 320,
                 smoothed: bool = False) -> alt.LayerChart:
    """Several series (datasets of a model, or models on a dataset) on one chart, like a training dashboard.

    points: series, training_step, metric_value, ci_lower, ci_upper, n (and `smooth` when smoothed).
    A vertical rule follows the pointer to the nearest step and its tooltip lists every series there;
    mouse wheel / drag zoom and pan (double-click resets); clicking a legend entry hides the others
    (shift-click for several). With smoothing the raw points and their 95% band stay drawn, fainter.
    baselines: series, name, value (dashed rules). alerts: training_step, metric_value, severity, message.
    """
    names = list(dict.fromkeys(points["series"].tolist()))
    color = alt.Color("series:N", title=series_title, scale=alt.Scale(domain=names, scheme="tableau10"),
                      legend=alt.Legend(symbolOpacity=1, symbolType="stroke", symbolStrokeWidth=3))
    legend = alt.selection_point(fields=["series"], bind="legend", name="shown")
    hover = alt.selection_point(fields=["training_step"], nearest=True, on="pointerover", clear="pointerout",
                                empty=False, name="step")
    zoom = alt.selection_interval(bind="scales", name="zoom")
    x = alt.X("training_step:Q", title="training step")
    y_scale = alt.Scale(zero=False)
    base = alt.Chart(points).encode(x=x, color=color)
    shown = alt.condition(legend, alt.value(1.0), alt.value(0.06))
    band = base.mark_area(opacity=0.14).encode(
        y=alt.Y("ci_lower:Q", title="score (95% band)", scale=y_scale), y2="ci_upper:Q",
        opacity=alt.condition(legend, alt.value(0.14), alt.value(0.0))).add_params(zoom, legend)
    tip = [alt.Tooltip("series:N", title=series_title), alt.Tooltip("training_step:Q", title="step"),
           alt.Tooltip("metric_value:Q", title="score", format=".3f"),
           alt.Tooltip("ci_lower:Q", title="95% low", format=".3f"),
           alt.Tooltip("ci_upper:Q", title="95% high", format=".3f"), alt.Tooltip("n:Q", title="n")]
    layers: list[alt.Chart] = [band]
    if smoothed:
        layers.append(base.mark_line(strokeWidth=1, opacity=0.35).encode(
            y=alt.Y("metric_value:Q"), opacity=alt.condition(legend, alt.value(0.35), alt.value(0.03))))
        layers.append(base.mark_circle(size=14).encode(
            y=alt.Y("metric_value:Q"), opacity=alt.condition(legend, alt.value(0.5), alt.value(0.03)), tooltip=tip))
        layers.append(base.mark_line(strokeWidth=2.2).encode(y=alt.Y("smooth:Q"), opacity=shown))
    else:
        layers.append(base.mark_line(point=alt.OverlayMarkDef(size=18)).encode(
            y=alt.Y("metric_value:Q"), opacity=shown, tooltip=tip))
    # The hover: points at the nearest step, and a rule whose tooltip has every series at that step.
    wide = points.pivot_table(index="training_step", columns="series", values="metric_value",
                              aggfunc="first").reset_index()
    wide.columns = [str(c) for c in wide.columns]
    rule_tip = [alt.Tooltip("training_step:Q", title="step")] + [
        alt.Tooltip(f"{_field(n)}:Q", title=n, format=".3f") for n in names if n in wide.columns]
    layers.append(alt.Chart(wide).mark_rule(color="#888888").encode(
        x=x, opacity=alt.condition(hover, alt.value(0.7), alt.value(0.0)), tooltip=rule_tip).add_params(hover))
    layers.append(base.mark_point(size=60, filled=True).encode(
        y=alt.Y("smooth:Q" if smoothed else "metric_value:Q"),
        opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0))).transform_filter(legend))
    if baselines is not None and not baselines.empty:
        layers.append(alt.Chart(baselines).mark_rule(strokeDash=[4, 3]).encode(
            y=alt.Y("value:Q"), color=alt.Color("series:N", scale=alt.Scale(domain=names, scheme="tableau10")),
            opacity=alt.condition(legend, alt.value(0.8), alt.value(0.0)),
            tooltip=[alt.Tooltip("series:N", title=series_title), alt.Tooltip("name:N", title="baseline"),
                     alt.Tooltip("value:Q", format=".3f")]))
    if alerts is not None and not alerts.empty:
        layers.append(alt.Chart(alerts).mark_point(size=150, filled=True, stroke="black", strokeWidth=0.6).encode(
            x=alt.X("training_step:Q"), y=alt.Y("metric_value:Q"),
            shape=alt.Shape("severity:N", title="alert", scale=alt.Scale(
                domain=list(SEVERITY_SHAPES), range=list(SEVERITY_SHAPES.values()))),
            fill=alt.Fill("severity:N", title="alert", scale=alt.Scale(
                domain=list(SEVERITY_COLORS), range=list(SEVERITY_COLORS.values()))),
            tooltip=[alt.Tooltip("series:N", title=series_title), alt.Tooltip("training_step:Q", title="step"),
                     alt.Tooltip("alert_type:N"), alt.Tooltip("severity:N"), alt.Tooltip("message:N")]))
    return alt.layer(*layers).resolve_scale(color="shared").properties(title=title, width="container",
                                                                       height=height)


def training_heatmap(df: pd.DataFrame, *, datasets: list[str], categories: dict[str, str],
                     height_per_row: int = 6) -> alt.LayerChart:
    """One model over training: checkpoints (rows, newest on top) × datasets (columns grouped by
    category), colour = score normalised per dataset over the model's checkpoints; alerts marked.

    df: training_step, dataset_name, category, metric_value, norm, ci_lower, ci_upper, n, alert (symbol or "").
    A click selects a (step, dataset) cell (selection `cell`)."""
    sel = alt.selection_point(name="cell", fields=["training_step", "dataset_name"], on="click", clear="dblclick")
    n_steps = max(1, df["training_step"].nunique())
    row_h = max(3, min(18, height_per_row if n_steps > 60 else 18))
    x = alt.X("dataset_name:N", title=None, sort=datasets,
              axis=alt.Axis(labelAngle=-60, labelLimit=140, labelOverlap=False, orient="top"))
    y = alt.Y("training_step:O", title="training step", sort="descending",
              axis=alt.Axis(labelOverlap="greedy"))
    tip = [alt.Tooltip("dataset_name:N", title="dataset"), alt.Tooltip("category:N"),
           alt.Tooltip("training_step:Q", title="step"), alt.Tooltip("metric_value:Q", title="score", format=".3f"),
           alt.Tooltip("ci_lower:Q", title="95% low", format=".3f"),
           alt.Tooltip("ci_upper:Q", title="95% high", format=".3f"), alt.Tooltip("n:Q"),
           alt.Tooltip("alert_text:N", title="alert")]
    base = alt.Chart(df).encode(x=x, y=y)
    rect = base.mark_rect().encode(
        color=alt.Color("norm:Q", title="score, normalised per dataset", scale=alt.Scale(scheme="viridis")),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.5)), tooltip=tip).add_params(sel)
    marks = base.mark_text(fontSize=9, fontWeight="bold", color="#ff00aa").encode(
        text=alt.Text("alert:N"), tooltip=tip)
    return alt.layer(rect, marks).properties(width=max(400, 16 * len(datasets)), height=row_h * n_steps)
