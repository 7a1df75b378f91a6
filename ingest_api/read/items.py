"""Example analytics across training (issue 17): slice trends, item histories, dataset items.

Every function reads the current, completed runs of a model × dataset (or of a dataset) from
v_example_run_outcomes: one row per checkpoint with the outcome bits of its examples (bit i: example i
answered right; is_correct, else score >= 0.5). Item histories and dataset items are computed from
those bits in numpy (one row per checkpoint, not per example); slice trends group the example rows of
those runs from example_slice_stats (per-run slice counts kept by triggers, sql/functions/10_example_facts.sql). Rules (labels, trend test, suspect labels) are in docs/views.md.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import psycopg
from psycopg.rows import dict_row, tuple_row

from .. import stats
from ..core.errors import not_found
from . import catalog

Label = Literal["learned", "forgotten", "never", "always", "unstable"]
LABELS: tuple[str, ...] = ("learned", "forgotten", "never", "always", "unstable")

RUN_COLS = ("eval_run_id, model_id, model_type, checkpoint_id, training_step, dataset_name, n_examples, "
            "present_bits::text, outcome_bits::text")


# ------------------------------------------------------------------ shared


def _check(conn: psycopg.Connection, model_id: str | None, dataset: str) -> None:
    if model_id is not None and not catalog.model_exists(conn, model_id):
        raise not_found("model", model_id)
    if not catalog.dataset_exists(conn, dataset):
        raise not_found("dataset", dataset)


def _runs(conn: psycopg.Connection, dataset: str, model_id: str | None = None, *, bits: bool = True) -> list[tuple]:
    """Current completed runs with example rows, in training order (step, then run time)."""
    where = "dataset_name = %s" + (" and model_id = %s" if model_id is not None else "")
    params = (dataset, model_id) if model_id is not None else (dataset,)
    cols = RUN_COLS if bits else RUN_COLS.replace("present_bits::text, outcome_bits::text", "null, null")
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(f"select {cols} from v_example_run_outcomes where {where} "
                    "order by model_id, training_step nulls last, run_created_at, eval_run_id", params)
        return cur.fetchall()


def bit_matrix(bits: list[str], width: int | None = None) -> np.ndarray:
    """Bit strings ('0110…', bit i = example i) as a runs × examples boolean matrix, zero-padded."""
    width = width if width is not None else max((len(b) for b in bits), default=0)
    if not bits or width == 0:
        return np.zeros((len(bits), width), dtype=bool)
    text = "".join(b.ljust(width, "0") for b in bits).encode("ascii")  # one buffer, decoded at once
    return (np.frombuffer(text, dtype=np.uint8) == 49).reshape(len(bits), width)


def _labels(conn: psycopg.Connection, run_id: str, idx: list[int]) -> dict[int, dict]:
    """Slice labels and a short preview of the given examples, from one run."""
    if not idx:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select example_idx, topic, difficulty, subtask, left(input_preview, 200) as input_preview "
                    "from example_results where eval_run_id = %s and example_idx = any(%s)", (run_id, idx))
        return {r.pop("example_idx"): r for r in cur.fetchall()}


# ------------------------------------------------------------------ slice trends


def _wls_slope(x: np.ndarray, y: np.ndarray, var: np.ndarray) -> tuple[float, float] | None:
    """Weighted least-squares slope of y on x with weights 1/var and its standard error, the variance
    scaled up by the residual dispersion when the points scatter more than their variances say."""
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    w = 1.0 / var
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = float(np.sum(w * (x - xm) ** 2))
    slope = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
    resid = y - (ym + slope * (x - xm))
    dispersion = max(1.0, float(np.sum(w * resid ** 2)) / (len(x) - 2))
    return slope, math.sqrt(dispersion / sxx)


def _prop_var(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Binomial variance of a proportion, with p shrunk by (k + 0.5) / (n + 1) so 0/n and n/n keep weight."""
    p = (k + 0.5) / (n + 1.0)
    return p * (1 - p) / n


