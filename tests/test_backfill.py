"""backfill.py end to end: small trees written by the tests, a real uvicorn, real PostgreSQL."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import psycopg
import pytest
import yaml

from ingest_api.backfill import parse as bf
from tests.conftest import INGEST, q
from tests.plugins.backfill import run_backfill, write_scores

FIXTURES = Path(__file__).parent / "fixtures" / "backfill"
MODEL = "k2-think-v2"


pytestmark = pytest.mark.usefixtures("no_ambient_target")


# ---------------------------------------------------------------- fixture trees


def grade_records(rng: random.Random, dataset: str, n: int, samples: int, *, fail_every: int = 0,
                  long_prompt: bool = False) -> tuple[list[dict], float]:
    """Grades records and the `accuracy (avg over samples)` they imply (mean of per-example means)."""
    recs, means = [], []
    for i in range(n):
        question = f"Question {i} of {dataset}: compute x." + (" padding" * 60 if long_prompt else "")
        rec = {"row": {"id": f"{dataset}-{i}", "question": question, "topic": ["algebra", "geometry"][i % 2],
                       "difficulty": ["easy", "hard"][i % 2], "subtask": f"s{i % 3}"},
               "completion_input": question if i % 2 else None,
               "chat_input": None if i % 2 else [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": question}],
               "ground_truth": str(i),
               "generations": [f"gen {g} of example {i}: " + "x" * (300 if long_prompt else 5)
                               for g in range(samples)],
               "parsed_answer": str(i), "picked": samples - 1}
        if fail_every and i % fail_every == fail_every - 1:
            rec.update({"generations": [], "correct": [1],
                        "exception": "TimeoutError: generation exceeded 600s",
                        "trace": "Traceback (most recent call last): ..."})
            means.append(0.0)
        else:
            correct = [int(rng.random() < 0.6) for _ in range(samples)]
            rec["correct"] = correct
            means.append(sum(correct) / samples)
        recs.append(rec)
    return recs, sum(means) / n


def write_grades(folder: Path, dataset: str, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{dataset}_grades.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in records))
    return p


def write_dataset(folder: Path, dataset: str, rng: random.Random, n: int = 12, samples: int = 4,
                  fail_every: int = 0) -> float:
    recs, acc = grade_records(rng, dataset, n, samples, fail_every=fail_every)
    write_grades(folder, dataset, recs)
    write_scores(folder, dataset, {f"accuracy (avg over {samples})": acc,
                                   f"bootstrap_std (avg over {samples})": 0.05,
                                   "accuracy (pass@1)": acc, "accuracy (pass@2)": min(1.0, acc + 0.1)})
    return acc


def nested_tree(root: Path, steps=(2500, 5000, 10000), datasets=("aime-2026", "gpqa_diamond", "math500"),
                seed: int = 1) -> Path:
    rng = random.Random(seed)
    model_dir = root / MODEL
    for s in steps:
        for d in datasets:
            write_dataset(model_dir / f"step-{s}", d, rng, fail_every=5)
    return model_dir


def counts(db) -> dict:
    tables = ["models", "checkpoints", "checkpoint_aliases", "eval_runs", "eval_results", "example_results"]
    return {t: q(db, f"select count(*) n from {t}")[0]["n"] for t in tables}


# ---------------------------------------------------------------- parsing (no server)


def test_parse_quirky_scores_file():
    m = bf.read_scores(FIXTURES / "quirky_scores.yaml")
    assert list(m) == ["accuracy (avg over 32)", "bootstrap_std (avg over 32)", "accuracy (pass@1)",
                       "accuracy (pass@32)", "hard accuracy: level 5 (avg over 8)",
                       "physics accuracy (pass@1)",
                       "summarization rougeL", 'say "hi" rate', "overflow"]
    assert m["accuracy (avg over 32)"] == 0.8145833333333333
    assert m["accuracy (pass@32)"] == 1.0
    assert m["hard accuracy: level 5 (avg over 8)"] == 1e-05
    assert m["physics accuracy (pass@1)"] == 2.5e-3
    assert math.isnan(m["summarization rougeL"])
    assert m['say "hi" rate'] == -0.5 and m["overflow"] == math.inf
    # A YAML 1.1 parser reads `1e-05` and `nan` as strings: why the backfill has its own line parser.
    loaded = yaml.safe_load((FIXTURES / "quirky_scores.yaml").read_text())
    assert loaded["hard accuracy: level 5 (avg over 8)"] == "1e-05"
    assert loaded["summarization rougeL"] == "nan"


@pytest.mark.parametrize("text, line", [
    ('"a": 0.5\n"b": 0.25\naccuracy (pass@2) 0.75\n', 3),
    ('"a": 0.5\n"b": yes\n', 2),
    ('"a": "0.5"\n', 1),
    ('"a": 0.5\n"a": 0.6\n', 2),
    ('"a": [0.5]\n', 1),
    ('"a": 0.5 0.6\n', 1),
    ('"": 0.5\n', 1),
    ('accuracy: 0.5\n', 1),
    ('"a": 0.5\n- 0.6\n', 2),
])
def test_malformed_lines_name_the_line(text, line):
    with pytest.raises(bf.ParseError) as ei:
        bf.parse_scores(text, "x_scores.yaml")
    assert ei.value.line == line
    assert str(ei.value).startswith(f"x_scores.yaml:{line}: ")


def test_count_lines_and_blank_lines(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": 3}')
    assert bf.count_lines(p) == 3
    p.write_text('{"a": 1}\n\n{"a": 2}\n\n')
    assert bf.count_lines(p) == 2
    p.write_text("")
    assert bf.count_lines(p) == 0


def test_example_row_rules():
    rec = {"row": {"topic": "algebra", "difficulty": 3, "subtask": None, "id": "q7"},
           "chat_input": [{"role": "user", "content": "P" * 500}], "completion_input": None,
           "ground_truth": 42, "generations": ["first", "second " + "y" * 400], "picked": 1,
           "correct": [0, 1, 1, 0], "parsed_answer": "42"}
    r = bf.example_row(7, rec)
    assert r["example_idx"] == 7 and r["correct"] is False and r["score"] == 0.5
    assert r["input_preview"] == "P" * 200 and r["output_preview"] == ("second " + "y" * 400)[:200]
    assert (r["topic"], r["difficulty"], r["subtask"], r["ground_truth"]) == ("algebra", "3", None, "42")
    assert r["error_tag"] is None and r["metadata"]["id"] == "q7"
    failed = bf.example_row(0, {"correct": [1, 1], "exception": "ValueError: bad\nmore",
                                "completion_input": "c"})
    assert failed["score"] == 0.0 and failed["correct"] is False and failed["error_tag"] == "ValueError"
    assert failed["input_preview"] == "c" and failed["metadata"]["exception"].startswith("ValueError: bad")


# ---------------------------------------------------------------- against the real API


STEP_SPELLINGS = [
    ("step-5000", 5000), ("checkpoint_0005000", 5000), ("k2moe375b-mid1-checkpoint_0005000", 5000),
    ("global_step_5000", 5000), ("iter_0005000", 5000), ("checkpoint-5000", 5000), ("step5000", 5000),
    ("final", None), (MODEL, None),
]


@pytest.mark.parametrize("folder, step", STEP_SPELLINGS)
def test_step_spellings(server, db, tmp_path, folder, step):
    d = tmp_path / "output" / folder
    write_scores(d, "aime-2026", {"accuracy (avg over 4)": 0.5})
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL) == 0
    ck = q(db, "select checkpoint_id, training_step from checkpoints")
    assert len(ck) == 1
    assert ck[0]["training_step"] == step
    if step is not None:
        assert ck[0]["checkpoint_id"] == f"{MODEL}__step-{step}"
    else:
        assert "step" not in ck[0]["checkpoint_id"]
    assert q(db, "select model_type from models")[0]["model_type"] == "training"


def test_nested_layout_recursive(server, db, tmp_path):
    model_dir = nested_tree(tmp_path / "output")
    assert run_backfill(server, "--output-dir", str(model_dir), "--model-id", MODEL, "--owner", "varad",
                        "--recursive") == 0
    ck = q(db, "select checkpoint_id, training_step from checkpoints order by training_step")
    assert [(c["checkpoint_id"], c["training_step"]) for c in ck] == [
        (f"{MODEL}__step-2500", 2500), (f"{MODEL}__step-5000", 5000), (f"{MODEL}__step-10000", 10000)]
    runs = q(db, "select * from eval_runs")
    assert len(runs) == 9 and {r["source"] for r in runs} == {"backfill"}
    assert {r["sample_count"] for r in runs} == {12}  # lines of the grades files
    assert {r["primary_metric"] for r in runs} == {"accuracy (avg over 4)"}
    m = q(db, "select * from models")[0]
    assert (m["display_name"], m["owner"]) == (MODEL, "varad")
    res = q(db, "select * from eval_results")
    assert len(res) == 36
    std = [r for r in res if r["metric_name"].startswith("bootstrap_std")]
    assert std and all(not r["is_primary"] and not r["is_score"] for r in std)
    prim = [r for r in res if r["is_primary"]]
    assert len(prim) == 9 and all(r["ci_lower"] is not None and r["ci_upper"] is not None for r in prim)
    act = q(db, "select event_type, count(*) n from activity group by 1")
    assert {a["event_type"] for a in act} == {"backfill"}
    assert q(db, "select count(*) n from example_results")[0]["n"] == 0  # no --with-examples


def test_flat_layout_recursive_keeps_aliases(server, db, tmp_path):
    out = tmp_path / "output"
    for step in (5000, 10000):
        write_scores(out / f"k2moe375b-mid1-checkpoint_{step:07d}", "gpqa_diamond",
                     {"accuracy (avg over 8)": step / 20000})
    assert run_backfill(server, "--output-dir", str(out), "--model-id", MODEL, "--recursive") == 0
    ck = q(db, "select checkpoint_id, training_step from checkpoints order by training_step")
    assert [c["training_step"] for c in ck] == [5000, 10000]
    aliases = {a["alias"]: a["checkpoint_id"] for a in q(db, "select * from checkpoint_aliases")}
    assert aliases == {f"{MODEL}__k2moe375b-mid1-checkpoint_0005000": f"{MODEL}__step-5000",
                       f"{MODEL}__k2moe375b-mid1-checkpoint_0010000": f"{MODEL}__step-10000"}


def test_non_recursive_ignores_subfolders_and_says_so(server, db, tmp_path, capsys):
    model_dir = nested_tree(tmp_path / "output", steps=(5000,), datasets=("bbh",))
    assert run_backfill(server, "--output-dir", str(model_dir), "--model-id", MODEL) == 1
    assert "--recursive" in capsys.readouterr().err
    assert counts(db)["eval_runs"] == 0


def test_baseline_with_digits_has_no_step(server, db, tmp_path):
    d = tmp_path / "output" / "deepseek-v3-0324"
    write_scores(d, "bbh", {"accuracy (avg over 1)": 0.8})
    write_scores(d, "mmlu_pro", {"accuracy (avg over 1)": 0.7})
    assert run_backfill(server, "--output-dir", str(d), "--model-id", "deepseek-v3-0324", "--model-type",
                        "baseline", "--display-name", "DeepSeek V3 0324", "--owner", "external") == 0
    ck = q(db, "select checkpoint_id, training_step from checkpoints")
    assert ck == [{"checkpoint_id": "deepseek-v3-0324__baseline", "training_step": None}]
    m = q(db, "select * from models")[0]
    assert (m["model_type"], m["display_name"], m["owner"]) == ("baseline", "DeepSeek V3 0324", "external")


def test_training_step_and_checkpoint_id_override(server, db, tmp_path):
    d = tmp_path / "output" / "deepseek-v3-0324"
    write_scores(d, "bbh", {"accuracy (avg over 1)": 0.8})
    assert run_backfill(server, "--output-dir", str(d), "--model-id", "ds", "--training-step", "7000") == 0
    assert q(db, "select checkpoint_id, training_step from checkpoints") == [
        {"checkpoint_id": "ds__step-7000", "training_step": 7000}]
    d2 = tmp_path / "output" / "final"
    write_scores(d2, "bbh", {"accuracy (avg over 1)": 0.9})
    assert run_backfill(server, "--output-dir", str(d2), "--model-id", "ds",
                        "--checkpoint-id", "ds__rc1") == 0
    assert {c["checkpoint_id"] for c in q(db, "select checkpoint_id from checkpoints")} == {"ds__step-7000",
                                                                                             "ds__rc1"}


def test_nan_is_kept_as_no_value(server, db, tmp_path):
    d = tmp_path / "output" / "step-100"
    write_scores(d, "aime-2026", '"accuracy (avg over 32)": nan\n"bootstrap_std (avg over 32)": nan\n'
                                 '"accuracy (pass@1)": nan\n"accuracy (pass@32)": 1e-05\n"count": 3\n')
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL) == 0
    res = {r["metric_name"]: r for r in q(db, "select * from eval_results")}
    assert len(res) == 5
    assert res["accuracy (avg over 32)"]["metric_value"] is None
    assert res["accuracy (avg over 32)"]["value_note"] == "nan"
    assert res["accuracy (avg over 32)"]["is_primary"]
    assert res["accuracy (pass@32)"]["metric_value"] == 1e-05 and res["count"]["metric_value"] == 3.0


def test_malformed_and_empty_files_do_not_stop_the_others(server, db, tmp_path, capsys):
    d = tmp_path / "output" / "step-100"
    write_scores(d, "good", {"accuracy (avg over 1)": 0.5})
    bad = d / "bad_scores.yaml"
    bad.write_text((FIXTURES / "malformed_scores.yaml").read_text())
    write_scores(d, "empty", "")
    write_scores(d, "blank", "\n  \n")
    write_scores(d, "zz-good", {"accuracy (avg over 1)": 0.75})
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL) == 1
    err = capsys.readouterr().err
    assert f"{bad}: line 3:" in err
    assert "empty scores file" in err and "skipped 2" in err and "failed 1" in err
    stored = sorted(r["dataset_name"] for r in q(db, "select dataset_name from eval_runs"))
    assert stored == ["good", "zz-good"]


def test_only_empty_files_is_success(server, db, tmp_path):
    d = tmp_path / "output" / "step-100"
    write_scores(d, "empty", "")
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL) == 0
    assert counts(db)["eval_runs"] == 0


def test_twice_is_idempotent(server, db, tmp_path):
    model_dir = nested_tree(tmp_path / "output")
    args = ("--output-dir", str(model_dir), "--model-id", MODEL, "--recursive", "--with-examples")
    assert run_backfill(server, *args) == 0
    first = counts(db)
    ids = sorted(r["eval_run_id"] for r in q(db, "select eval_run_id from eval_runs"))
    assert first["eval_runs"] == 9 and first["example_results"] == 9 * 12
    assert run_backfill(server, *args) == 0
    assert counts(db) == first
    assert sorted(r["eval_run_id"] for r in q(db, "select eval_run_id from eval_runs")) == ids
    assert q(db, "select count(*) n from eval_runs where is_current")[0]["n"] == 9


def test_changed_file_updates_values(server, db, tmp_path):
    d = tmp_path / "output" / "step-100"
    write_scores(d, "aime-2026", {"accuracy (avg over 4)": 0.5, "accuracy (pass@1)": 0.5, "old metric": 1.0})
    args = ("--output-dir", str(d), "--model-id", MODEL)
    assert run_backfill(server, *args) == 0
    before = counts(db)
    write_scores(d, "aime-2026", {"accuracy (avg over 4)": 0.625, "accuracy (pass@1)": 0.5})
    assert run_backfill(server, *args) == 0
    res = {r["metric_name"]: r["metric_value"] for r in q(db, "select * from eval_results")}
    assert res == {"accuracy (avg over 4)": 0.625, "accuracy (pass@1)": 0.5}
    assert counts(db) == {**before, "eval_results": 2}


def test_with_examples_matches_the_scores(server, db, tmp_path):
    rng = random.Random(7)
    d = tmp_path / "output" / MODEL / "step-5000"
    accs = {}
    for ds, n, samples in (("aime-2026", 30, 32), ("gpqa_diamond", 25, 8), ("ifeval", 17, 1)):
        recs, acc = grade_records(rng, ds, n, samples, fail_every=4, long_prompt=True)
        write_grades(d, ds, recs)
        write_scores(d, ds, {f"accuracy (avg over {samples})": acc, "accuracy (pass@1)": acc})
        accs[ds] = (acc, recs)
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, "--with-examples") == 0
    for ds, (acc, recs) in accs.items():
        run = q(db, "select * from eval_runs where dataset_name = %s", (ds,))[0]
        assert run["sample_count"] == len(recs)
        stored = q(db, "select metric_value from eval_results where eval_run_id = %s and is_primary",
                   (run["eval_run_id"],))[0]["metric_value"]
        ex = q(db, "select * from example_results where eval_run_id = %s order by example_idx",
               (run["eval_run_id"],))
        assert [e["example_idx"] for e in ex] == list(range(len(recs)))
        assert abs(math.fsum(e["score"] for e in ex) / len(ex) - stored) < 1e-9
        assert abs(stored - acc) < 1e-9
        for e, rec in zip(ex, recs):
            prompt = rec["completion_input"] or "\n".join(m["content"] for m in rec["chat_input"])
            assert e["input_preview"] == prompt[:200] and len(e["input_preview"]) == 200
            if rec["generations"]:
                assert e["output_preview"] == rec["generations"][rec["picked"]][:200]
                assert len(e["output_preview"]) == 200
            else:
                assert e["output_preview"] is None
            assert (e["topic"], e["difficulty"], e["subtask"]) == (
                rec["row"]["topic"], rec["row"]["difficulty"], rec["row"]["subtask"])
            if "exception" in rec:
                assert (e["error_tag"], e["is_correct"], e["score"]) == ("TimeoutError", False, 0.0)
            else:
                assert e["error_tag"] is None and e["is_correct"] == bool(rec["correct"][0])
    # one 'examples' event per run, 'backfill' events for the results
    ev = {r["event_type"]: r["n"] for r in q(db, "select event_type, count(*) n from activity group by 1")}
    assert ev == {"backfill": 3, "examples": 3}


def test_malformed_grades_line_is_reported(server, db, tmp_path, capsys):
    d = tmp_path / "output" / "step-100"
    recs, acc = grade_records(random.Random(1), "bbh", 5, 2)
    g = write_grades(d, "bbh", recs)
    g.write_text(g.read_text() + "{not json\n")
    write_scores(d, "bbh", {"accuracy (avg over 2)": acc})
    write_dataset(d, "math500", random.Random(2))
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, "--with-examples") == 1
    assert f"{g}: line 6:" in capsys.readouterr().err
    assert counts(db)["eval_runs"] == 2  # the scores still went in
    per_run = q(db, "select r.dataset_name, count(e.id) n from eval_runs r left join example_results e "
                    "using (eval_run_id) group by 1 order by 1")
    assert per_run == [{"dataset_name": "bbh", "n": 0}, {"dataset_name": "math500", "n": 12}]


def test_dry_run_sends_nothing(server, db, tmp_path, capsys):
    model_dir = nested_tree(tmp_path / "output", steps=(5000,))
    assert run_backfill(server, "--output-dir", str(model_dir), "--model-id", MODEL, "--recursive",
                        "--with-examples", "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("POST /api/ingest/eval-results ") == 3 and out.count("POST /api/ingest/examples ") == 3
    assert all(v == 0 for v in counts(db).values())
    assert q(db, "select count(*) n from activity")[0]["n"] == 0
    # and it needs no dashboard at all
    assert run_backfill(None, "--output-dir", str(model_dir), "--model-id", MODEL, "--recursive",
                        "--dry-run") == 0


def test_primary_metric_flag(server, db, tmp_path, capsys):
    d = tmp_path / "output" / "step-1"
    write_scores(d, "aime-2026", {"accuracy (avg over 4)": 0.5, "accuracy (pass@1)": 0.4})
    write_scores(d, "ifeval", {"strict_prompt_accuracy": 0.7, "loose_prompt_accuracy": 0.8})
    write_scores(d, "odd", {"bootstrap_std (avg over 4)": 0.1, "accuracy (avg over 4)": 0.3})
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, "--primary-metric",
                        "accuracy (pass@1)") == 0
    prim = {r["dataset_name"]: r["primary_metric"] for r in q(db, "select * from eval_runs")}
    # named metric where present; elsewhere the first score metric (never the spread figure)
    assert prim == {"aime-2026": "accuracy (pass@1)", "ifeval": "strict_prompt_accuracy",
                    "odd": "accuracy (avg over 4)"}
    assert "no metric 'accuracy (pass@1)'" in capsys.readouterr().err
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, "--primary-metric",
                        "bootstrap_std (avg over 4)") == 0
    assert q(db, "select primary_metric from eval_runs where dataset_name = 'odd'")[0]["primary_metric"] == \
        "bootstrap_std (avg over 4)"


def test_small_batches_and_a_refused_result(server, db, tmp_path, capsys):
    # Step 5000's canonical id already belongs to another model: the backfill's results for that
    # folder are refused (409); the rest of its batch still goes in.
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("insert into models (model_id, display_name) values ('other', 'Other')")
        c.execute(f"insert into checkpoints (checkpoint_id, model_id, training_step) "
                  f"values ('{MODEL}__step-5000', 'other', 5000)")
    out = tmp_path / "output"
    rng = random.Random(3)
    names = ["checkpoint_0001000", "checkpoint_0002000", "checkpoint_0005000", "checkpoint_0007000"]
    for name in names:
        for i in range(6):
            write_scores(out / name, f"ds-{i}", {"accuracy (avg over 1)": rng.random()})
    rc = run_backfill(server, "--output-dir", str(out), "--model-id", MODEL, "--recursive",
                      "--batch-size", "5",
                      "--workers", "3")
    assert rc == 1
    err = capsys.readouterr().err
    assert "failed 6" in err and "HTTP 409" in err
    rows = q(db, "select c.training_step, count(*) n from eval_runs r "
                 "join checkpoints c using (checkpoint_id) group by 1")
    steps = {r["training_step"]: r["n"] for r in rows}
    assert steps == {1000: 6, 2000: 6, 7000: 6}


def test_exit_codes(server, db, tmp_path, capsys):
    d = tmp_path / "output" / "step-1"
    write_scores(d, "bbh", {"accuracy (avg over 1)": 0.5})
    with pytest.raises(SystemExit) as e:
        run_backfill(server, "--output-dir", str(d))  # no --model-id
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run_backfill(server, "--output-dir", str(tmp_path / "missing"), "--model-id", MODEL)
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, "--recursive",
                     "--training-step", "5")
    assert e.value.code == 2
    assert run_backfill(None, "--output-dir", str(d), "--model-id", MODEL) == 2  # no URL, no token
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_backfill(server, "--output-dir", str(empty), "--model-id", MODEL) == 1
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, token="wrong-token") == 1
    assert "stopped early" in capsys.readouterr().err
    assert counts(db)["eval_runs"] == 0
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL) == 0


def test_url_and_token_from_env_file(server, db, tmp_path, monkeypatch):
    env = tmp_path / "dashboard.env"
    env.write_text(f"EVAL360_DASHBOARD_URL={server}\nEVAL360_DASHBOARD_TOKEN={INGEST}\n")
    monkeypatch.setenv("EVAL360_DASHBOARD_ENV_FILE", str(env))
    d = tmp_path / "output" / "step-1"
    write_scores(d, "bbh", {"accuracy (avg over 1)": 0.5})
    assert run_backfill(None, "--output-dir", str(d), "--model-id", MODEL) == 0
    assert counts(db)["eval_runs"] == 1


def test_match_picks_one_models_flat_folders(server, db, tmp_path):
    out = tmp_path / "output"
    for name in ("k2moe375b-mid1-checkpoint_0001000", "k2moe375b-mid1-checkpoint_0002000",
                 "k2moe375b-mid3-checkpoint_0001000", "gpt-4o"):
        write_scores(out / name, "bbh", {"accuracy (avg over 1)": 0.5})
    write_scores(out / MODEL / "step-5000", "bbh", {"accuracy (avg over 1)": 0.5})
    assert run_backfill(server, "--output-dir", str(out), "--model-id", "k2moe375b-mid1", "--recursive",
                        "--match", "k2moe375b-mid1-*") == 0
    ck = q(db, "select checkpoint_id, model_id, training_step from checkpoints order by training_step")
    assert [(c["model_id"], c["training_step"]) for c in ck] == [
        ("k2moe375b-mid1", 1000), ("k2moe375b-mid1", 2000)]


def test_grades_without_scores_is_skipped(server, db, tmp_path, capsys):
    d = tmp_path / "output" / "step-1"
    write_dataset(d, "bbh", random.Random(5))
    recs, _ = grade_records(random.Random(6), "orphan", 3, 1)
    write_grades(d, "orphan", recs)
    assert run_backfill(server, "--output-dir", str(d), "--model-id", MODEL, "--with-examples") == 0
    err = capsys.readouterr().err
    assert "orphan_grades.jsonl: grades file without a scores file" in err
    assert counts(db)["example_results"] == 12
