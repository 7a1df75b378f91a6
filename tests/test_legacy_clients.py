"""The earlier dashboard's clients against this API: every recorded call (tests/fixtures/legacy_client_calls.json)
answers as they expect and carries every key they read; the SPA's calls that once broke silently
(suite filter, model counts, regressions feed, default score, diagnosis keys, error text) are
checked for what they mean, not only for the keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tour import build_tour

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_client_calls.json"
CALLS = json.loads(FIXTURE.read_text())["calls"]


pytestmark = pytest.mark.usefixtures("alerts_inline")

def values(obj, path: str) -> tuple[list, list[str]]:
    """The values at a key path (a.b, [] = every item, * = every value of an object) and what was missing."""
    tokens: list[str] = []
    for seg in path.split("."):
        if seg.endswith("[]"):
            if seg[:-2]:
                tokens.append(seg[:-2])
            tokens.append("[]")
        else:
            tokens.append(seg)
    found, missing = [obj], []
    for i, t in enumerate(tokens):
        nxt = []
        for v in found:
            where = ".".join(tokens[:i]) or "reply"
            if t == "[]":
                if not isinstance(v, list):
                    missing.append(f"{where} is not a list")
                else:
                    nxt.extend(v)
            elif t == "*":
                if not isinstance(v, dict):
                    missing.append(f"{where} is not an object")
                else:
                    nxt.extend(v.values())
            elif not isinstance(v, dict) or t not in v:
                missing.append(f"{where} has no key {t!r}")
            else:
                nxt.append(v[t])
        found = nxt
    return found, missing


def fill(x, ids: dict):
    if isinstance(x, str):
        return x.format(**ids) if "{" in x else x
    if isinstance(x, dict):
        return {k: fill(v, ids) for k, v in x.items()}
    if isinstance(x, list):
        return [fill(v, ids) for v in x]
    return x


@pytest.fixture
def ids(client, ingest_headers, admin_headers) -> dict:
    build_tour(client, ingest_headers, admin_headers)
    cp = client.get("/api/checkpoints/alpha__step-2000").json()
    run = next(r["eval_run_id"] for r in cp["eval_results"] if r["dataset_name"] == "gsm8k")
    alert = client.get("/api/alerts", params={"type": "regression", "model_id": "gamma"}).json()["alerts"][0]
    return {"model": "alpha", "other_model": "beta", "checkpoint": "alpha__step-2000",
            "checkpoint_a": "alpha__step-1000", "checkpoint_b": "alpha__step-2000", "dataset": "gsm8k",
            "other_dataset": "ifeval", "suite": "core", "run": run, "regressing_model": "gamma",
            "alert_id": alert["id"], "deletable_checkpoint": "beta__step-1000"}


# ------------------------------------------------------------------ what the SPA's calls mean


def _models_counts_newest_first(body, client):
    ms = body["models"]
    assert [m["created_at"] for m in ms] == sorted((m["created_at"] for m in ms), reverse=True)
    alpha = next(m for m in ms if m["model_id"] == "alpha")
    assert (alpha["checkpoint_count"], alpha["dataset_count"]) == (3, 3)


def _diagnosis_old_keys(body, client):
    names = {m["model_id"]: m["display_name"] for m in client.get("/api/models").json()["models"]}
    for cell in body["scores"].values():
        assert cell["sample_count"] == cell["n"]
        if cell["baseline_model_id"] is not None:
            assert cell["baseline_model"] == names[cell["baseline_model_id"]] != cell["baseline_model_id"]


def _leaderboard_best(body, client):
    assert body["score_choice"] == "best"
    beta = next(r for r in body["leaderboard"] if r["model_id"] == "beta")
    assert beta["score"] == 0.55  # best of 0.55 (step 1000) and 0.52 (step 2000)


def _leaderboard_suite_filters(body, client):
    assert body["leaderboard"] == [] and body["suite_id"] == "core"
    assert client.get("/api/datasets/ifeval/leaderboard").json()["leaderboard"] != []


def _heatmap_best_default(body, client):
    assert body["score_choice"] == "best"
    assert body["matrix"]["beta"]["gsm8k"]["score"] == 0.55


def _heatmap_suite_filters(body, client):
    assert body["datasets"] == ["gsm8k", "mmlu"] and body["suite_id"] == "core"
    assert all(set(row) == {"gsm8k", "mmlu"} for row in body["matrix"].values())
    assert "ifeval" in client.get("/api/heatmap").json()["datasets"]


def _diff_sign(body, client):
    gsm = next(d for d in body["datasets"] if d["dataset_name"] == "gsm8k")
    assert gsm["delta"] == pytest.approx(0.6 - 0.5)  # b − a: a rise is positive
    assert all(d["direction"] != "regressed" for d in body["datasets"] if (d["delta"] or 0) > 0)


def _activity_regressions_with_delta(body, client):
    regs = [e for e in body["events"] if e["event_type"] == "regression"]
    assert regs and regs[0]["detail"]["delta"] == pytest.approx(0.5 - 0.7)
    assert any(e["event_type"] == "eval_completed" for e in body["events"])
    assert any(e["event_type"] == "improvement" and e["detail"]["delta"] > 0 for e in body["events"])


def _unknown_parameter(body, client):
    assert "`suite_idx`" in body["message"] and "suite_id" in body["message"]
    assert body["error"]["unknown"] == ["suite_idx"] and "suite" in body["error"]["accepted"]


def _error_text(body, client):
    assert isinstance(body["message"], str) and "no-such-model" in body["message"]
    assert body["message"] == body["detail"] == body["error"]["message"]


CHECKS = {f.__name__[1:]: f for f in (_models_counts_newest_first, _diagnosis_old_keys, _leaderboard_best,
                                      _leaderboard_suite_filters, _heatmap_best_default, _heatmap_suite_filters,
                                      _diff_sign, _activity_regressions_with_delta, _unknown_parameter, _error_text)}


def test_every_recorded_call_answers_with_what_its_client_reads(client, ids, ingest_headers, admin_headers):
    assert {c["check"] for c in CALLS if "check" in c} == set(CHECKS)
    problems = []
    for n, call in enumerate(CALLS):
        c = fill(call, ids)
        headers = {"admin": admin_headers, "ingest": ingest_headers}.get(c.get("auth"), {})
        r = client.request(c["method"], c["path"], params=c.get("params"), json=c.get("body"), headers=headers)
        what = f"#{n} {c['client']}: {c['method']} {c['path']} {c.get('params', '')}"
        if r.status_code != c.get("status", 200):
            problems.append(f"{what}: HTTP {r.status_code} {r.text[:300]}")
            continue
        body = r.json()
        for path in c["reads"]:
            got, missing = values(body, path)
            if missing:
                problems.append(f"{what}: {path}: {missing[0]}")
            elif not got:
                problems.append(f"{what}: {path}: no value to read (the test data should give one)")
        if "check" in c:
            try:
                CHECKS[c["check"]](body, client)
            except AssertionError as exc:
                problems.append(f"{what}: {c['check']}: {exc}")
    assert not problems, "\n".join(problems)