def slice_trends(conn: psycopg.Connection, model_id: str, dataset: str, dimension: str = "topic",
                 *, alpha: float = 0.05) -> dict:
    """Per checkpoint × slice value: n, correct, accuracy with its Wilson interval; per slice a test of
    whether its accuracy moves differently from the rest of the dataset over training (slope of the
    slice − rest gap against the step), Benjamini–Hochberg across the slices."""
    if dimension not in ("topic", "difficulty", "subtask"):
        raise ValueError(dimension)
    _check(conn, model_id, dataset)
    runs = _runs(conn, dataset, model_id, bits=False)
    ids = [r[0] for r in runs]
    with conn.cursor(row_factory=tuple_row) as cur:
        # example_slice_stats (sql/functions/10_example_facts.sql): the slice counts of each run, kept by triggers.
        cur.execute("select eval_run_id, slice, n_examples, n_correct, n_graded, score_sum "
                    "from example_slice_stats where eval_run_id = any(%s) and dimension = %s", (ids, dimension))
        counts = cur.fetchall()
    order = {rid: i for i, rid in enumerate(ids)}
    slices = sorted({c[1] for c in counts})
    s_idx = {s: j for j, s in enumerate(slices)}
    n = np.zeros((len(ids), len(slices)))
    k = np.zeros_like(n)
    graded = np.zeros_like(n)
    ssum = np.zeros_like(n)
    for rid, s, cn, ck, cg, cs in counts:
        i, j = order[rid], s_idx[s]
        n[i, j], k[i, j], graded[i, j], ssum[i, j] = cn, ck, cg, cs
    steps = [r[4] for r in runs]
    points: list[dict] = []
    tot_n, tot_k = n.sum(1), k.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = k / n
        lo, hi = stats.wilson_interval_array(np.nan_to_num(acc), n)
        t_acc = tot_k / tot_n
        t_lo, t_hi = stats.wilson_interval_array(np.nan_to_num(t_acc), tot_n)

    def _f(v: float) -> float | None:
        return v if math.isfinite(v) else None

    # Plain Python lists first: indexing numpy scalars in this loop cost ~50 ms per reply.
    nl, kl, gl, sl = n.tolist(), k.tolist(), graded.tolist(), ssum.tolist()
    al, lol, hil = acc.tolist(), lo.tolist(), hi.tolist()
    tn, tk, tg, ts = tot_n.tolist(), tot_k.tolist(), graded.sum(1).tolist(), ssum.sum(1).tolist()
    tal, tlo, thi = t_acc.tolist(), t_lo.tolist(), t_hi.tolist()
    for i, r in enumerate(runs):
        base = {"checkpoint_id": r[3], "training_step": steps[i], "eval_run_id": r[0]}
        for j, s in enumerate(slices):
            if nl[i][j] > 0:
                g = gl[i][j]
                points.append({**base, "slice": s, "n": int(nl[i][j]), "correct": int(kl[i][j]),
                               "accuracy": _f(al[i][j]), "ci_lower": _f(lol[i][j]), "ci_upper": _f(hil[i][j]),
                               "n_graded": int(g), "score_sum": sl[i][j], "mean_score": sl[i][j] / g if g else None})
        points.append({**base, "slice": "(all)", "n": int(tn[i]), "correct": int(tk[i]), "accuracy": _f(tal[i]),
                       "ci_lower": _f(tlo[i]), "ci_upper": _f(thi[i]), "n_graded": int(tg[i]),
                       "score_sum": ts[i], "mean_score": ts[i] / tg[i] if tg[i] else None})
    # The trend test: per slice, the gap d_t = acc(slice) − acc(rest) at each checkpoint t with a step;
    # its WLS slope against the step (per 1,000 steps) is 0 when the slice moves with the dataset.
    x_all = np.array([np.nan if s is None else s / 1000.0 for s in steps], dtype=float)
    tests: list[dict] = []
    for j, s in enumerate(slices):
        ns, ks = n[:, j], k[:, j]
        nr, kr = tot_n - ns, tot_k - ks
        ok = (ns > 0) & (nr > 0) & np.isfinite(x_all)
        row: dict[str, Any] = {"slice": s, "n_checkpoints": int(ok.sum()), "slope_slice": None, "slope_rest": None,
                               "slope_gap": None, "slope_gap_ci_lower": None, "slope_gap_ci_upper": None,
                               "z": None, "p_value": None}
        if ok.sum() >= 3:
            x = x_all[ok]
            fit_gap = _wls_slope(x, ks[ok] / ns[ok] - kr[ok] / nr[ok], _prop_var(ks[ok], ns[ok]) +
                                 _prop_var(kr[ok], nr[ok]))
            fit_s = _wls_slope(x, ks[ok] / ns[ok], _prop_var(ks[ok], ns[ok]))
            fit_r = _wls_slope(x, kr[ok] / nr[ok], _prop_var(kr[ok], nr[ok]))
            if fit_gap is not None:
                b, se = fit_gap
                z = b / se if se > 0 else 0.0
                row.update(slope_slice=fit_s[0] if fit_s else None, slope_rest=fit_r[0] if fit_r else None,
                           slope_gap=b, slope_gap_ci_lower=b - stats.Z95 * se, slope_gap_ci_upper=b + stats.Z95 * se,
                           z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))
        tests.append(row)
    qs = stats.benjamini_hochberg([t["p_value"] for t in tests])
    for t, qv in zip(tests, qs):
        t["q_value"] = qv
        if qv is None:
            t["verdict"] = "insufficient_data"
        elif qv < alpha:
            t["verdict"] = "falls_behind" if t["slope_gap"] < 0 else "pulls_ahead"
        else:
            t["verdict"] = "moves_with_dataset"
    return {"model_id": model_id, "dataset_name": dataset, "dimension": dimension, "alpha": alpha,
            "n_checkpoints": len(runs), "slices": slices, "points": points, "tests": tests,
            "interval_method": "wilson",
            "test": "WLS slope of (slice − rest) accuracy vs step (per 1,000 steps), dispersion-scaled z; "
                    "Benjamini–Hochberg across slices"}


