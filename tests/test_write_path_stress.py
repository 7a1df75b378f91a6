"""Stress and property tests of the set-based write path (sql/functions/50_store_results.sql, ingest/store.py, ingest/batcher.py).

Oracles, never the code under test: the same results posted one by one (for batches), a rebuild of
the read-side facts from the base tables (for the facts), and hand-written expectations.
The last section pins bugs found in review (since fixed in the store function): each test names its case.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from ingest_api.ingest.schemas import EvalResultIn
from ingest_api.ingest.store import STORE_SQL, PreparedBatch
from tests.conftest import INGEST, q, truncate_all
from tests.helpers import minimal_payload
from tests.plugins.views import facts, rebuilt

MODELS = ["m0", "m1", "m2"]
STEPS = [100, 200, 300, 400]
DATASETS = [f"d{i}" for i in range(5)]

# Every table the write path writes (and the facts it queues), in a comparable form.
_TABLES = {
    "models": "select * from models order by model_id",
    "checkpoints": "select * from checkpoints order by checkpoint_id",
    "checkpoint_aliases": "select * from checkpoint_aliases order by alias",
    "eval_runs": "select * from eval_runs order by eval_run_id",
    "eval_results": "select * from eval_results order by eval_run_id, metric_name",
    "benchmark_metadata": "select * from benchmark_metadata order by dataset_name",
    "activity": "select * from activity order by id",  # in posting order
    "alert_recheck": "select * from alert_recheck order by checkpoint_id, dataset_name",
    "score_facts": "select * from score_facts order by eval_run_id",
    "model_dataset_facts": "select * from model_dataset_facts order by model_id, dataset_name",
}


def _norm_row(row: dict) -> tuple:
    """A row without its clock columns and identity id; json values made comparable."""
    row = dict(row)
    if row.get("result_json"):  # score_facts keeps a JSON text with a clock value in it
        row["result_json"] = {k: v for k, v in json.loads(row["result_json"]).items() if k != "ingested_at"}
    return tuple((k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                 for k, v in row.items() if k != "id" and not isinstance(v, dt.datetime))


def _snapshot(db: str) -> dict[str, list[tuple]]:
    facts(db)  # drain what the writes queued, as every reader does
    return {name: [_norm_row(r) for r in q(db, sql)] for name, sql in _TABLES.items()}


def _store(conn: psycopg.Connection, *payloads: dict) -> list[dict]:
    """Call eval360_store_results on conn, as the API does, for a batch of payloads."""
    batch = PreparedBatch([EvalResultIn(**p) for p in payloads], source="api", actor="ingest",
                          record_activity=True)
    return conn.execute(STORE_SQL, (batch.arg,)).fetchone()["r"]


def _connect(db: str, *, autocommit: bool = True) -> psycopg.Connection:
    c = psycopg.connect(db, autocommit=autocommit, row_factory=dict_row)
    c.execute("set lock_timeout = '20s'")  # a test that deadlocks fails instead of hanging
    if not autocommit:
        c.commit()
    return c


def _wait_until_blocked(db: str, pid: int, unless=None) -> bool:
    """Until backend pid waits on a lock (a synchronisation point, not a timing assertion): True; False
    when `unless()` turns true first."""
    deadline = time.time() + 20
    while time.time() < deadline:
        if q(db, "select 1 from pg_stat_activity where pid = %s and wait_event_type = 'Lock'", (pid,)):
            return True
        if unless is not None and unless():
            return False
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never blocked")


# ------------------------------------------------------------------ randomized: batch == one by one


def _random_results(rng: random.Random, n: int = 200) -> list[dict]:
    """n results over 3 training models x 4 checkpoints x 5 datasets and a baseline model: explicit and
    derived run ids, re-posts (same run, same derived content), alias spellings, metadata merged, tags,
    categories, NaN / missing values, explicit primaries and intervals. No result conflicts with another
    (conflicts are tested on their own), and no model changes its type (tested on its own below)."""
    out: list[dict] = []
    derived: list[tuple[dict, int]] = []  # results with a derived run id, and their step

    def spelling(m: str, s: int) -> dict:
        return rng.choice([
            {"checkpoint_id": f"{m}__step-{s}"},
            {"checkpoint_id": f"{m}_step{s}"},
            {"checkpoint_id": f"{m}__step-{s}", "training_step": s},
            {"checkpoint_id": f"{m}__checkpoint_{s:07d}"},
            {"checkpoint_id": f"{m}-iter{s}"},
            {"checkpoint_id": f"{m}__step{s}"},
        ])

    def metrics() -> dict:
        names = rng.sample(["accuracy", "f1", "bootstrap_std", "pass@1"], rng.randint(1, 4))
        return {name: rng.choice([round(rng.random(), 4)] * 6 + ["nan", None, 1]) for name in names}

    for _ in range(n):
        baseline = rng.random() < 0.15
        m = "base0" if baseline else rng.choice(MODELS)
        s = rng.choice(STEPS)
        p: dict = {"model_id": m, "display_name": f"{m.upper()} v{rng.randrange(3)}",
                   "owner": rng.choice(["ann", "bob"]), "dataset_name": rng.choice(DATASETS)}
        if baseline:
            p["model_type"] = "baseline"
            p["checkpoint_id"] = rng.choice(["base0", "base0__baseline", "base0-hf"])
        else:
            if rng.random() < 0.2:
                p["model_type"] = "training"
            p.update(spelling(m, s))
        content = {"metrics": metrics()}
        if rng.random() < 0.3:
            content["sample_count"] = rng.choice([50, 100])
        if rng.random() < 0.2:
            content["status"] = rng.choice(["failed", "pending", "completed"])
        if rng.random() < 0.2:
            content["harness_commit"] = rng.choice(["c1", "c2"])
        if rng.random() < 0.2:
            content["eval_config"] = {"t": rng.choice([0, 0.6])}
        if rng.random() < 0.2:
            content["primary_metric"] = rng.choice(sorted(content["metrics"]))
        if rng.random() < 0.1:
            content.update(ci_lower=0.0, ci_upper=1.0, stderr=0.2)  # an interval holds its value (the store's rules)
        r = rng.random()
        if r < 0.45:
            step_key = "baseline" if baseline else s
            p["eval_run_id"] = f"{m}-{step_key}-{p['dataset_name']}-r{rng.randrange(3)}"
        elif r < 0.6 and derived:
            # the same content again under another spelling: the same derived run, re-posted
            prev, s = rng.choice(derived)
            m = prev["model_id"]
            p = {"model_id": m, "display_name": f"{m.upper()} v{rng.randrange(3)}",
                 "owner": rng.choice(["ann", "bob"]), "dataset_name": prev["dataset_name"]}
            if "model_type" in prev:
                p["model_type"] = prev["model_type"]
            if m == "base0":
                p["checkpoint_id"] = rng.choice(["base0", "base0__baseline", "base0-hf"])
            else:
                p.update(spelling(m, s))
            content = {k: v for k, v in prev.items() if k in (
                "metrics", "sample_count", "status", "harness_commit", "eval_config", "primary_metric",
                "ci_lower", "ci_upper", "stderr")}
        p.update(content)
        if rng.random() < 0.3:
            p["metadata"] = {f"k{rng.randrange(3)}": rng.randrange(5)}
        if rng.random() < 0.25:
            p["recipe_tags"] = rng.choice([[], ["sft"], ["rl", "math"]])
        if rng.random() < 0.2:
            p["checkpoint_path"] = f"/ck/{m}/{rng.randrange(2)}"
        if rng.random() < 0.15:
            p["training_run"] = rng.choice(["tr-a", "tr-b"])
        if rng.random() < 0.25:
            p["category"] = rng.choice(["math", "code"])
        if rng.random() < 0.15:
            p["subcategory"] = rng.choice(["x", "y"])
        if rng.random() < 0.15:
            p["param_count"] = rng.choice([7, 70])
        out.append(p)
        if "eval_run_id" not in p:
            derived.append((p, s))
    return out


def _chunks(rng: random.Random, items: list, lo: int = 1, hi: int = 45) -> list[list]:
    out, i = [], 0
    while i < len(items):
        k = rng.randint(lo, hi)
        out.append(items[i:i + k])
        i += k
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_batches_leave_the_state_of_posting_one_by_one(app, client, db, ingest_headers, seed):
    rng = random.Random(seed)
    results = _random_results(rng)
    assert len({p["model_id"] for p in results}) == 4 and any("eval_run_id" not in p for p in results)

    for i, p in enumerate(results):
        r = client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
        assert r.status_code == 200, (i, r.text)
    one_by_one = _snapshot(db)
    assert facts(db) == rebuilt(db)
    assert len(one_by_one["eval_runs"]) > 40 and len(one_by_one["checkpoint_aliases"]) > 10

    truncate_all(db)
    for chunk in _chunks(rng, results):
        r = client.post("/api/ingest/eval-results", json={"results": chunk}, headers=ingest_headers)
        assert r.status_code == 200, r.text
        assert r.json()["count"] == len(chunk)
    batched = _snapshot(db)
    assert facts(db) == rebuilt(db)

    for table in _TABLES:
        assert batched[table] == one_by_one[table], table
    # and what the oracle itself says, by hand: one current run per cell, one activity per result
    cells = q(db, "select checkpoint_id, dataset_name, count(*) filter (where is_current) n from eval_runs "
                  "group by 1, 2")
    assert cells and all(c["n"] == 1 for c in cells)
    assert q(db, "select count(*) n from activity")[0]["n"] == len(results)


def test_whole_random_set_as_one_batch_equals_one_by_one(app, client, db, ingest_headers):
    results = _random_results(random.Random(7))
    for p in results:
        assert client.post("/api/ingest/eval-result", json=p, headers=ingest_headers).status_code == 200
    one_by_one = _snapshot(db)
    truncate_all(db)
    r = client.post("/api/ingest/eval-results", json={"results": results, "source": "api"},
                    headers=ingest_headers)
    assert r.status_code == 200, r.text
    assert _snapshot(db) == one_by_one
    assert facts(db) == rebuilt(db)


# ------------------------------------------------------------------ concurrent writers through uvicorn


@pytest.mark.parametrize("mode", ["writers_only", "with_readers"])
def test_concurrent_singles_and_batches_over_shared_checkpoints(app, live_server, db, mode):
    """6 writer threads mix single posts (group-committed) and batches over the same cells, with planted
    conflicts: every reply is 200 or the planted 409 naming the planted field, nothing is lost or written
    twice, exactly one run per cell is current, each run holds the metrics of its last post.

    Writers change benchmark categories too. writers_only: nobody drains the facts while the writers
    run (background drainer stopped, no reader). with_readers: 2 readers and the drainer flush the facts
    all along (racing the writes), and every read answers 200. Either way the facts equal a rebuild
    afterwards (every touched and demoted run was queued, and no flush lost a refresh)."""
    headers = {"Authorization": f"Bearer {INGEST}"}
    if mode == "writers_only":
        app.state.facts_drainer.stop()
    with httpx.Client(base_url=live_server, headers=headers, timeout=60) as c:
        # a stored alias: posting 'm0__ck-a' for another step is a conflict
        seed = [minimal_payload(model_id="m0", checkpoint_id="m0__ck-a", training_step=1, dataset_name="d0")]
        seed += [minimal_payload(model_id="m1", checkpoint_id="m1__step-1", dataset_name=d) for d in DATASETS[:3]]
        assert c.post("/api/ingest/eval-results", json={"results": seed}).status_code == 200

    stop = threading.Event()
    reader_replies: list[tuple[str, int, str]] = []

    def reader() -> None:
        with httpx.Client(base_url=live_server, headers=headers, timeout=60) as c:
            while not stop.is_set():
                for path in ("/api/heatmap", "/api/models/m0/scores", "/api/datasets/d1/leaderboard",
                             "/api/activity?limit=5"):
                    r = c.get(path)
                    reader_replies.append((path, r.status_code, r.text[:300]))

    def writer(t: int) -> list[tuple]:
        rng = random.Random(100 + t)
        log: list[tuple] = []  # (n, payloads, status, body, {index: planted conflicting field})
        mine: list[dict] = []  # own posts that were stored: their run ids are committed
        with httpx.Client(base_url=live_server, headers=headers, timeout=60) as c:
            for k in range(14):
                n = 1 if rng.random() < 0.5 else rng.randint(2, 8)
                batch: list[dict] = []
                planted: dict[int, str] = {}
                for j in range(n):
                    m, s = rng.choice(MODELS[:2]), rng.choice(STEPS[:3])
                    p = minimal_payload(model_id=m, display_name=f"{m} by t{rng.randrange(2)}",
                                        checkpoint_id=rng.choice([f"{m}__step-{s}", f"{m}_step{s}"]),
                                        dataset_name=rng.choice(DATASETS[:3]),
                                        metrics={"accuracy": round(rng.random(), 3), "f1": 0.5},
                                        metadata={f"t{t}": k})
                    p["category"] = rng.choice([None, "math", "code"])
                    if rng.random() < 0.6:
                        p["eval_run_id"] = f"t{t}-{k}-{j}"
                    roll = rng.random()
                    if roll < 0.06 and mine and not planted:
                        # planted: a committed run id of this thread, posted for another dataset
                        prev = rng.choice(mine)
                        p.update(eval_run_id=prev["eval_run_id"], checkpoint_id=prev["checkpoint_id"],
                                 model_id=prev["model_id"],
                                 dataset_name=next(d for d in DATASETS if d != prev["dataset_name"]))
                        planted[j] = "eval_run_id"
                    elif roll < 0.1 and not planted:
                        planted[j] = "checkpoint_id"  # planted: the stored alias, for another step
                        p.update(model_id="m0", checkpoint_id="m0__ck-a", training_step=2)
                    elif roll < 0.25 and mine:
                        # a re-post of one of this thread's runs, with other metrics
                        prev = rng.choice(mine)
                        p.update({f: prev[f] for f in ("eval_run_id", "checkpoint_id", "model_id", "dataset_name")})
                        p["metrics"] = {"accuracy": round(rng.random(), 3)}
                    batch.append(p)
                if n == 1:
                    r = c.post("/api/ingest/eval-result", json=batch[0])
                else:
                    r = c.post("/api/ingest/eval-results", json={"results": batch})
                log.append((n, batch, r.status_code, r.json(), planted))
                if r.status_code == 200:
                    mine.extend(p for p in batch if "eval_run_id" in p)
        return log

    readers = [threading.Thread(target=reader) for _ in range(2 if mode == "with_readers" else 0)]
    for th in readers:
        th.start()
    try:
        with ThreadPoolExecutor(6) as ex:
            logs = [x for part in ex.map(writer, range(6)) for x in part]
    finally:
        stop.set()
        for th in readers:
            th.join(60)

    stored: list[dict] = []
    for n, batch, status, body, planted in logs:
        if planted:
            (idx, field), = planted.items()
            assert status == 409, (batch, body)
            assert body["error"]["field"] == (field if n == 1 else f"results[{idx}].{field}"), (batch, body)
        else:
            assert status == 200, (batch, body)
            stored.extend(batch)
    assert sum(1 for x in logs if x[4]) >= 3 and sum(1 for x in logs if x[0] > 1 and x[2] == 200) >= 10
    if readers:
        assert reader_replies
        assert [x for x in reader_replies if x[1] != 200] == []

    # nothing lost, nothing written twice: one activity row per stored result (+ the seed)
    assert q(db, "select count(*) n from activity")[0]["n"] == len(stored) + len(seed)
    cells = q(db, "select checkpoint_id, dataset_name, count(*) filter (where is_current) n from eval_runs "
                  "group by 1, 2")
    assert all(c["n"] == 1 for c in cells), [c for c in cells if c["n"] != 1]
    # a thread's own run ids are posted by it alone: their metrics are those of its last post
    last = {p["eval_run_id"]: p for p in stored if "eval_run_id" in p}
    got: dict[str, dict] = {}
    for row in q(db, "select eval_run_id, metric_name, metric_value from eval_results where eval_run_id = any(%s)",
                 (list(last),)):
        got.setdefault(row["eval_run_id"], {})[row["metric_name"]] = row["metric_value"]
    assert got == {rid: p["metrics"] for rid, p in last.items()}
    if mode == "writers_only":
        assert q(db, "select count(*) n from facts_pending")[0]["n"] > 0  # nobody drained meanwhile
    assert facts(db) == rebuilt(db)


# ------------------------------------------------------------------ conflicts and error answers


def test_batch_conflict_answer_names_the_first_offending_result(client, db, ingest_headers):
    """Posting one by one, results[0] would fail first; the batch must name it (not a later one)."""
    ok = client.post("/api/ingest/eval-result", json=minimal_payload(eval_run_id="taken", dataset_name="x"),
                     headers=ingest_headers)
    assert ok.status_code == 200
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into models (model_id, display_name) values ('other', 'Other')")
        c.execute("insert into checkpoints (checkpoint_id, model_id, training_step) values "
                  "('k2-think-v2__step-9', 'other', 9)")
    batch = [minimal_payload(dataset_name="y", eval_run_id="taken"),           # run of dataset x
             minimal_payload(checkpoint_id="k2-think-v2__step-9", dataset_name="z")]  # other model's
    # the oracle: one by one, the first post is the first to fail
    first = client.post("/api/ingest/eval-result", json=batch[0], headers=ingest_headers)
    assert first.status_code == 409 and first.json()["error"]["field"] == "eval_run_id"
    r = client.post("/api/ingest/eval-results", json={"results": batch}, headers=ingest_headers)
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "results[0].eval_run_id"


def test_alias_claimed_twice_in_one_batch_is_a_conflict_of_the_second(client, db, ingest_headers):
    batch = [minimal_payload(checkpoint_id="k2-think-v2__ck-a", training_step=1, dataset_name="a"),
             minimal_payload(checkpoint_id="k2-think-v2__ck-a", training_step=2, dataset_name="b")]
    r = client.post("/api/ingest/eval-results", json={"results": batch}, headers=ingest_headers)
    assert r.status_code == 409 and r.json()["error"]["field"] == "results[1].checkpoint_id"
    assert q(db, "select count(*) n from checkpoints")[0]["n"] == 0
    assert q(db, "select count(*) n from checkpoint_aliases")[0]["n"] == 0


@pytest.mark.parametrize(("over", "status"), [
    ({"checkpoint_id": "k2-think-v2__step-99999999999999999999"}, 422),  # a step past bigint, from the name
    ({"metrics": {"loss": 1e308, "f1": "-inf", "g": "nan"}, "sample_count": 2**31 - 1}, 200),
    ({"eval_config": {"big": 2**63 - 1, "nested": {"x": [1, None, "nan", -(2**63)]}}, "seed": -(2**63 - 1)}, 200),
    ({"eval_config": {"big": 10**40}}, 422),  # unreadable afterwards: refused (the store's rules)
    ({"metrics": {f"m{i}": i / 1000 for i in range(1000)}}, 200),
])
@pytest.mark.parametrize("path", ["single", "batch"])
def test_odd_but_valid_input_is_never_a_500(client, db, ingest_headers, over, status, path):
    p = minimal_payload(**over)
    if path == "single":
        r = client.post("/api/ingest/eval-result", json=p, headers=ingest_headers)
    else:
        r = client.post("/api/ingest/eval-results", json={"results": [minimal_payload(dataset_name="ok"), p]},
                        headers=ingest_headers)
    assert r.status_code == status, r.text
    if status == 422:
        assert q(db, "select count(*) n from eval_runs")[0]["n"] == 0  # nothing half-written
    assert facts(db) == rebuilt(db)


def test_group_commit_with_a_bad_value_fails_only_that_post(live_server, db):
    """Concurrent single posts are stored together; one whose value the database refuses (a step past
    bigint) must fail alone, and the others must be stored."""
    posts = [minimal_payload(dataset_name=f"g{i}") for i in range(24)]
    posts[5] = minimal_payload(checkpoint_id="k2-think-v2__step-99999999999999999999", dataset_name="bad")
    gate = threading.Barrier(8)

    def send(chunk: list[dict]) -> list[tuple[str, int]]:
        with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {INGEST}"}, timeout=60) as c:
            gate.wait()
            return [(p["dataset_name"], c.post("/api/ingest/eval-result", json=p).status_code) for p in chunk]

    with ThreadPoolExecutor(8) as ex:
        codes = dict(x for part in ex.map(send, [posts[i::8] for i in range(8)]) for x in part)
    assert codes.pop("bad") == 422
    assert set(codes.values()) == {200}
    assert q(db, "select count(*) n from eval_runs")[0]["n"] == 23


# ------------------------------------------------------------------ bugs found in review (regression tests)


def test_model_type_change_inside_a_batch_is_a_conflict_as_one_by_one(client, db, ingest_headers):
    """Ingest never changes a model's type (sql/functions/50_store_results.sql): the result stating another type is a 409,
    in a batch as when posted one by one, and the batch stores nothing."""
    def results(m: str) -> list[dict]:
        return [minimal_payload(model_id=m, checkpoint_id=f"{m}__step-100", dataset_name="a", eval_run_id=f"{m}-1"),
                minimal_payload(model_id=m, checkpoint_id=f"{m}__step-100", dataset_name="b", eval_run_id=f"{m}-2",
                                model_type="baseline")]

    seq = [client.post("/api/ingest/eval-result", json=p, headers=ingest_headers) for p in results("seq")]
    assert [x.status_code for x in seq] == [200, 409]
    assert seq[1].json()["error"]["field"] == "model_type"
    r = client.post("/api/ingest/eval-results", json={"results": results("bat")}, headers=ingest_headers)
    assert r.status_code == 409 and r.json()["error"]["field"] == "results[1].model_type"
    assert q(db, "select model_id, model_type from models order by 1") == [{"model_id": "seq",
                                                                            "model_type": "training"}]


@pytest.mark.parametrize("case", ["re-posted", "superseded"])
def test_a_flush_racing_an_uncommitted_write_does_not_lose_its_refresh(db, case):
    with _connect(db) as c:
        _store(c, minimal_payload(eval_run_id="r1", metrics={"accuracy": 0.5}))
        c.execute("select eval360_flush_facts()")
        _store(c, minimal_payload(eval_run_id="r1", metrics={"accuracy": 0.6}))  # queued, not drained yet
    with _connect(db, autocommit=False) as writer, _connect(db) as drainer:
        # not committed yet: r1 again, or a new run of its cell (which demotes r1)
        _store(writer, minimal_payload(eval_run_id="r1" if case == "re-posted" else "r2",
                                       metrics={"accuracy": 0.7}))
        # the background drainer, or any reader, flushes meanwhile: it waits for the write in flight
        flushed: dict = {}

        def flush() -> None:
            try:
                flushed["n"] = drainer.execute("select eval360_flush_facts()").fetchone()
            except psycopg.Error as exc:
                flushed["error"] = exc

        th = threading.Thread(target=flush)
        th.start()
        # The flush waits for the write in flight, unless a background drainer of another test's server
        # emptied the visible queue first: then it finds nothing and returns 0 at once (the write's own
        # queue row is not committed yet). Either way the write's refresh must not be lost (asserted below).
        if not _wait_until_blocked(db, drainer.info.backend_pid, unless=lambda: not th.is_alive()):
            assert flushed.get("n") == {"eval360_flush_facts": 0}, flushed
        writer.commit()
        th.join(30)
        assert "error" not in flushed, flushed
    # a reader now: it flushes, then reads the facts
    seen = facts(db)
    assert [f["metric_value"] for f in seen[0]] == [0.7], "one current score per cell, of the last commit"
    assert seen == rebuilt(db)


def test_one_new_run_id_posted_concurrently_for_two_cells_is_a_conflict(db):
    with _connect(db) as c:
        _store(c, minimal_payload(eval_run_id="a-old", dataset_name="dA"),
               minimal_payload(eval_run_id="b-old", dataset_name="dB"))
    outcome: dict = {}
    with _connect(db, autocommit=False) as first:
        _store(first, minimal_payload(eval_run_id="R", dataset_name="dA", metrics={"accuracy": 0.1}))
        pid: list[int] = []

        def second() -> None:
            with _connect(db) as c:
                pid.append(c.info.backend_pid)
                try:
                    outcome["reply"] = _store(c, minimal_payload(eval_run_id="R", dataset_name="dB",
                                                                 metrics={"accuracy": 0.9}))
                except psycopg.Error as exc:
                    outcome["error"] = exc

        th = threading.Thread(target=second)
        th.start()
        while not pid:
            time.sleep(0.01)
        _wait_until_blocked(db, pid[0])  # on the first's uncommitted run R
        first.commit()
        th.join(30)
    cells = {(r["dataset_name"]): r["n"] for r in q(
        db, "select dataset_name, count(*) filter (where is_current) n from eval_runs group by 1")}
    assert cells == {"dA": 1, "dB": 1}, "every cell keeps exactly one current run"
    assert q(db, "select metric_value from eval_results where eval_run_id = 'R'") == [{"metric_value": 0.1}]
    assert getattr(outcome.get("error"), "sqlstate", None) == "E3409", outcome  # as when posted one by one


def test_a_category_change_and_a_flush_do_not_deadlock(db):
    ck, ds = "k2-think-v2__step-5000", "gpqa_diamond"
    with _connect(db) as c:
        _store(c, minimal_payload(eval_run_id="r1", metrics={"accuracy": 0.5}))
        c.execute("select eval360_flush_facts()")
        _store(c, minimal_payload(eval_run_id="r1", metrics={"accuracy": 0.6}))  # queued: r1
    errors: dict[str, BaseException] = {}
    pids: dict[str, int] = {}

    def run(name: str, fn) -> threading.Thread:
        def body() -> None:
            with _connect(db) as c:
                pids[name] = c.info.backend_pid
                try:
                    fn(c)
                except psycopg.Error as exc:
                    errors[name] = exc
        th = threading.Thread(target=body)
        th.start()
        while name not in pids:
            time.sleep(0.01)
        return th

    with _connect(db, autocommit=False) as worker:
        # the alert worker judging this cell (process_rechecks: delete from alert_recheck, then judge)
        worker.execute("delete from alert_recheck where checkpoint_id = %s and dataset_name = %s", (ck, ds))
        writer = run("writer", lambda c: _store(c, minimal_payload(eval_run_id="r1", metrics={"accuracy": 0.7},
                                                                   category="math")))
        _wait_until_blocked(db, pids["writer"])  # holds the (model, dataset) lock, waits on alert_recheck
        reader = run("flush", lambda c: c.execute("select eval360_flush_facts()"))
        _wait_until_blocked(db, pids["flush"])  # deleted r1 from facts_pending, waits on that lock
        worker.commit()
        writer.join(30)
        reader.join(30)
    assert errors == {}
    assert facts(db) == rebuilt(db)
