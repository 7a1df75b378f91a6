"""Dashboard pages rendered with streamlit.testing.v1.AppTest against a seeded real PostgreSQL.

The fixture is small and known: expected numbers are computed here from the posted values
(not by calling the code under test), so a page that shows the wrong number fails.
"""

from __future__ import annotations

import math
from pathlib import Path

import psycopg
import pytest
import streamlit as st
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from streamlit.testing.v1 import AppTest

from ingest_api.ingest.schemas import EvalResultIn, ExampleIn
from ingest_api.ingest.store import store_eval_result, store_examples

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
ADMIN_TOKEN = "dash-admin-token"
N = 200  # sample count of every posted result

# model → dataset → value (training: {step: value}); baselines have one value per dataset.
TRAIN = {"alpha": {"ds_math": {100: 0.50, 200: 0.60}, "ds_code": {100: 0.30, 200: 0.35}}}
BASE = {"base": {"ds_math": 0.70, "ds_code": 0.40}}
CATEGORY = {"ds_math": "math", "ds_code": "code"}
SCRIPT = "<script>alert('x')</script><b>bold html</b>"
MARKDOWN = "**not bold** _not italic_ [a link](javascript:alert(1)) # not a heading"

PAGES = ["observatory", "model", "leaderboard", "compare", "examples", "activity", "sql"]


