"""missing_evaluation: a checkpoint lacks a dataset of a suite that checkpoints on both sides of it have."""

from __future__ import annotations

import pytest

from tests.plugins.alert_data import open_alerts, post

pytestmark = pytest.mark.usefixtures("alerts_inline")

M = "k2"


def _suite(client, admin_headers, names):
    r = client.post("/api/admin/suites", json={"suite_id": "core", "display_name": "Core", "dataset_names": names},
                    headers=admin_headers)
    assert r.status_code == 200, r.text


def _missing(client):
    return sorted((a["checkpoint_id"], a["dataset_name"]) for a in open_alerts(client, type="missing_evaluation"))


def test_hole_in_a_suite_is_flagged_and_resolved_when_filled(client, db, ingest_headers, admin_headers):
    _suite(client, admin_headers, ["gsm8k", "mmlu"])
    for s in (1000, 2000, 3000):
        post(client, ingest_headers, M, s, "gsm8k", 0.6)
    post(client, ingest_headers, M, 1000, "mmlu", 0.5)
    assert _missing(client) == []  # step 2000 and 3000 lack mmlu, but nothing later has it: not a hole yet
    post(client, ingest_headers, M, 3000, "mmlu", 0.5)
    assert _missing(client) == [(f"{M}__step-2000", "mmlu")]
    a = open_alerts(client, type="missing_evaluation")[0]
    assert a["severity"] == "warning" and a["detail"]["suites"] == ["core"]
    post(client, ingest_headers, M, 2000, "mmlu", 0.5)
    assert _missing(client) == []
    assert [x["checkpoint_id"] for x in open_alerts(client, type="missing_evaluation", status="resolved")] == [
        f"{M}__step-2000"]


def test_datasets_outside_suites_and_suite_changes(client, db, ingest_headers, admin_headers):
    for s in (1000, 2000, 3000):
        post(client, ingest_headers, M, s, "gsm8k", 0.6)
    post(client, ingest_headers, M, 1000, "extra", 0.5)
    post(client, ingest_headers, M, 3000, "extra", 0.5)
    assert _missing(client) == []  # "extra" is in no suite
    _suite(client, admin_headers, ["gsm8k", "extra"])  # a suite created later judges the stored data
    assert _missing(client) == [(f"{M}__step-2000", "extra")]
    _suite(client, admin_headers, ["gsm8k"])  # and a suite change withdraws it
    assert _missing(client) == []


def test_a_checkpoint_with_no_dataset_of_the_suite_is_not_flagged(client, db, ingest_headers, admin_headers):
    _suite(client, admin_headers, ["gsm8k", "mmlu"])
    post(client, ingest_headers, M, 1000, "gsm8k", 0.6)
    post(client, ingest_headers, M, 2000, "other", 0.6)  # evaluated on something else entirely
    post(client, ingest_headers, M, 3000, "gsm8k", 0.6)
    assert _missing(client) == []
