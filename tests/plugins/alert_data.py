"""Data builders of the operations tests (alerts, promotion, webhooks, admin): results posted through the
API, paired example outcomes, the open alerts."""

from __future__ import annotations

import numpy as np

METRIC = "accuracy (avg over 1)"


def result(model: str, step: int, dataset: str, value: float, n: int | None = 1000, **over) -> dict:
    p = {"model_id": model, "display_name": model.upper(), "owner": "ops", "checkpoint_id": f"{model}__step-{step}",
         "training_step": step, "dataset_name": dataset, "metrics": {METRIC: value}, "sample_count": n,
         "eval_run_id": f"run-{model}-{step}-{dataset}"}
    p.update(over)
    return p


def post(client, headers, model: str, step: int, dataset: str, value: float, n: int | None = 1000, **over) -> dict:
    r = client.post("/api/ingest/eval-result", json=result(model, step, dataset, value, n, **over), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def post_examples(client, headers, run_id: str, correct: list[bool] | np.ndarray, batch: int = 1000) -> None:
    rows = [{"example_idx": i, "correct": bool(c)} for i, c in enumerate(correct)]
    for k in range(0, len(rows), batch):
        r = client.post("/api/ingest/examples", json={"eval_run_id": run_id, "examples": rows[k:k + batch]},
                        headers=headers)
        assert r.status_code == 200, r.text


def open_alerts(client, **params) -> list[dict]:
    r = client.get("/api/alerts", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()["alerts"]


def alert_keys(alerts: list[dict]) -> set[tuple]:
    return {(a["alert_type"], a["checkpoint_id"], a["dataset_name"], a["severity"]) for a in alerts}


def paired_outcomes(rng: np.random.Generator, n: int, acc: float, drop: float = 0.0,
                    agreement: float = 0.85, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes of two neighbouring checkpoints on the same n examples: the second is `drop` lower,
    and the two agree on `agreement` of the examples (in expectation). `x`: the first one's outcomes."""
    disc = 1.0 - agreement
    right_to_wrong = (disc + drop) / 2  # P(x=1, y=0)
    wrong_to_right = (disc - drop) / 2  # P(x=0, y=1)
    if x is None:
        x = rng.random(n) < acc
    else:
        x = np.asarray(x).astype(bool)
        acc = float(x.mean())
    u = rng.random(len(x))
    y = np.where(x, u >= right_to_wrong / acc, u < wrong_to_right / (1 - acc))
    return x.astype(int), y.astype(int)
