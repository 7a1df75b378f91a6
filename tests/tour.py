"""A tour of every API operation on a small, fully populated database (no tests here).

`build_tour(client, ingest, admin)` posts data through the API (tests/test_read_fixtures.build_small,
examples on both sides of a diff, a regression alert, a suite, a promotion rule, a webhook) and
returns the calls to make: one or more per operation of the OpenAPI document, each meant to
answer 200 with a populated reply. tests/test_reply_schemas.py checks every reply against the
operation's declared 200 schema and that no operation is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.plugins.read_data import build_small, post, post_examples, score


@dataclass
class Call:
    method: str
    path: str            # the concrete path
    template: str        # the OpenAPI path template it exercises
    params: dict = field(default_factory=dict)
    body: Any = None
    admin: bool = False
    ingest: bool = False


def build_tour(client, ingest: dict, admin: dict) -> list[Call]:
    ids = build_small(client, ingest)
    # Per-example rows on two gsm8k runs of alpha (a paired diff with flips) and the baseline.
    post_examples(client, ingest, ids["a1_gsm"], [i % 2 == 0 for i in range(100)],
                  topic=lambda i: "algebra" if i % 3 else "geometry", difficulty=lambda i: "easy")
    post_examples(client, ingest, ids["a2_gsm"], [i % 3 != 0 for i in range(100)],
                  topic=lambda i: "algebra" if i % 3 else "geometry", difficulty=lambda i: "hard")
    post_examples(client, ingest, ids["g_gsm"], [i % 5 != 0 for i in range(100)])
    # A clear regression and an improvement on mmlu for a third model (alerts with deltas).
    for step, v in ((1000, 0.7), (2000, 0.7), (3000, 0.5), (4000, 0.72)):
        post(client, ingest, model_id="gamma", training_step=step, dataset_name="mmlu", metrics=score(v),
             sample_count=2000)
    r = client.post("/api/admin/suites", json={"suite_id": "core", "display_name": "Core",
                                               "dataset_names": ["gsm8k", "mmlu"]}, headers=admin)
    assert r.status_code == 200, r.text
    r = client.post("/api/admin/promotion-rules", json={"rule_name": "floor", "min_scores": {"gsm8k": 0.3}},
                    headers=admin)
    assert r.status_code == 200, r.text
    r = client.post("/api/admin/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["regression"]},
                    headers=admin)
    assert r.status_code == 200, r.text
    hook = r.json()["id"]
    alerts = client.get("/api/alerts", params={"status": "all"}).json()["alerts"]
    assert alerts, "the tour needs an alert"
    run = ids["a2_gsm"]
    result = {"model_id": "delta", "display_name": "Delta", "owner": "team-d", "checkpoint_id": "delta__step-10",
              "training_step": 10, "dataset_name": "gsm8k", "metrics": score(0.4), "sample_count": 100}
    return [
        Call("GET", "/api/health", "/api/health"),
        Call("POST", "/api/ingest/eval-result", "/api/ingest/eval-result", body=result, ingest=True),
        Call("POST", "/api/ingest/eval-results", "/api/ingest/eval-results",
             body={"results": [{**result, "dataset_name": "mmlu"}]}, ingest=True),
        Call("POST", "/api/ingest/examples", "/api/ingest/examples",
             body={"eval_run_id": ids["b1_gsm"], "examples": [{"example_idx": 0, "correct": True}]}, ingest=True),
        Call("GET", "/api/models", "/api/models"),
        Call("GET", "/api/models/alpha", "/api/models/{model_id}"),
        Call("GET", "/api/models/gpt-4o", "/api/models/{model_id}"),
        Call("GET", "/api/models/alpha/scores", "/api/models/{model_id}/scores"),
        Call("GET", "/api/models/alpha/scores", "/api/models/{model_id}/scores", {"metrics": "all"}),
        Call("GET", "/api/models/alpha/scores", "/api/models/{model_id}/scores", {"shape": "columns"}),
        Call("GET", "/api/models/alpha/diagnosis", "/api/models/{model_id}/diagnosis"),
        Call("GET", "/api/models/gamma/diagnosis", "/api/models/{model_id}/diagnosis"),
        Call("GET", "/api/models/alpha/promotion-status", "/api/models/{model_id}/promotion-status"),
        Call("GET", "/api/models/gpt-4o/promotion-status", "/api/models/{model_id}/promotion-status"),
        Call("GET", "/api/checkpoints/alpha__step-2000", "/api/checkpoints/{checkpoint_id}"),
        Call("GET", "/api/diff", "/api/diff", {"checkpoint_a": "alpha__step-1000", "checkpoint_b": "alpha__step-2000"}),
        Call("GET", "/api/diff", "/api/diff", {"checkpoint_a": "alpha__step-1000", "checkpoint_b": "beta__step-2000"}),
        Call("GET", "/api/datasets", "/api/datasets"),
        Call("GET", "/api/datasets/gsm8k/leaderboard", "/api/datasets/{dataset_name}/leaderboard"),
        Call("GET", "/api/datasets/gsm8k/leaderboard", "/api/datasets/{dataset_name}/leaderboard",
             {"score": "latest", "suite_id": "core"}),
        Call("GET", "/api/filters", "/api/filters"),
        Call("GET", "/api/heatmap", "/api/heatmap"),
        Call("GET", "/api/heatmap", "/api/heatmap", {"score": "step", "step": 1000}),
        Call("GET", "/api/suites/core/heatmap", "/api/suites/{suite_id}/heatmap", {"score": "latest"}),
        Call("GET", "/api/compare", "/api/compare", {"models": "alpha,beta,gpt-4o", "dataset": "gsm8k"}),
        Call("GET", "/api/compare", "/api/compare", {"models": "alpha,beta,gpt-4o"}),
        Call("GET", f"/api/eval-runs/{run}", "/api/eval-runs/{eval_run_id}"),
        Call("GET", f"/api/eval-runs/{ids['b2_mmlu']}", "/api/eval-runs/{eval_run_id}"),
        Call("GET", f"/api/eval-runs/{run}/examples", "/api/eval-runs/{eval_run_id}/examples"),
        Call("GET", f"/api/eval-runs/{run}/slices", "/api/eval-runs/{eval_run_id}/slices"),
        Call("GET", f"/api/eval-runs/{ids['b2_mmlu']}/slices", "/api/eval-runs/{eval_run_id}/slices"),
        Call("GET", "/api/models/alpha/slice-trends", "/api/models/{model_id}/slice-trends",
             {"dataset": "gsm8k", "dimension": "topic"}),
        Call("GET", "/api/models/alpha/items", "/api/models/{model_id}/items", {"dataset": "gsm8k"}),
        Call("GET", "/api/datasets/gsm8k/items", "/api/datasets/{dataset_name}/items"),
        Call("GET", "/api/alerts", "/api/alerts", {"status": "all"}),
        Call("POST", f"/api/alerts/{alerts[0]['id']}/acknowledge", "/api/alerts/{alert_id}/acknowledge",
             body={"by": "alice"}, admin=True),
        Call("GET", "/api/activity", "/api/activity", {"limit": 200}),
        Call("GET", "/api/suites", "/api/suites"),
        Call("POST", "/api/admin/suites", "/api/admin/suites",
             body={"suite_id": "math", "display_name": "Math", "dataset_names": ["gsm8k"]}, admin=True),
        Call("POST", "/api/admin/benchmark-metadata", "/api/admin/benchmark-metadata",
             body={"benchmarks": [{"dataset_name": "gsm8k", "category": "math"}]}, admin=True),
        Call("GET", "/api/admin/promotion-rules", "/api/admin/promotion-rules", admin=True),
        Call("POST", "/api/admin/promotion-rules", "/api/admin/promotion-rules",
             body={"rule_name": "vs-gpt", "model_id": "alpha", "baseline_model_id": "gpt-4o",
                   "dataset_names": ["gsm8k"]}, admin=True),
        Call("GET", "/api/admin/webhooks", "/api/admin/webhooks", admin=True),
        Call("POST", "/api/admin/webhooks", "/api/admin/webhooks",
             body={"url": "https://example.org/hook", "events": ["improvement"]}, admin=True),
        Call("GET", f"/api/admin/webhooks/{hook}/deliveries", "/api/admin/webhooks/{webhook_id}/deliveries",
             admin=True),
        Call("POST", f"/api/admin/webhooks/{hook}/deactivate", "/api/admin/webhooks/{webhook_id}/deactivate",
             admin=True),
        Call("POST", f"/api/admin/webhooks/{hook}/activate", "/api/admin/webhooks/{webhook_id}/activate",
             admin=True),
        Call("PATCH", "/api/models/beta", "/api/models/{model_id}", body={"is_pinned": True}, admin=True),
        Call("DELETE", "/api/admin/promotion-rules/vs-gpt", "/api/admin/promotion-rules/{rule_name}", admin=True),
        Call("DELETE", "/api/checkpoints/beta__step-1000", "/api/checkpoints/{checkpoint_id}", admin=True),
        Call("DELETE", "/api/models/llama", "/api/models/{model_id}", admin=True),
    ]


def send(client, call: Call, ingest: dict, admin: dict):
    headers = admin if call.admin else ingest if call.ingest else {}
    return client.request(call.method, call.path, params=call.params, json=call.body, headers=headers)