# ------------------------------------------------------------------ item histories


def histories(present: np.ndarray, outcome: np.ndarray) -> dict[str, np.ndarray]:
    """Per example (column) over checkpoints (rows, training order): counts, flips and the stability label.

    Only checkpoints where the example is present count; consecutive means consecutive among those.
    """
    t, width = present.shape
    if t == 0:  # no run: no example either
        present = outcome = np.zeros((1, width), dtype=bool)
        t = 1
    if present.all():  # the usual case: every checkpoint has every example
        order = np.broadcast_to(np.arange(t)[:, None], (t, width))
        pc, oc = present, outcome
    else:  # compact each column: present rows first, training order kept
        order = np.argsort(~present, axis=0, kind="stable")
        pc = np.take_along_axis(present, order, axis=0)
        oc = np.take_along_axis(outcome & present, order, axis=0)
    n_present = np.count_nonzero(present, axis=0)
    n_solved = np.count_nonzero(oc, axis=0)
    if t >= 2:
        pair = pc[1:] & pc[:-1]
        change = (oc[1:] != oc[:-1]) & pair
        up, down = change & oc[1:], change & ~oc[1:]
    else:
        change = up = down = np.zeros((0, width), dtype=bool)
    flips = np.count_nonzero(change, axis=0)
    n_up, n_down = np.count_nonzero(up, axis=0), np.count_nonzero(down, axis=0)
    first_row = np.where(n_solved > 0, np.argmax(oc, axis=0), -1)
    last_down = np.where(n_down > 0, t - 1 - np.argmax(down[::-1], axis=0), -1) if t >= 2 else np.full(width, -1)
    first_out = oc[0]
    last_idx = np.maximum(n_present - 1, 0)
    last_out = oc[last_idx, np.arange(width)]
    label = np.full(width, "unstable", dtype=object)
    label[(flips == 1) & (n_up == 1)] = "learned"
    label[((flips == 1) & (n_down == 1)) | ((flips == 2) & ~first_out & ~last_out)] = "forgotten"
    label[n_solved == 0] = "never"
    label[(n_solved == n_present) & (n_present > 0)] = "always"
    label[n_present == 0] = None
    return {"order": order, "change": change, "up": up, "n_present": n_present, "n_solved": n_solved,
            "flips": flips, "first_row": first_row, "last_down_row": last_down, "last_outcome": last_out,
            "label": label}


