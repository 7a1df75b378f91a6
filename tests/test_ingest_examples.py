"""POST /api/ingest/examples: the scheduler's batches and bulk COPY batches."""

from __future__ import annotations

from tests.conftest import q
from tests.helpers import scheduler_payload


def _run(client, headers, run_id="run-aime-5000-a"):
    r = client.post("/api/ingest/eval-result", json=scheduler_payload(eval_run_id=run_id), headers=headers)
    assert r.status_code == 200, r.text
    return run_id


def _examples(n, start=0, **extra):
    return [{"example_idx": i, "correct": i % 3 == 0, "input_preview": f"Q{i}", "output_preview": f"A{i}",
             "ground_truth": str(i), "error_tag": None, "topic": ["algebra", "geometry"][i % 2],
             "difficulty": "hard" if i % 5 == 0 else "easy", "subtask": None, "metadata": {"i": i}, **extra}
            for i in range(start, start + n)]


def test_scheduler_batch_of_100(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": _examples(100)},
                    headers=ingest_headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "eval_run_id": run, "count": 100}
    rows = q(db, "select * from example_results order by example_idx")
    assert len(rows) == 100
    assert rows[3]["is_correct"] is True and rows[3]["score"] == 1.0 and rows[4]["score"] == 0.0
    assert rows[1]["topic"] == "geometry" and rows[0]["difficulty"] == "hard" and rows[7]["metadata"] == {"i": 7}


def test_bulk_10000_and_idempotent(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    body = {"eval_run_id": run, "examples": _examples(10_000)}
    for _ in range(2):
        r = client.post("/api/ingest/examples", json=body, headers=ingest_headers)
        assert r.status_code == 200, r.text
    assert q(db, "select count(*) n, count(distinct example_idx) d from example_results") == [{"n": 10_000, "d": 10_000}]


def test_repost_overlapping_batch_replaces_rows(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": _examples(100)}, headers=ingest_headers)
    changed = [dict(e, correct=True, output_preview="changed") for e in _examples(50, start=75)]
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": changed}, headers=ingest_headers)
    assert r.status_code == 200
    assert q(db, "select count(*) n from example_results")[0]["n"] == 125
    assert q(db, "select count(*) n from example_results where output_preview = 'changed'")[0]["n"] == 50


def test_score_accepted_besides_correct(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    ex = [{"example_idx": 0, "score": 0.25}, {"example_idx": 1, "correct": False, "score": 0.75}]
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": ex}, headers=ingest_headers)
    assert r.status_code == 200, r.text
    rows = q(db, "select example_idx, is_correct, score from example_results order by 1")
    assert rows == [{"example_idx": 0, "is_correct": None, "score": 0.25},
                    {"example_idx": 1, "is_correct": False, "score": 0.75}]


def test_unknown_run_is_404(client, db, ingest_headers):
    r = client.post("/api/ingest/examples", json={"eval_run_id": "nope", "examples": _examples(1)},
                    headers=ingest_headers)
    assert r.status_code == 404
    assert "nope" in r.json()["error"]["message"]


def test_over_the_row_limit_is_413(client, db, ingest_headers, settings):
    run = _run(client, ingest_headers)
    n = settings.max_examples_per_call + 1
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": _examples(n)},
                    headers=ingest_headers)
    assert r.status_code == 413
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0


def test_bad_rows_reject_the_whole_batch(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    ex = _examples(10) + [{"example_idx": 10, "score": 1.5}]
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": ex}, headers=ingest_headers)
    assert r.status_code == 422
    assert "examples[10].score" in r.json()["error"]["message"]
    ex = _examples(10) + [{"example_idx": 11}]
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": ex}, headers=ingest_headers)
    assert r.status_code == 422 and "correct" in r.json()["error"]["message"]
    ex = _examples(10) + [{"example_idx": -1, "correct": True}]
    assert client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": ex},
                       headers=ingest_headers).status_code == 422
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0


def test_nul_character_in_preview_is_422_and_nothing_written(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    ex = _examples(5) + [{"example_idx": 5, "correct": True, "input_preview": "a\u0000b"}]
    r = client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": ex}, headers=ingest_headers)
    assert r.status_code == 422, r.text
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0


def test_non_string_ground_truth_kept_as_text(client, db, ingest_headers):
    run = _run(client, ingest_headers)
    ex = [{"example_idx": 0, "correct": True, "ground_truth": 42, "topic": 7}]
    assert client.post("/api/ingest/examples", json={"eval_run_id": run, "examples": ex},
                       headers=ingest_headers).status_code == 200
    assert q(db, "select ground_truth, topic from example_results") == [{"ground_truth": "42", "topic": "7"}]
