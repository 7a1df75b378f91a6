"""Payload builders shared by the tests."""

from __future__ import annotations


def scheduler_payload(**over) -> dict:
    """The full payload the Eval360-V2 scheduler sends (every field of formats §4)."""
    p = {
        "model_id": "k2-think-v2",
        "display_name": "K2 Think v2",
        "owner": "varad",
        "checkpoint_id": "k2-think-v2__step-5000",
        "dataset_name": "aime-2026",
        "metrics": {
            "accuracy (avg over 32)": 0.8145833333333333,
            "bootstrap_std (avg over 32)": 0.05537456593133109,
            "accuracy (pass@1)": 0.8145833333333333,
            "accuracy (pass@2)": 0.8666666666666667,
        },
        "model_type": "training",
        "training_step": 5000,
        "checkpoint_path": "/mnt/weka/ckpt/k2-think-v2/step-5000",
        "primary_metric": "accuracy (avg over 32)",
        "eval_config": {"temperature": 0.6, "n": 32},
        "metadata": {"cluster": "weka"},
        "eval_run_id": "run-aime-5000-a",
        "harness_commit": "abc1234",
        "grader_type": "math_verify",
        "grader_version": "1.2",
        "prompt_template": "Solve: {problem}",
        "inference_config": {"max_tokens": 32768},
        "dataset_version": "2026.1",
        "dataset_split": "test",
        "sample_count": 30,
        "seed": 1234,
        "status": "completed",
        "error_message": None,
        "training_run": "k2-think-v2-rl",
        "recipe_tags": ["rl", "math"],
        "ci_lower": None,
        "ci_upper": None,
        "stderr": None,
        "category": "math",
        "subcategory": "competition",
        "param_count": 32_000_000_000,
    }
    p.update(over)
    return p


def minimal_payload(**over) -> dict:
    p = {
        "model_id": "k2-think-v2",
        "display_name": "K2 Think v2",
        "owner": "varad",
        "checkpoint_id": "k2-think-v2__step-5000",
        "dataset_name": "gpqa_diamond",
        "metrics": {"accuracy (avg over 8)": 0.61},
    }
    p.update(over)
    return p
