"""Builders for the read-side tests: a tiny, fully known database posted through the real ingest API
(the test_read_* and test_view_* modules and tests/tour.py use these)."""

from __future__ import annotations

ACC = "accuracy (avg over 1)"


def post(client, headers, **kw) -> dict:
    body = {"model_id": kw.pop("model_id"), "display_name": kw.pop("display_name", None),
            "owner": kw.pop("owner", "team-a"), "checkpoint_id": kw.pop("checkpoint_id", None),
            "dataset_name": kw.pop("dataset_name"), "metrics": kw.pop("metrics")}
    body["display_name"] = body["display_name"] or body["model_id"].upper()
    step = kw.get("training_step")
    if body["checkpoint_id"] is None:
        body["checkpoint_id"] = (f"{body['model_id']}__baseline" if kw.get("model_type") == "baseline"
                                 else f"{body['model_id']}__step-{step}")
    body.update(kw)
    r = client.post("/api/ingest/eval-result", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def post_examples(client, headers, run_id: str, outcomes: list, **labels) -> None:
    ex = []
    for i, o in enumerate(outcomes):
        e = {"example_idx": i, "input_preview": f"question {i}", "output_preview": f"answer {i}",
             "ground_truth": str(i)}
        if isinstance(o, bool):
            e["correct"] = o
        else:
            e["score"] = o
        for k, fn in labels.items():
            e[k] = fn(i)
        ex.append(e)
    r = client.post("/api/ingest/examples", json={"eval_run_id": run_id, "examples": ex}, headers=headers)
    assert r.status_code == 200, r.text


def score(v: float, extra: dict | None = None) -> dict:
    return {ACC: v, "bootstrap_std (avg over 1)": 0.01, **(extra or {})}


def build_small(client, h) -> dict:
    """Two training models, two baselines, three datasets; statuses of every kind; examples on gsm8k.

    alpha: steps 1000, 2000, 3000. gsm8k .50 .60 (3000 pending); mmlu .40 .45 .44; ifeval .70 at 1000 only.
    beta:  steps 1000, 2000. gsm8k .55 .52; mmlu .50 then failed at 2000.
    gpt-4o (baseline): gsm8k .58, mmlu .70.  llama (baseline): gsm8k .30.
    """
    ids = {}
    a = {"model_id": "alpha", "owner": "team-a"}
    ids["a1_gsm"] = post(client, h, **a, training_step=1000, dataset_name="gsm8k", metrics=score(0.5),
                         sample_count=100, category="math")["eval_run_id"]
    ids["a2_gsm"] = post(client, h, **a, training_step=2000, dataset_name="gsm8k", metrics=score(0.6),
                         sample_count=100)["eval_run_id"]
    ids["a3_gsm"] = post(client, h, **a, training_step=3000, dataset_name="gsm8k", metrics=score(0.0),
                         sample_count=100, status="pending")["eval_run_id"]
    ids["a1_mmlu"] = post(client, h, **a, training_step=1000, dataset_name="mmlu", metrics=score(0.40),
                          sample_count=1000, category="knowledge")["eval_run_id"]
    ids["a2_mmlu"] = post(client, h, **a, training_step=2000, dataset_name="mmlu", metrics=score(0.45),
                          sample_count=1000)["eval_run_id"]
    ids["a3_mmlu"] = post(client, h, **a, training_step=3000, dataset_name="mmlu", metrics=score(0.44),
                          sample_count=1000)["eval_run_id"]
    ids["a1_if"] = post(client, h, **a, training_step=1000, dataset_name="ifeval",
                        metrics={"strict_prompt_accuracy": 0.7}, sample_count=500)["eval_run_id"]
    b = {"model_id": "beta", "owner": "team-b"}
    ids["b1_gsm"] = post(client, h, **b, training_step=1000, dataset_name="gsm8k", metrics=score(0.55),
                         sample_count=100)["eval_run_id"]
    ids["b2_gsm"] = post(client, h, **b, training_step=2000, dataset_name="gsm8k", metrics=score(0.52),
                         sample_count=100)["eval_run_id"]
    ids["b1_mmlu"] = post(client, h, **b, training_step=1000, dataset_name="mmlu", metrics=score(0.50),
                          sample_count=1000)["eval_run_id"]
    ids["b2_mmlu"] = post(client, h, **b, training_step=2000, dataset_name="mmlu", metrics=score(0.0),
                          sample_count=1000, status="failed", error_message="OOM")["eval_run_id"]
    g = {"model_id": "gpt-4o", "owner": "external", "model_type": "baseline"}
    ids["g_gsm"] = post(client, h, **g, dataset_name="gsm8k", metrics=score(0.58), sample_count=100)["eval_run_id"]
    ids["g_mmlu"] = post(client, h, **g, dataset_name="mmlu", metrics=score(0.70), sample_count=1000)["eval_run_id"]
    ll = {"model_id": "llama", "owner": "external", "model_type": "baseline"}
    ids["l_gsm"] = post(client, h, **ll, dataset_name="gsm8k", metrics=score(0.30), sample_count=100)["eval_run_id"]
    return ids