def model_items(conn: psycopg.Connection, model_id: str, dataset: str, *, label: str | None = None,
                limit: int = 100, offset: int = 0, sort: str = "example_idx") -> dict:
    """Per example of one model × dataset across its checkpoints: pass rate, first step solved, step last
    lost, flips, label (rules in docs/views.md), paged; with the checkpoints where the outcome changed."""
    _check(conn, model_id, dataset)
    runs = _runs(conn, dataset, model_id)
    present, outcome = bit_matrix([r[7] for r in runs]), None
    outcome = bit_matrix([r[8] for r in runs], present.shape[1])
    h = histories(present, outcome)
    counts = {lab: int(np.sum(h["label"] == lab)) for lab in LABELS}
    cols = np.flatnonzero(h["n_present"] > 0)
    if label is not None:
        cols = cols[h["label"][cols] == label]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = h["n_solved"] / h["n_present"]
    if sort == "flips":
        cols = cols[np.lexsort((cols, -h["flips"][cols]))]
    elif sort == "pass_rate":
        cols = cols[np.lexsort((cols, rate[cols]))]
    total = len(cols)
    page = cols[offset:offset + limit]
    latest = runs[-1][0] if runs else None
    info = _labels(conn, latest, [int(j) for j in page]) if latest else {}
    order, change, up = h["order"], h["change"], h["up"]
    items = []
    for j in page:
        j = int(j)

        def at(row: int, j: int = j) -> tuple:
            return runs[int(order[row, j])]

        changes = [{"training_step": at(i + 1)[4], "checkpoint_id": at(i + 1)[3], "eval_run_id": at(i + 1)[0],
                    "previous_eval_run_id": at(i)[0], "to": "right" if up[i, j] else "wrong"}
                   for i in np.flatnonzero(change[:, j])]
        fr, ld = int(h["first_row"][j]), int(h["last_down_row"][j])
        meta = info.get(j, {})
        items.append({"example_idx": j, "label": h["label"][j], "n_checkpoints": int(h["n_present"][j]),
                      "n_solved": int(h["n_solved"][j]), "pass_rate": float(rate[j]),
                      "first_step_solved": at(fr)[4] if fr >= 0 else None,
                      "first_checkpoint_solved": at(fr)[3] if fr >= 0 else None,
                      "last_lost_step": at(ld)[4] if ld >= 0 else None,
                      "last_lost_checkpoint": at(ld)[3] if ld >= 0 else None,
                      "n_flips": int(h["flips"][j]), "solved_at_latest": bool(h["last_outcome"][j]),
                      "topic": meta.get("topic"), "difficulty": meta.get("difficulty"),
                      "subtask": meta.get("subtask"), "input_preview": meta.get("input_preview"),
                      "changes": changes})
    return {"model_id": model_id, "dataset_name": dataset, "n_checkpoints": len(runs),
            "checkpoints": [{"checkpoint_id": r[3], "training_step": r[4], "eval_run_id": r[0]} for r in runs],
            "label_counts": counts, "label": label, "sort": sort, "total": total, "limit": limit,
            "offset": offset, "items": items}


# ------------------------------------------------------------------ dataset items


def runs_needed(p_min: float, fp: float) -> int:
    """Strong runs that must all miss an item before it is flagged: the least k with (1 − p_min)^k ≤ fp."""
    return max(1, math.ceil(math.log(fp) / math.log1p(-p_min) - 1e-12))


