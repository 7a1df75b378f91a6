"""Chart builders: each produces a Vega-Lite spec that passes Altair's schema validation.

(The dashboard skips validation at run time for speed; this test is where it happens.)
"""

from __future__ import annotations

import pandas as pd

from dashboard import charts


def _pts() -> pd.DataFrame:
    return pd.DataFrame({"training_step": [100, 200, 300], "metric_value": [0.5, 0.6, 0.55],
                         "ci_lower": [0.45, 0.55, 0.5], "ci_upper": [0.55, 0.65, 0.6], "n": [200, 200, 200]})


def test_curve_band_baselines_and_alerts():
    base = pd.DataFrame({"name": ["gpt", "llama"], "value": [0.7, 0.6], "label": ["best baseline: gpt", ""]})
    alerts = pd.DataFrame({"training_step": [200], "metric_value": [0.6], "severity": ["critical"],
                           "alert_type": ["regression"], "message": ["drop"]})
    spec = charts.training_curve(_pts(), base, alerts, title="ds").to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert "area" in marks and "rule" in marks and "point" in marks
    cur = _pts().assign(model="a")
    cur = pd.concat([cur, pd.DataFrame([{"model": "b", "training_step": None, "metric_value": 0.7,
                                         "ci_lower": 0.6, "ci_upper": 0.8, "n": 10}])])
    assert charts.curves(cur).to_dict()


def test_interval_and_profile_charts():
    prof = pd.DataFrame({"model": ["a", "a", "b", "b"], "category": ["math", "code", "math", "code"],
                         "mean": [0.5, 0.6, 0.7, 0.4], "ci_lower": [0.4, 0.5, 0.6, 0.3],
                         "ci_upper": [0.6, 0.7, 0.8, 0.5]})
    assert charts.radar(prof).to_dict()
    d = pd.DataFrame({"category": ["math"], "delta": [-0.1], "ci_lower": [-0.2], "ci_upper": [0.0]})
    assert charts.delta_bars(d).to_dict()
    lb = pd.DataFrame({"label": ["1. a", "2. b"], "score": [0.7, 0.6], "ci_lower": [0.6, 0.5],
                       "ci_upper": [0.8, 0.7], "tie group": ["group 1", "group 2"]})
    assert charts.interval_dots(lb, y="label", x="score", color="tie group").to_dict()
    sl = pd.DataFrame({"slice": ["easy"], "accuracy": [0.5], "ci_lower": [0.4], "ci_upper": [0.6], "total": [10],
                       "label": ["0.50 (n=10)"]})
    assert charts.slices(sl).to_dict()
    st_ = pd.DataFrame({"training_step": [1, 2], "slice": ["a", "a"], "accuracy": [0.5, 0.6], "n_examples": [10, 10]})
    assert charts.slices_over_steps(st_).to_dict()
    df = pd.DataFrame({"dataset_name": ["x"], "delta": [0.1], "delta_ci_lower": [0.0], "delta_ci_upper": [0.2],
                       "q_value": [0.04], "test": ["mcnemar_exact"], "significance": ["likely_real"]})
    assert charts.diff(df).to_dict()


def test_training_heatmap_spec():
    df = pd.DataFrame({"training_step": [100, 200], "dataset_name": ["x", "x"], "category": ["math", "math"],
                       "metric_value": [0.5, 0.6], "norm": [0.0, 1.0], "ci_lower": [0.4, 0.5], "ci_upper": [0.6, 0.7],
                       "n": [10, 10], "alert": ["", "▼"], "alert_text": ["", "regression"]})
    spec = charts.training_heatmap(df, datasets=["x"], categories={"x": "math"}).to_dict()
    assert spec["params"][0]["name"] == "cell"
