"""Example browser: one eval run's examples, filtered and paginated, previews shown as plain text; slices."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import (
    chart,
    empty,
    fnum,
    fpct,
    load,
    md_escape,
    qp,
    qp_int,
    select,
    sync_qp,
    table,
    url_tabs,
    with_interval,
)

url = data.database_url()
st.title("Example browser")

runs = load(data.runs_with_examples, url, what="eval runs with examples")
if not runs:
    empty("No eval run has per-example rows yet. Send them with `POST /api/ingest/examples`, import them with "
          "`python backfill.py --output-dir <dir> --model-id <model> --with-examples`, or load the demo with "
          "`eval360 demo-data`.")
    st.stop()

# The run: from the URL (?run=…), else model → dataset → checkpoint pickers.
want_run = qp("run")
by_id = {r["eval_run_id"]: r for r in runs}
if want_run and want_run not in by_id and "ex_run" not in st.session_state:
    # A link naming an unknown run says so; no other run is shown in its place and the URL is kept.
    run_info = load(data.eval_run, url, want_run, what="the eval run")
    if run_info is None:
        st.error(f"Unknown eval run in this link: “{md_escape(want_run)}” does not exist.", icon=":material/link_off:")
    else:
        st.error(f"Eval run “{md_escape(want_run)}” has no example rows (or is not the current run).",
                 icon=":material/link_off:")
    st.page_link("app_pages/examples.py", label="Browse the eval runs that have examples", icon=":material/list_alt:")
    st.stop()
if want_run not in by_id:
    want_run = None
pre = by_id.get(want_run) if want_run else None
types = {r["model_id"]: r["model_type"] for r in runs}
models = sorted(types, key=lambda m: (types[m] != "training", m))
c1, c2, c3 = st.columns(3)
m_default = pre["model_id"] if pre else models[0]
model_id = c1.selectbox("Model", models, index=models.index(m_default), key="ex_model")
ds_opts = sorted({r["dataset_name"] for r in runs if r["model_id"] == model_id})
ds_default = pre["dataset_name"] if pre and pre["dataset_name"] in ds_opts else ds_opts[0]
dataset = c2.selectbox("Dataset", ds_opts, index=ds_opts.index(ds_default), key="ex_dataset")
run_opts = [r for r in runs if r["model_id"] == model_id and r["dataset_name"] == dataset]
run_ids = [r["eval_run_id"] for r in run_opts]
labels = {r["eval_run_id"]: ("baseline" if r["training_step"] is None else f"step {r['training_step']:,}")
          + f" · {r['n_examples']} examples" for r in run_opts}
run_id = c3.selectbox("Checkpoint", run_ids, index=run_ids.index(pre["eval_run_id"]) if pre and
                      pre["eval_run_id"] in run_ids else 0, format_func=labels.get, key="ex_run")

run = load(data.eval_run, url, run_id, what="the eval run")
slices = load(data.run_slices, url, run_id, what="the slices")
iv = run["interval"]
k1, k2, k3, k4 = st.columns(4)
k1.metric(f"Primary ({md_escape(run['primary_metric'])})", fnum(run["primary_value"]),
          help=f"{iv['interval_method'] or 'no'} 95% interval [{fnum(iv['ci_lower'])}, {fnum(iv['ci_upper'])}], "
               f"n={iv['n']}")
k2.metric("Example accuracy", fpct(run["accuracy"]), help=f"{run['n_correct']} of {run['n_examples']} correct")
k3.metric("Examples", run["n_examples"])
k4.metric("Step", "—" if run["training_step"] is None else f"{run['training_step']:,}")
st.text(f"primary {with_interval(run['primary_value'], iv['ci_lower'], iv['ci_upper'], iv['n'])} "
        f"({iv['interval_method'] or 'no'} 95% interval)\n"
        f"eval run {run_id} · checkpoint {run['checkpoint_id']} · grader {run['grader_type']} "
        f"{run['grader_version'] or ''} · harness {run['harness_commit'] or '—'} · dataset version "
        f"{run['dataset_version'] or '—'}")

sync_qp(run=run_id)
view = url_tabs({"examples": "Examples", "slices": "Slices", "steps": "Slices across checkpoints"}, param="tab",
                key="ex_view")

if view == "examples":
    topics = sorted(slices["by_topic"]) if slices else []
    diffs = sorted(slices["by_difficulty"]) if slices else []
    f1, f2, f3, f4 = st.columns([1, 1, 1, 2])
    correct = select("Outcome", ["all", "correct", "incorrect"], param="correct", key="ex_correct", container=f1)
    topic = select("Topic", ["(any)"] + topics, param="topic", key="ex_topic", container=f2)
    difficulty = select("Difficulty", ["(any)"] + diffs, param="difficulty", key="ex_difficulty", container=f3)
    search = f4.text_input("Text contains", value=qp("q", "") or "", key="ex_search",
                           help="Searches the input, the output and the ground truth (case-insensitive).")
    p1, p2 = st.columns([1, 3])
    page_size = int(p1.selectbox("Per page", [25, 50, 100, 200], index=1, key="ex_page_size"))
    corr = None if correct == "all" else correct == "correct"
    t_val = None if topic == "(any)" else topic
    d_val = None if difficulty == "(any)" else difficulty
    first = load(data.run_examples, url, run_id, corr, t_val, d_val, search or None, 1, 0, what="the examples")
    total = first["total"] if first else 0
    pages = max(1, -(-total // page_size))
    page = int(p2.number_input(f"Page (of {pages})", min_value=1, max_value=pages,
                               value=min(max(1, qp_int("page", 1) or 1), pages), key="ex_page"))
    ex = load(data.run_examples, url, run_id, corr, t_val, d_val, search or None, page_size,
              (page - 1) * page_size, what="the examples")
    sync_qp(run=run_id, correct=None if correct == "all" else correct, topic=t_val, difficulty=d_val,
            q=search or None, page=page if page > 1 else None)
    st.caption(f"{total} examples match ({ex['correct_count']} correct"
               + (f", accuracy {fpct(ex['accuracy'])}" if ex["accuracy"] is not None else "") + ").")
    if not ex["examples"]:
        empty("No example matches these filters. Clear the outcome, topic, difficulty or text filter.")
    else:
        edf = pd.DataFrame(ex["examples"])[["example_idx", "correct", "score", "topic", "difficulty", "subtask",
                                            "error_tag", "input_preview", "output_preview", "ground_truth"]]
        table(edf, name=f"examples_{run_id}_p{page}", key="ex_table")
        st.subheader("Full preview")
        idx_opts = edf["example_idx"].tolist()
        want_ex = qp_int("example")
        ex_idx = st.selectbox("Example", idx_opts, index=idx_opts.index(want_ex) if want_ex in idx_opts else 0,
                              key="ex_pick")
        sync_qp(example=ex_idx if want_ex is not None or ex_idx != idx_opts[0] else None)
        row = next(e for e in ex["examples"] if e["example_idx"] == ex_idx)
        st.text(f"example {row['example_idx']} · "
                + ("correct" if row["correct"] else "incorrect" if row["correct"] is not None else "ungraded")
                + (f" · score {row['score']}" if row["score"] is not None else "")
                + f" · topic {row['topic'] or '—'} · difficulty {row['difficulty'] or '—'}"
                + (f" · error {row['error_tag']}" if row["error_tag"] else ""))
        # Previews are model/dataset text: shown as code blocks (plain text), never as Markdown or HTML.
        for label, key in (("Input", "input_preview"), ("Output", "output_preview"), ("Ground truth", "ground_truth")):
            st.text(label)
            st.code(row[key] or "", language=None, wrap_lines=True)

if view == "slices":
    if not slices or not slices["total"]:
        empty("This run has no example rows to slice.")
    else:
        st.text(slices["error_concentration"])
        for dim, key in (("topic", "by_topic"), ("difficulty", "by_difficulty"), ("subtask", "by_subtask")):
            part = slices.get(key) or {}
            if not part or list(part) == ["unspecified"]:
                continue
            sdf = pd.DataFrame([{"slice": k, **v} for k, v in part.items()])
            sdf["label"] = [f"{a:.2f} (n={n})" for a, n in zip(sdf["accuracy"], sdf["total"])]
            st.subheader(f"By {dim}")
            chart("slices", sdf[["slice", "accuracy", "ci_lower", "ci_upper", "total", "label"]],
                  title=f"accuracy by {dim}, 95% interval")
            table(sdf.drop(columns=["label"]), name=f"slices_{dim}_{run_id}", key=f"ex_slices_{dim}")

if view == "steps":
    dim = st.radio("Slice by", ["topic", "difficulty"], horizontal=True, key="ex_steps_dim")
    rows = load(data.slices_across_runs, url, tuple(run_ids), dim, what="slices across checkpoints")
    sdf = pd.DataFrame(rows)
    if sdf.empty or sdf["training_step"].isna().all():
        empty("Slices across checkpoints need example rows on several training checkpoints of this model.")
    else:
        sdf["accuracy"] = sdf["n_correct"] / sdf["n_examples"]
        chart("slices_over_steps", sdf[["training_step", "slice", "accuracy", "n_examples"]],
              title=f"{model_id} on {dataset}: accuracy by {dim} over checkpoints")
        table(sdf, name=f"slices_over_steps_{model_id}_{dataset}", key="ex_steps_table")