def wilson(p: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval, written out here independently of ingest_api.stats."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def _post(conn, model_id, mtype, step, dataset, value):
    cid = f"{model_id}__step-{step}" if step is not None else model_id
    return store_eval_result(conn, EvalResultIn(
        model_id=model_id, display_name=model_id.title(), owner="team-a" if mtype == "training" else "external",
        model_type=mtype, checkpoint_id=cid, training_step=step, dataset_name=dataset,
        metrics={"accuracy": value}, sample_count=N), source="test", actor="test")


def seed(url: str) -> dict:
    """Post the known fixture; returns ids the tests need."""
    out = {}
    with psycopg.connect(url, row_factory=dict_row) as conn, conn.transaction():
        for ds, cat in CATEGORY.items():
            conn.execute("insert into benchmark_metadata (dataset_name, category) values (%s, %s) "
                         "on conflict (dataset_name) do update set category = excluded.category", (ds, cat))
        conn.execute("insert into suites (suite_id, display_name, dataset_names) values ('only-math', "
                     "'Only math', %s)", (["ds_math"],))
        for m, per in TRAIN.items():
            for ds, steps in per.items():
                for step, v in steps.items():
                    r = _post(conn, m, "training", step, ds, v)
                    out[(m, ds, step)] = r.eval_run_id
        for m, per in BASE.items():
            for ds, v in per.items():
                r = _post(conn, m, "baseline", None, ds, v)
                out[(m, ds, None)] = r.eval_run_id
        run = out[("alpha", "ds_math", 200)]
        # As many example rows as the sample count, 120 of 200 correct: consistent with accuracy 0.60.
        rows = [ExampleIn(example_idx=i, correct=i < 120, score=1.0 if i < 120 else 0.0,
                          input_preview=f"question {i}", output_preview=f"answer {i}", ground_truth=str(i),
                          topic="algebra" if i % 2 == 0 else "geometry", difficulty="easy" if i < 100 else "hard")
                for i in range(N)]
        rows[7] = rows[7].model_copy(update={"input_preview": SCRIPT, "output_preview": MARKDOWN})
        store_examples(conn, run, rows, actor="test")
        conn.execute(
            """insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message, detail)
               values ('regression', 'alpha', 'alpha__step-200', 'ds_code', 'critical',
                       'ds_code: accuracy fell (test alert)', %s)""", (Jsonb({"step": 200}),))
        out["alert_id"] = conn.execute("select id from alerts where message like '%%(test alert)'").fetchone()["id"]
    return out


@pytest.fixture
def env(db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("EVAL360_ADMIN_TOKEN", ADMIN_TOKEN)
    st.cache_data.clear()  # the caches are per process; each test starts cold
    yield db
    st.cache_data.clear()


@pytest.fixture
def seeded(env):
    return seed(env)


def render(page: str, /, **params: str | list[str]) -> AppTest:
    """Open a page as a browser would from a link: the URL's query parameters set before its first run."""
    at = AppTest.from_file(APP, default_timeout=120)
    if page == "observatory":
        at.query_params.update(params)
        return at.run()
    at.run()  # the home page first, so st.navigation has registered the pages
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page(f"app_pages/{page}.py")
    return at.run()


def no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def frame_with(at: AppTest, *cols: str):
    """The first dataframe shown that has all these columns."""
    for d in at.dataframe:
        if all(c in d.value.columns for c in cols):
            return d.value
    raise AssertionError(f"no dataframe with columns {cols}: {[list(d.value.columns) for d in at.dataframe]}")


def all_text(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "text", "info", "warning", "error", "success", "title", "subheader", "code"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


# ------------------------------------------------------------------ every page


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_seeded_db(seeded, page):
    at = render(page)
    no_failure(at)
    assert at.title, "page has a title"


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_shows_what_to_do(env, page):
    at = render(page)
    assert not at.exception, [e.value for e in at.exception]
    text = all_text(at)
    if page == "sql":
        assert "Write a query and press Run" in text
    elif page == "activity":
        assert "No alert matches" in text
        assert "No activity" in all_text(render("activity", view="feed"))
    else:
        assert "eval360 demo-data" in text, text


# ------------------------------------------------------------------ observatory


def test_observatory_shows_latest_scores_and_coverage(seeded):
    at = render("observatory")
    no_failure(at)
    cells = frame_with(at, "model_id", "dataset_name", "score", "status")
    got = {(r.model_id, r.dataset_name): r.score for r in cells.itertuples()}
    assert got[("alpha", "ds_math")] == pytest.approx(0.60)  # latest step (200), not the best
    assert got[("alpha", "ds_code")] == pytest.approx(0.35)
    assert got[("base", "ds_math")] == pytest.approx(0.70)
    base_row = cells[(cells.model_id == "base") & (cells.dataset_name == "ds_math")].iloc[0]
    lo, hi = wilson(0.70, N)
    assert base_row.ci_lower == pytest.approx(lo, abs=1e-9) and base_row.ci_upper == pytest.approx(hi, abs=1e-9)
    assert base_row.n == N
    cov = frame_with(at, "evaluated", "total", "missing")
    assert dict(zip(cov.model_id, cov.evaluated)) == {"alpha": 2, "base": 2}
    assert set(cov.total) == {2}


def test_observatory_filters_change_content(seeded):
    at = render("observatory")
    at.selectbox(key="obs_type").set_value("baseline").run()
    no_failure(at)
    cells = frame_with(at, "model_id", "dataset_name", "score")
    assert set(cells.model_id) == {"base"}
    assert at.query_params["type"] == "baseline"

    at = render("observatory", category="code")
    no_failure(at)
    assert set(frame_with(at, "model_id", "dataset_name", "score").dataset_name) == {"ds_code"}

    at = render("observatory", suite="only-math", score="best")
    no_failure(at)
    cells = frame_with(at, "model_id", "dataset_name", "score")
    assert set(cells.dataset_name) == {"ds_math"}
    assert dict(zip(cells.model_id, cells.score))["alpha"] == pytest.approx(0.60)


def test_observatory_score_at_a_step(seeded):
    at = render("observatory", score="step", step="100")
    no_failure(at)
    got = {(r.model_id, r.dataset_name): r.score for r in frame_with(at, "model_id", "score").itertuples()}
    assert got[("alpha", "ds_math")] == pytest.approx(0.50)
    assert got[("base", "ds_math")] == pytest.approx(0.70)  # baselines take part at any step


def test_observatory_cell_links_to_model_and_run(seeded):
    at = render("observatory", model="alpha", dataset="ds_math")
    no_failure(at)
    assert at.selectbox(key="obs_cell_model").value == "alpha"
    assert any("alpha on ds_math: 0.600" in t.value for t in at.text)


# ------------------------------------------------------------------ model detail


def test_model_detail_gap_table_and_best_checkpoint(seeded):
    at = render("model", model="alpha", tab="gaps")
    no_failure(at)
    gaps = frame_with(at, "dataset", "value", "baseline_best", "gap", "significance", "trend")
    g = gaps.set_index("dataset")
    assert g.loc["ds_math", "value"] == pytest.approx(0.60)
    assert g.loc["ds_math", "baseline_best"] == pytest.approx(0.70)
    assert g.loc["ds_math", "gap"] == pytest.approx(-0.10)
    assert g.loc["ds_code", "gap"] == pytest.approx(0.35 - 0.40)
    assert g.loc["ds_code", "n"] == N
    # Key columns first: significance, gap and trend right after the dataset's name and category.
    assert list(gaps.columns[:5]) == ["dataset", "category", "significance", "gap", "trend"]
    at = render("model", model="alpha", tab="best")
    no_failure(at)
    # Best overall: step 200 has the higher mean over both datasets ((0.60+0.35)/2 > (0.50+0.30)/2).
    assert any("Best overall: step 200" in t.value for t in at.text)
    promo = all_text(at)
    assert "No promotion rule applies" in promo
    at = render("model", model="alpha", tab="alerts")
    no_failure(at)
    alerts = frame_with(at, "alert_type", "severity", "message")
    assert "ds_code: accuracy fell (test alert)" in set(alerts.message)


def test_model_detail_profile_and_filter(seeded):
    at = render("model", model="alpha", baseline="base", tab="profile")
    no_failure(at)
    prof = frame_with(at, "model", "category", "mean", "delta")
    mine = prof[prof.model == "alpha"].set_index("category")
    assert mine.loc["math", "mean"] == pytest.approx(0.60)
    assert mine.loc["math", "delta"] == pytest.approx(-0.10)
    assert mine.loc["code", "delta"] == pytest.approx(-0.05)
    assert prof[prof.model == "base"]["delta"].isna().all()
    at = render("model", model="alpha", tab="gaps")
    # The significance filter narrows the gap table.
    sig_values = set(frame_with(at, "dataset", "significance").significance)
    one = min(sig_values)
    at.multiselect(key="md_sig").set_value([one]).run()
    no_failure(at)
    assert set(frame_with(at, "dataset", "significance").significance) == {one}


def test_model_detail_unknown_model_is_a_message(seeded):
    at = render("model", model="does-not-exist")
    assert not at.exception
    # An unknown id in the URL is named as unknown: no other model is substituted, the URL is kept.
    assert at.selectbox(key="md_model").value is None
    assert any("does-not-exist" in e.value.replace("\\", "") and "Unknown model" in e.value for e in at.error)
    assert at.query_params["model"] in ("does-not-exist", ["does-not-exist"])
    assert not at.dataframe and not at.get("vega_lite_chart")


# ------------------------------------------------------------------ leaderboard


def test_leaderboard_order_intervals_and_ties(seeded):
    at = render("leaderboard", dataset="ds_math")
    no_failure(at)
    lb = frame_with(at, "rank", "tie_group", "model_id", "score", "ci_lower", "ci_upper")
    assert list(lb.model_id) == ["base", "alpha"]
    lo, hi = wilson(0.70, N)
    assert lb.iloc[0].ci_lower == pytest.approx(lo, abs=1e-9) and lb.iloc[0].ci_upper == pytest.approx(hi, abs=1e-9)
    # 0.70 vs 0.60 on 200 each: z = 0.1 / sqrt(p(1-p)(2/200)) with pooled p = 0.65 -> p ≈ 0.036 < 0.05.
    pooled = 0.65
    z = 0.10 / math.sqrt(pooled * (1 - pooled) * (2 / N))
    p = math.erfc(z / math.sqrt(2))
    assert p < 0.05
    assert list(lb.tie_group) == [1, 2]
    # A filter changes the content.
    at.selectbox(key="lb_type").set_value("training").run()
    no_failure(at)
    assert list(frame_with(at, "rank", "model_id").model_id) == ["alpha"]


def test_leaderboard_per_suite(seeded):
    at = render("leaderboard", scope="suite", suite="only-math")
    no_failure(at)
    summary = frame_with(at, "model_id", "in_top_group", "mean_rank")
    assert dict(zip(summary.model_id, summary.in_top_group)) == {"base": 1, "alpha": 0}


# ------------------------------------------------------------------ compare and diff


def test_diff_two_checkpoints(seeded):
    at = render("compare", a="alpha__step-100", b="alpha__step-200")
    no_failure(at)
    d = frame_with(at, "dataset_name", "score_a", "score_b", "delta", "significance").set_index("dataset_name")
    assert d.loc["ds_math", "delta"] == pytest.approx(0.10)
    assert d.loc["ds_code", "delta"] == pytest.approx(0.05)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Datasets"] == "2"


def test_diff_flips_default_to_the_largest_change(seeded, env):
    # Example rows on both checkpoints of both datasets: ds_math moves by 0.10 (20 flips), ds_code by
    # 0.05 (10 flips). The flips table opens on ds_math (largest change first), not the alphabet's
    # first, and "(all)" in the link shows both.
    with psycopg.connect(env, row_factory=dict_row) as conn, conn.transaction():
        for (ds, step), k in {("ds_math", 100): 100, ("ds_code", 100): 60, ("ds_code", 200): 70}.items():
            store_examples(conn, seeded[("alpha", ds, step)],
                           [ExampleIn(example_idx=i, correct=i < k) for i in range(N)], actor="test")
    at = render("compare", a="alpha__step-100", b="alpha__step-200")
    no_failure(at)
    assert at.selectbox(key="diff_flips_ds").value == "ds_math"
    flips = frame_with(at, "dataset_name", "example_idx", "flip")
    assert set(flips.dataset_name) == {"ds_math"} and len(flips) == 20
    at = render("compare", a="alpha__step-100", b="alpha__step-200", flips="(all)")
    no_failure(at)
    flips = frame_with(at, "dataset_name", "example_idx", "flip")
    assert flips.groupby("dataset_name").size().to_dict() == {"ds_code": 10, "ds_math": 20}


def test_compare_models_side_by_side(seeded):
    at = render("compare", models=["alpha", "base"], dataset="ds_code")
    no_failure(at)
    pts = frame_with(at, "model", "training_step", "metric_value")
    alpha = pts[pts.model == "alpha"].sort_values("training_step")
    assert list(alpha.metric_value) == pytest.approx([0.30, 0.35])
    assert pts[pts.model == "base"].metric_value.tolist() == pytest.approx([0.40])


# ------------------------------------------------------------------ example browser


def test_example_browser_escapes_html_and_markdown(seeded):
    run = seeded[("alpha", "ds_math", 200)]
    at = render("examples", run=run, example="7")
    no_failure(at)
    codes = [c.value for c in at.code]
    assert SCRIPT in codes and MARKDOWN in codes  # shown verbatim as text
    # Nothing rendered as Markdown/HTML carries the user's text.
    for el in list(at.markdown) + list(at.caption) + list(at.subheader) + list(at.title):
        assert "<script" not in str(el.value) and "**not bold**" not in str(el.value)
    table = frame_with(at, "example_idx", "input_preview", "output_preview")
    assert SCRIPT in set(table.input_preview)


def test_example_browser_counts_and_filters(seeded):
    run = seeded[("alpha", "ds_math", 200)]
    at = render("examples", run=run)
    no_failure(at)
    assert len(frame_with(at, "example_idx", "correct").index) == 50  # one page
    assert any("200 examples match (120 correct" in c.value for c in at.caption)
    at.selectbox(key="ex_correct").set_value("incorrect").run()
    no_failure(at)
    t = frame_with(at, "example_idx", "correct")
    assert any("80 examples match (0 correct" in c.value for c in at.caption)
    assert list(t.example_idx) == list(range(120, 170)) and not t.correct.any()
    at.number_input(key="ex_page").set_value(2).run()
    assert list(frame_with(at, "example_idx", "correct").example_idx) == list(range(170, 200))
    assert at.query_params["page"] == "2"
    at = render("examples", run=run, topic="geometry", difficulty="hard")
    no_failure(at)
    assert any("50 examples match (10 correct" in c.value for c in at.caption)  # odd 101..119 correct
    at = render("examples", run=run, q="alert(")
    no_failure(at)
    assert list(frame_with(at, "example_idx", "topic").example_idx) == [7]
    # Slices (their own view, in the URL): by topic, accuracy with an interval.
    at = render("examples", run=run, tab="slices")
    no_failure(at)
    sl = frame_with(at, "slice", "accuracy", "ci_lower", "total")
    s = sl.set_index("slice")
    assert s.loc["algebra", "total"] == 100 and s.loc["algebra", "accuracy"] == pytest.approx(60 / 100)
    lo, hi = s.loc["algebra", "ci_lower"], s.loc["algebra", "ci_upper"]
    assert lo < 0.6 < hi and hi - lo < 0.25


def test_example_browser_unknown_run_is_named(seeded):
    at = render("examples", run="no-such-run")
    assert not at.exception
    assert any("no-such-run" in e.value.replace("\\", "") and "Unknown eval run" in e.value for e in at.error)
    assert not at.dataframe  # no other run shown in its place
    assert at.query_params["run"] in ("no-such-run", ["no-such-run"])


# ------------------------------------------------------------------ activity and alerts


def _ack_button(at: AppTest):
    return next(b for b in at.button if b.label.startswith("Acknowledge "))


def test_alert_acknowledge_needs_the_admin_token(seeded, db):
    at = render("activity", model="alpha", alert_type="regression")
    no_failure(at)
    alerts = frame_with(at, "id", "alert_type", "acknowledged")
    aid = seeded["alert_id"]
    assert set(alerts.id) == {aid}
    at.radio(key="ack_scope").set_value("all").run()
    at.text_input(key="ack_by").input("Ana")
    at.text_input(key="ack_token").input("wrong-token")
    _ack_button(at).click().run()
    assert any("Invalid admin token" in e.value for e in at.error)
    with psycopg.connect(db) as c:
        assert c.execute("select is_acknowledged from alerts where id = %s", (aid,)).fetchone()[0] is False
    assert at.text_input(key="ack_token").value == ""  # a wrong token is not kept
    assert "wrong-token" not in repr(at.session_state.to_dict())
    at.text_input(key="ack_token").input(ADMIN_TOKEN)
    _ack_button(at).click().run()
    assert not at.exception
    assert any("1 alert acknowledged by Ana" in s.value for s in at.success)
    with psycopg.connect(db) as c:
        row = c.execute("select is_acknowledged, acknowledged_by from alerts where id = %s", (aid,)).fetchone()
        assert row == (True, "Ana")
        # The same function as the admin API: it records an activity event.
        assert c.execute("select count(*) from activity where event_type = 'acknowledgement'").fetchone()[0] == 1
    # The token is kept for the session (no second prompt), never in the URL.
    assert "ack_token" not in [t.key for t in at.text_input]
    assert ADMIN_TOKEN not in repr(dict(at.query_params))
    assert any("remembered for this session" in c.value for c in at.caption)


def test_alerts_bulk_acknowledge_and_paging_past_200(seeded, db):
    """250 alerts: paged 100 at a time (page 3 holds the last 51), grouped by checkpoint, all acknowledged
    in one go through admin.acknowledge_alert (one acknowledgement event each)."""
    with psycopg.connect(db) as c, c.transaction():
        c.execute("""insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message)
                     select 'missing_evaluation', 'alpha', 'alpha__step-100', 'bulk_' || g, 'info', 'bulk alert ' || g
                       from generate_series(1, 250) g""")
    at = render("activity", alert_type="missing_evaluation", page="3")
    no_failure(at)
    page3 = frame_with(at, "id", "message")
    assert len(page3) == 50 and any("250 alerts match" in c.value for c in at.caption)
    assert any("Rows 201–250 of 250" in c.value for c in at.caption)
    at = render("activity", alert_type="missing_evaluation", group="checkpoint")
    no_failure(at)
    groups = frame_with(at, "model_id", "checkpoint_id", "alerts")
    assert list(groups.alerts) == [250]
    at.radio(key="ack_scope").set_value("all").run()
    at.text_input(key="ack_by").input("Bo")
    at.text_input(key="ack_token").input(ADMIN_TOKEN)
    _ack_button(at).click().run()
    no_failure(at)
    assert any("250 alerts acknowledged by Bo" in s.value for s in at.success)
    with psycopg.connect(db) as c:
        assert c.execute("select count(*) from alerts where message like 'bulk alert %%' and is_acknowledged "
                         "and acknowledged_by = 'Bo'").fetchone()[0] == 250
        assert c.execute("select count(*) from activity where event_type = 'acknowledgement'").fetchone()[0] == 250


def test_activity_feed_and_alert_filters(seeded):
    at = render("activity", alert_type="promotion_ready")  # no promotion rule in the fixture
    no_failure(at)
    assert "No alert matches" in all_text(at)
    at = render("activity", view="feed")
    feed = frame_with(at, "event_type", "summary")
    assert (feed.event_type == "eval_result").sum() == 6  # six posted results
    at = render("activity", view="feed", event="examples")
    assert set(frame_with(at, "event_type", "summary").event_type) == {"examples"}
    # A time window in the future of every event: nothing; the last 24 hours: everything.
    at = render("activity", view="feed", window="1h")
    assert (frame_with(at, "event_type", "summary").event_type == "eval_result").sum() == 6
    at = render("activity", view="feed", window="since", since="2999-01-01")
    assert "No activity in this window" in all_text(at)
    assert "No activity" in all_text(at)


def test_alerts_page_says_when_the_judge_has_a_backlog(env, seeded):
    with psycopg.connect(env, autocommit=True) as c:
        c.execute("delete from alert_recheck")
    assert "catching up" not in all_text(render("activity"))  # nothing queued: no banner
    with psycopg.connect(env, autocommit=True) as c:
        c.execute("""insert into alert_recheck (checkpoint_id, dataset_name, queued_at)
                     select checkpoint_id, 'queued-ds', now() - interval '90 seconds' from checkpoints""")
        n = c.execute("select count(*) from alert_recheck").fetchone()[0]
    text = all_text(render("activity"))
    assert f"{n:,} checks queued" in text and "catching up" in text


# ------------------------------------------------------------------ SQL


def test_sql_page_runs_read_only_queries(seeded):
    at = render("sql", q="select model_id, dataset_name, metric_value from v_latest_scores "
                         "where model_id = 'alpha' order by dataset_name")
    no_failure(at)
    res = frame_with(at, "model_id", "dataset_name", "metric_value")
    assert list(res.dataset_name) == ["ds_code", "ds_math"]
    assert list(res.metric_value) == pytest.approx([0.35, 0.60])
    at = render("sql", q="delete from models")
    assert any("only queries are allowed" in e.value for e in at.error)
    at = render("sql", q="select * from models")
    assert any("permission denied" in e.value for e in at.error)


def test_every_table_has_a_csv_download(seeded):
    for page in ("observatory", "leaderboard", "model"):
        at = render(page, model="alpha", **({"tab": "gaps"} if page == "model" else {}))
        n_tables = len(at.dataframe)
        downloads = [e for e in at.get("download_button")]
        assert n_tables and len(downloads) >= n_tables, page


def test_unreachable_database_is_a_message(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    st.cache_data.clear()
    at = render("observatory")
    assert not at.exception
    assert any("Cannot reach the database" in e.value for e in at.error)


def test_model_names_are_not_rendered_as_markdown(env):
    with psycopg.connect(env, row_factory=dict_row) as conn, conn.transaction():
        store_eval_result(conn, EvalResultIn(
            model_id="evil", display_name="**Evil** <b>bold</b> [x](javascript:alert(1))", owner="o",
            model_type="training", checkpoint_id="evil__step-1", training_step=1, dataset_name="ds_math",
            metrics={"accuracy": 0.5}, sample_count=10), source="test", actor="test")
    at = render("model", model="evil")
    no_failure(at)
    assert any("**Evil** <b>bold</b> [x](javascript:alert(1))" in t.value for t in at.text)  # shown as text
    shown = [m.value for m in at.markdown] + [e.value for e in at.error] + [e.value for e in at.info]
    for v in shown:  # every Markdown metacharacter of the name arrives escaped
        assert "**Evil**" not in v and "<b>" not in v and "](javascript" not in v


EVIL = "**bold** [link](http://x) ![img](http://example.invalid/x.png)"


@pytest.mark.parametrize("page", PAGES)
def test_client_text_is_never_rendered_as_markdown(env, page):
    """Owner, display name and an alert message carrying Markdown (bold, a link, a remote image) are shown
    literally on every page: no Markdown-rendering element receives them unescaped (issue 12 §5)."""
    with psycopg.connect(env, row_factory=dict_row) as conn, conn.transaction():
        for step, v in ((1, 0.4), (2, 0.5)):
            store_eval_result(conn, EvalResultIn(
                model_id="evil", display_name=EVIL, owner=EVIL, model_type="training",
                checkpoint_id=f"evil__step-{step}", training_step=step, dataset_name="ds_math",
                metrics={"accuracy": v}, sample_count=10), source="test", actor="test")
        conn.execute("""insert into alerts (alert_type, model_id, checkpoint_id, dataset_name, severity, message)
                        values ('regression', 'evil', 'evil__step-2', 'ds_math', 'critical', %s)""", (EVIL,))
    at = render(page, owner=EVIL) if page == "observatory" else render(page, model="evil")
    assert not at.exception, [e.value for e in at.exception]
    rendered = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader", "metric"):
        rendered += [str(getattr(e, "value", "")) + " " + str(getattr(e, "label", "")) for e in getattr(at, kind)]
    for v in rendered:
        assert "**bold**" not in v and "](http" not in v and "![" not in v, (page, v)
    if page == "model":
        assert any(EVIL in t.value for t in at.text), "the owner and display name are shown literally"


def test_leaderboard_at_a_step_no_checkpoint_has_says_so(seeded):
    at = render("leaderboard", dataset="ds_math", score="step", step="150")
    assert not at.exception
    warn = " ".join(w.value for w in at.warning)
    assert "No training checkpoint is at step 150" in warn and "100" in warn and "200" in warn
    at = render("leaderboard", dataset="ds_math", score="step", step="200")
    assert not any("No training checkpoint" in w.value for w in at.warning)
