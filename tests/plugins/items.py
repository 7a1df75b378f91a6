"""Example-analytics tests' data (issue 17): item histories, slices and suspect items known by construction,
written with SQL."""

from __future__ import annotations

import psycopg

# Item histories of model m1 on dataset dsI over steps 1000..6000 (1 = right).
HISTORIES = {
    0: [0, 0, 1, 1, 1, 1],  # learned at 3000
    1: [1, 1, 1, 1, 0, 0],  # forgotten at 5000
    2: [0, 1, 1, 0, 0, 0],  # learned at 2000, forgotten at 4000
    3: [0, 0, 0, 0, 0, 0],  # never
    4: [1, 1, 1, 1, 1, 1],  # always
    5: [1, 0, 1, 0, 1, 0],  # unstable: flips at every checkpoint
    6: [0, 1, 0, 1, 1, 1],  # unstable: relearned
}


STEPS = [1000, 2000, 3000, 4000, 5000, 6000]


def insert_runs(url: str, runs: list[tuple[str, str, int | None, str]], examples: list[tuple],
            model_types: dict[str, str] | None = None) -> None:
    """runs: (run id, model, step or None, dataset); examples: (run id, idx, is_correct, topic)."""
    models = sorted({r[1] for r in runs})
    types = model_types or {}
    with psycopg.connect(url, autocommit=True) as c, c.cursor() as cur:
        cur.executemany("insert into models (model_id, display_name, model_type) values (%s, %s, %s) "
                        "on conflict do nothing", [(m, m.upper(), types.get(m, "training")) for m in models])
        ckpts = {(m, s) for _, m, s, _ in runs}
        cur.executemany("insert into checkpoints (checkpoint_id, model_id, training_step) values (%s, %s, %s) "
                        "on conflict do nothing",
                        [(f"{m}__step-{s}" if s is not None else f"{m}__baseline", m, s) for m, s in ckpts])
        cur.executemany("insert into eval_runs (eval_run_id, checkpoint_id, model_id, dataset_name, status) "
                        "values (%s, %s, %s, %s, 'completed')",
                        [(r, f"{m}__step-{s}" if s is not None else f"{m}__baseline", m, d) for r, m, s, d in runs])
        cur.executemany("insert into eval_results (eval_run_id, metric_name, metric_value, is_primary) "
                        "values (%s, 'accuracy', 0.5, true)", [(r[0],) for r in runs])
        with cur.copy("copy example_results (eval_run_id, example_idx, is_correct, score, topic) from stdin") as cp:
            for rid, idx, ok, topic in examples:
                cp.write_row((rid, idx, ok, 1.0 if ok else 0.0, topic))


def slice_runs(dataset: str, trends: dict[str, tuple[float, float]], n_per: int = 200, n_ckpt: int = 10):
    """Accuracy of each topic goes linearly from a to b over the checkpoints; at each checkpoint the first
    round(n·p) items of the topic are right (exact counts by construction)."""
    runs, ex, truth = [], [], {}
    for t in range(n_ckpt):
        step = (t + 1) * 1000
        rid = f"{dataset}-{step}"
        runs.append((rid, "m1", step, dataset))
        for ti, (topic, (a, b)) in enumerate(trends.items()):
            k = round(n_per * (a + (b - a) * t / (n_ckpt - 1)))
            truth[(step, topic)] = k
            for j in range(n_per):
                ex.append((rid, ti * n_per + j, j < k, topic))
    return runs, ex, truth


def suspect_db(db):
    # strong models a and b (3 checkpoints each) solve items 0..7 of 10; weak model c solves 0, 1 and, once, 8.
    runs, ex = [], []
    for m in ("a", "b", "c"):
        for s in (1000, 2000, 3000):
            rid = f"{m}{s}"
            runs.append((rid, m, s, "dsU"))
            for i in range(10):
                if m in ("a", "b"):
                    ok = i < 8
                else:
                    ok = i < 2 or (i == 8 and s == 2000)
                ex.append((rid, i, ok, None))
    insert_runs(db, runs, ex)
