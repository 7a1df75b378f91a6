"""Synthetic but realistic demo data: training curves, baselines, categories, suites, example rows,
and a regression or two, written through the same functions as the ingest API.

`eval360 demo-data --scale small` (the `make run` default) or `--scale llm360` (10 training
models × 100 checkpoints + 5 baselines on 40 datasets, the benchmark's size).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..core.db import connect
from .schemas import EvalResultIn, ExampleIn
from .store import store_eval_result, store_examples


@dataclass(frozen=True)
class Bench:
    name: str
    category: str
    subcategory: str
    n: int  # examples in the dataset
    samples: int  # generations per example ("avg over N")
    difficulty: float  # higher is harder
    kind: str = "accuracy"  # accuracy | ifeval


CORE = [
    Bench("aime-2026", "math", "competition", 30, 32, 2.2),
    Bench("math500", "math", "competition", 500, 4, 0.4),
    Bench("gsm8k", "math", "grade-school", 1319, 1, -1.5),
    Bench("gpqa_diamond", "science", "graduate", 198, 8, 1.4),
    Bench("humaneval", "code", "function", 164, 1, -0.3),
    Bench("livecodebench-v6", "code", "competitive", 454, 4, 1.8),
    Bench("mmlu_pro", "knowledge", "multi-domain", 1200, 1, 0.6),
    Bench("bbh", "reasoning", "multi-task", 1000, 1, -0.2),
    Bench("arc_challenge", "reasoning", "science-qa", 1172, 1, -1.2),
    Bench("ifeval", "instruction following", "verifiable", 541, 1, -0.5, "ifeval"),
    Bench("truthfulqa_mc2", "safety", "truthfulness", 817, 1, 0.3),
    Bench("longbench-v2", "long context", "multi-doc", 503, 1, 1.6),
]

TOPICS = {"math": ["algebra", "geometry", "number theory", "combinatorics"],
          "science": ["physics", "chemistry", "biology"], "code": ["strings", "graphs", "dp", "math"],
          "knowledge": ["law", "history", "medicine", "engineering"], "reasoning": ["logic", "temporal", "spatial"],
          "instruction following": ["format", "length", "keywords"], "safety": ["misconceptions", "health"],
          "long context": ["qa", "summarisation"]}

BASELINES = [("gpt-4o", "GPT-4o", 1.2), ("claude-3.5-sonnet", "Claude 3.5 Sonnet", 1.35),
             ("qwen-2.5-72b", "Qwen 2.5 72B", 0.9), ("deepseek-v3-0324", "DeepSeek V3 (0324)", 1.45),
             ("llama-3.1-70b", "Llama 3.1 70B", 0.6)]


def _benches(scale: str) -> list[Bench]:
    if scale == "small":
        return CORE
    out = list(CORE)
    cats = sorted({b.category for b in CORE})
    i = 0
    while len(out) < 40:
        c = cats[i % len(cats)]
        out.append(Bench(f"{c.split()[0]}-extra-{i:02d}", c, "extra", 400 + 50 * (i % 5), 1, -1 + (i % 7) * 0.4))
        i += 1
    return out


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _metrics(b: Bench, acc: float, rng: random.Random) -> dict[str, float]:
    if b.kind == "ifeval":
        return {"strict_prompt_accuracy": acc, "strict_instruction_accuracy": min(1, acc + 0.07),
                "loose_prompt_accuracy": min(1, acc + 0.03), "loose_instruction_accuracy": min(1, acc + 0.09)}
    m = {f"accuracy (avg over {b.samples})": acc}
    if b.samples > 1:
        m[f"bootstrap_std (avg over {b.samples})"] = math.sqrt(max(acc * (1 - acc), 1e-6) / b.n) * 0.9
    m["accuracy (pass@1)"] = acc
    if b.samples > 1:
        m[f"accuracy (pass@{b.samples})"] = min(1.0, acc + (1 - acc) * 0.45 + rng.uniform(0, 0.02))
    return m


def has_data(url: str) -> bool:
    with connect(url) as c:
        return c.execute("select exists(select 1 from models)").fetchone()[0]


def load_demo_data(url: str, *, scale: str = "small", seed: int = 0, with_examples: bool = True) -> str:
    """Load the demo; returns a one-line summary. Deterministic for a given seed."""
    t0 = time.time()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    benches = _benches(scale)
    if scale == "small":
        training = [("k2-think-v2", "K2 Think v2", "varad", 12, 500, 1.5, 32_000_000_000),
                    ("k2-base-v3", "K2 Base v3", "liping", 10, 1000, 0.9, 65_000_000_000),
                    ("k2-mini-sft", "K2 Mini SFT", "omar", 8, 250, 0.2, 7_000_000_000)]
    else:
        training = [(f"k2-run-{i:02d}", f"K2 run {i:02d}", ["varad", "liping", "omar"][i % 3], 100, 500,
                     0.4 + 0.12 * i, 32_000_000_000) for i in range(10)]
    n_results = n_examples = 0
    # Latent per-example difficulty, so neighbouring checkpoints agree on most examples.
    latent = {b.name: nrng.normal(b.difficulty, 1.3, size=b.n) for b in benches}
    # Which datasets get example rows (small: all; llm360: enough for ≥ 5M rows).
    with connect(url, row_factory=dict_row) as conn:
        with conn.transaction():
            for b in benches:
                conn.execute(
                    """insert into benchmark_metadata (dataset_name, category, subcategory, primary_metric,
                                                       description)
                       values (%s, %s, %s, null, %s) on conflict (dataset_name) do update
                       set category = excluded.category, subcategory = excluded.subcategory""",
                    (b.name, b.category, b.subcategory, f"{b.n} examples"))
            suites = [("core", "Core capabilities", "The release dashboard's datasets", [b.name for b in benches[:8]]),
                      ("math", "Math", "Math reasoning", [b.name for b in benches if b.category == "math"]),
                      ("release-gate", "Release gate", "What a checkpoint must pass to ship",
                       ["gsm8k", "math500", "humaneval", "mmlu_pro", "ifeval"])]
            for sid, dn, desc, names in suites:
                conn.execute(
                    """insert into suites (suite_id, display_name, description, dataset_names) values (%s,%s,%s,%s)
                       on conflict (suite_id) do update set dataset_names = excluded.dataset_names""",
                    (sid, dn, desc, names))
            conn.execute(
                """insert into promotion_rules (rule_name, model_id, suite_id, min_scores, no_regressions, description)
                   values ('release-gate', null, 'release-gate', %s, true,
                           'Release gate: minimum scores and no significant regression')
                   on conflict (rule_name) do nothing""",
                (Jsonb({"gsm8k": 0.80, "math500": 0.55, "humaneval": 0.6}),))

        def post(model_id, dn, owner, mtype, cid, step, b, acc, n_ex, pc, examples_acc=None):
            nonlocal n_results, n_examples
            correct = None
            if examples_acc is not None and with_examples:
                # Per-example outcomes from a latent difficulty per example (so neighbouring
                # checkpoints agree on most examples); the posted score is their mean, as a grader's is.
                p_ex = 1 / (1 + np.exp(-(examples_acc - latent[b.name])))
                correct = nrng.random(b.n) < p_ex
                obs = float(correct.mean())
            else:
                obs = nrng.binomial(n_ex, min(max(acc, 0.0), 1.0)) / n_ex
            r = EvalResultIn(
                model_id=model_id, display_name=dn, owner=owner, model_type=mtype, checkpoint_id=cid,
                training_step=step, dataset_name=b.name, metrics=_metrics(b, obs, rng), sample_count=n_ex,
                harness_commit="9f3c2e1", grader_type="math_verify" if b.category == "math" else "exact_match",
                grader_version="2.1", dataset_version="2026.1", seed=1234, param_count=pc,
                eval_config={"temperature": 0.6, "top_p": 0.95, "n": b.samples},
                inference_config={"max_tokens": 32768, "engine": "vllm"},
                training_run=f"{model_id}-main" if mtype == "training" else None,
                recipe_tags=["sft", "rl"] if mtype == "training" else [],
            )
            out = store_eval_result(conn, r, source="demo", actor="demo")
            n_results += 1
            if correct is not None:
                tops = TOPICS.get(b.category, ["general"])
                answers = [str((i * 7) % 97) for i in range(b.n)]
                rows = [ExampleIn(
                    example_idx=i, correct=bool(correct[i]), score=float(correct[i]),
                    input_preview=f"[{b.name} #{i}] " + _question(b, i),
                    output_preview=f"The answer is {answers[i]}" if correct[i] else "I believe the answer is 12.",
                    ground_truth=answers[i],
                    error_tag=None if correct[i] else rng.choice(["wrong_answer", "wrong_answer", "format_error",
                                                                  "timeout"]),
                    topic=tops[i % len(tops)], difficulty=_difficulty(latent[b.name][i] - b.difficulty),
                    subtask=None, metadata={"source_row": i}) for i in range(b.n)]
                n_examples += store_examples(conn, out.eval_run_id, rows, actor="demo")
            return out

        for model_id, dn, owner, n_ck, every, skill, pc in training:
            ceiling = {b.name: skill + rng.uniform(-0.3, 0.3) for b in benches}
            regress_at = {}
            if scale == "small" and model_id == "k2-think-v2":
                regress_at = {"gpqa_diamond": n_ck - 2}  # a real drop at the second-to-last checkpoint
            for k in range(n_ck):
                step = (k + 1) * every
                progress = 1 - math.exp(-3.0 * (k + 1) / n_ck)
                with conn.transaction():
                    for b in benches:
                        if scale == "small" and k == n_ck - 1 and b.name == "longbench-v2" and model_id != "k2-mini-sft":
                            continue  # a missing evaluation on the latest checkpoint
                        ability = ceiling[b.name] * progress - 0.8 + 0.8 * progress
                        if regress_at.get(b.name) == k:
                            ability -= 1.1
                        acc = _sigmoid(ability - b.difficulty + 0.5)
                        n_ex = b.n
                        want_examples = scale == "small" and k >= n_ck - 3 and b.n <= 1400
                        if scale != "small":
                            want_examples = k >= n_ck - 12 and b.n >= 400
                        post(model_id, dn, owner, "training", f"{model_id}__step-{step}", step, b, acc, n_ex, pc,
                             ability + 0.5 if want_examples else None)
        for model_id, dn, skill in BASELINES:
            with conn.transaction():
                for b in benches:
                    ability = skill + rng.uniform(-0.25, 0.25)
                    acc = _sigmoid(ability - b.difficulty + 0.5)
                    post(model_id, dn, "external", "baseline", model_id, None, b, acc, b.n, None,
                         ability + 0.5 if (scale == "small" and b.n <= 1400) else None)
        # Judge alerts and promotions now, so the demo shows them at once (the loader writes
        # without the API, whose ingest hook would have judged each result as it arrived).
        from ..ops.alerts import rejudge_all

        rejudge_all(conn)
        n_alerts = conn.execute("select count(*) as n from alerts where resolved_at is null").fetchone()["n"]
    return (f"demo data ({scale}): {n_alerts} open alerts, {len(training)} training models, {len(BASELINES)} baselines, "
            f"{len(benches)} datasets, {n_results} eval results, {n_examples} example rows "
            f"in {time.time() - t0:.1f}s")


def _question(b: Bench, i: int) -> str:
    if b.category == "math":
        return f"Let n = {i + 3}. Compute the remainder when n^{(i % 5) + 2} + {i} is divided by 97."
    if b.category == "code":
        return f"Write a function solve_{i}(xs) that returns the longest increasing run in xs."
    if b.category == "instruction following":
        return f"Write a {i % 4 + 2}-paragraph note about rivers. Use the word 'delta' at least {i % 3 + 1} times."
    return f"Question {i}: which of the following best explains observation #{i % 50}? (A) … (B) … (C) … (D) …"


def _difficulty(z: float) -> str:
    """Label from an example's latent difficulty relative to its dataset's mean."""
    return "easy" if z < -0.6 else ("medium" if z < 0.6 else "hard")