def dataset_items(conn: psycopg.Connection, dataset: str, *, strong_min: float = 0.5, p_min: float = 0.05,
                  fp: float = 0.01, suspect_only: bool = False, limit: int = 100, offset: int = 0,
                  sort: str = "example_idx") -> dict:
    """Per example of a dataset across every model and checkpoint that has it: pass rate, models that
    ever solved it, and the suspect-label flag (rule and false-positive bound in docs/views.md)."""
    _check(conn, None, dataset)
    runs = _runs(conn, dataset)
    present = bit_matrix([r[7] for r in runs])
    outcome = bit_matrix([r[8] for r in runs], present.shape[1]) & present
    n_present = np.count_nonzero(present, axis=0)
    n_solved = np.count_nonzero(outcome, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        run_acc = np.count_nonzero(outcome, axis=1) / np.count_nonzero(present, axis=1)
        rate = n_solved / n_present
    strong = run_acc >= strong_min
    models = [r[1] for r in runs]
    names = sorted(set(models))
    m_of = np.array([names.index(m) for m in models], dtype=int) if runs else np.zeros(0, dtype=int)
    solved_by = np.zeros((len(names), present.shape[1]), dtype=bool)
    seen_by = np.zeros_like(solved_by)
    strong_seen_by = np.zeros_like(solved_by)
    for m in range(len(names)):  # (np.logical_or.at is ~300× slower than a loop over the few models)
        rows = m_of == m
        solved_by[m] = outcome[rows].any(0)
        seen_by[m] = present[rows].any(0)
        strong_seen_by[m] = present[rows & strong].any(0)
    n_strong_runs = np.count_nonzero(present[strong], axis=0)
    n_strong_models = np.count_nonzero(strong_seen_by, axis=0)
    k_needed = runs_needed(p_min, fp)
    suspect = (n_solved == 0) & (n_strong_runs >= k_needed) & (n_strong_models >= 2)
    cols = np.flatnonzero(n_present > 0)
    n_items = len(cols)
    if suspect_only:
        cols = cols[suspect[cols]]
    if sort == "pass_rate":
        cols = cols[np.lexsort((cols, rate[cols]))]
    total = len(cols)
    page = cols[offset:offset + limit]
    latest = max(runs, key=lambda r: (r[4] is not None, r[4] or 0))[0] if runs else None
    info = _labels(conn, latest, [int(j) for j in page]) if latest else {}
    items = []
    for j in page:
        j = int(j)
        meta = info.get(j, {})
        items.append({"example_idx": j, "n_runs": int(n_present[j]), "n_solved": int(n_solved[j]),
                      "pass_rate": float(rate[j]), "n_models": int(seen_by[:, j].sum()),
                      "models_solved": [names[m] for m in np.flatnonzero(solved_by[:, j])],
                      "n_strong_runs": int(n_strong_runs[j]), "n_strong_models": int(n_strong_models[j]),
                      "suspect_label": bool(suspect[j]),
                      "false_positive_bound": float((1 - p_min) ** n_strong_runs[j]) if suspect[j] else None,
                      "topic": meta.get("topic"), "difficulty": meta.get("difficulty"),
                      "subtask": meta.get("subtask"), "input_preview": meta.get("input_preview")})
    return {"dataset_name": dataset, "n_runs": len(runs), "n_models": len(names), "n_strong_runs": int(strong.sum()),
            "n_items": n_items, "n_never_solved": int(np.sum((n_solved == 0) & (n_present > 0))),
            "n_suspect": int(suspect.sum()),
            "rule": {"strong_min": strong_min, "p_min": p_min, "fp": fp, "strong_runs_needed": k_needed,
                     "text": f"suspect: no run of any model solves it, while at least {k_needed} strong runs "
                             f"(accuracy >= {strong_min} on this dataset) from at least 2 models attempted it; "
                             f"an item each strong run solves with probability >= {p_min} is flagged with "
                             f"probability <= (1 - {p_min})^{k_needed} <= {fp}"},
            "suspect_only": suspect_only, "sort": sort, "total": total, "limit": limit, "offset": offset,
            "items": items}
