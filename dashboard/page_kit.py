"""What every page shares: URL query parameters, CSV downloads, empty and error states, number format.

User data (model names, example text) is never passed to a Markdown-rendering call: it goes
through st.text / st.code / dataframes, or through `md_escape` where a label must be Markdown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

T = TypeVar("T")

EMPTY_DB_HELP = (
    "No evaluation results yet. Load the demo with `eval360 demo-data`, import past Eval360-V2 runs "
    "with `python backfill.py --output-dir <dir> --model-id <model> --with-examples`, or point the "
    "Eval360-V2 scheduler at `POST /api/ingest/eval-result`."
)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def md_escape(text: Any) -> str:
    """Text safe to put inside a Markdown string: every Markdown/HTML metacharacter backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


# ------------------------------------------------------------------ query parameters


def qp(name: str, default: str | None = None) -> str | None:
    """One URL query parameter (the last value), or default when absent or blank."""
    v = st.query_params.get(name)
    return default if v in (None, "") else v


def qp_list(name: str) -> list[str]:
    """A repeated URL query parameter (?models=a&models=b), also accepting one comma-separated value."""
    out: list[str] = []
    for v in st.query_params.get_all(name):
        out += [x for x in v.split(",") if x]
    return out


def qp_int(name: str, default: int | None = None) -> int | None:
    v = qp(name)
    try:
        return int(v) if v is not None else default
    except ValueError:
        return default


def qp_bool(name: str, default: bool = False) -> bool:
    v = qp(name)
    return default if v is None else v.lower() in ("1", "true", "yes", "on")


def sync_qp(**values: Any) -> None:
    """Write the page's selection into the URL so a link reproduces the view (None/empty removes it)."""
    for k, v in values.items():
        if v is None or v == "" or (isinstance(v, (list, tuple)) and not v):
            if k in st.query_params:
                del st.query_params[k]
        elif isinstance(v, bool):
            st.query_params[k] = "1" if v else "0"
        elif isinstance(v, (list, tuple)):
            st.query_params[k] = [str(x) for x in v]
        else:
            st.query_params[k] = str(v)


def index_of(options: Sequence[Any], value: Any, default: int = 0) -> int:
    try:
        return list(options).index(value)
    except ValueError:
        return default


def select(label: str, options: Sequence[T], *, param: str, key: str, default: T | None = None,
           format_func: Callable[[T], str] = str, container: Any = None, **kw: Any) -> T | None:
    """A selectbox whose initial value comes from the URL parameter `param` (then `default`)."""
    box = container or st
    if not options:
        return None
    want = qp(param)
    if want is not None and want not in [str(o) for o in options]:
        return unknown_in_link(label, want, options, key=key, format_func=format_func, container=box, **kw)
    idx = index_of([str(o) for o in options], want, index_of(options, default, 0))
    return box.selectbox(label, options, index=idx, key=key, format_func=format_func, **kw)


def unknown_in_link(label: str, want: str, options: Sequence[T], *, key: str,
                    format_func: Callable[[T], str] = str, container: Any = None, **kw: Any) -> T:
    """A link named a value that does not exist: say so (never substitute another, never rewrite the
    URL) and offer the picker empty; the page stops until one is chosen."""
    box = container or st
    kw.pop("placeholder", None)
    v = box.selectbox(label, options, index=None, key=key, format_func=format_func,
                      placeholder=f"choose a {label.lower()}", **kw)
    if v is None:
        st.error(f"Unknown {label.lower()} in this link: “{md_escape(want)}” does not exist (it may have been "
                 "deleted or mistyped). Choose one above.", icon=":material/link_off:")
        st.stop()
    return v


# ------------------------------------------------------------------ loading, errors, empty states


def friendly_error(exc: BaseException) -> str:
    """One line saying what went wrong and what to do, never a traceback."""
    import psycopg
    from psycopg_pool import PoolTimeout

    name = type(exc).__name__
    if isinstance(exc, (PoolTimeout, psycopg.OperationalError)):
        return (f"Cannot reach the database ({name}: {str(exc).strip()[:300]}). Check DATABASE_URL, or start "
                "the embedded one with `eval360 serve`.")
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return (f"The database has no Eval360 schema ({str(exc).strip()[:200]}): run `eval360 migrate`.")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return "The query took too long and was cancelled (statement timeout). Narrow the selection."
    msg = getattr(exc, "message", None) or str(exc)
    return f"{name}: {str(msg).strip()[:400]}"


def load(fn: Callable[..., T], *args: Any, what: str = "data", **kw: Any) -> T:
    """Call a loader; on failure show the error as a message and stop this page's run."""
    try:
        return fn(*args, **kw)
    except Exception as exc:
        st.error(f"Could not load {md_escape(what)}. {md_escape(friendly_error(exc))}")
        st.stop()
        raise  # unreachable: st.stop() raises


def empty(message: str) -> None:
    """An empty state: what is missing and what to do about it."""
    st.info(message, icon=":material/info:")


def models_or_stop(list_models: Callable[[str], list[dict]], url: str) -> list[dict]:
    """The models (rows of data.list_models); with none, the empty-database help and stop the page."""
    models = load(list_models, url, what="models")
    if not models:
        empty(EMPTY_DB_HELP)
        st.stop()
    return models


# ------------------------------------------------------------------ tables


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def table(df: pd.DataFrame, *, name: str, key: str, column_config: dict | None = None,
          height: int | str = "auto", **kw: Any) -> Any:
    """A dataframe (text is shown as text, never rendered) with its CSV download button."""
    event = st.dataframe(df, hide_index=True, width="stretch", column_config=column_config, height=height,
                         key=key, **kw)
    st.download_button("Download CSV", csv_bytes(df), file_name=f"{name}.csv", mime="text/csv",
                       key=f"{key}__csv", icon=":material/download:")
    return event




# ------------------------------------------------------------------ numbers


def fnum(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}f}"


def with_interval(v: Any, lo: Any, hi: Any, n: Any = None, digits: int = 3) -> str:
    """'0.812 [0.790, 0.833] n=1319': a number with its 95% interval and n where known."""
    s = fnum(v, digits)
    if lo is not None and hi is not None:
        s += f" [{fnum(lo, digits)}, {fnum(hi, digits)}]"
    if n is not None:
        s += f" n={n}"
    return s


def fpct(v: Any, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}%"


# ------------------------------------------------------------------ charts


@st.cache_data(ttl=60, show_spinner=False, max_entries=512)
def _chart_spec(builder: str, frames: tuple, kw_items: tuple) -> dict:
    from dashboard import charts

    # Validation against the Vega-Lite schema costs more than building the chart; the builders
    # are fixed code (checked once in the tests with validation on), so it is skipped here.
    return getattr(charts, builder)(*frames, **dict(kw_items)).to_dict(validate=False)


def chart(builder: str, *frames: Any, key: str | None = None, on_select: str = "ignore",
          selection_mode: Any = None, width: str = "stretch", container: Any = None, **kw: Any) -> Any:
    """Draw charts.<builder>(*frames, **kw); the Vega-Lite spec is cached, so a warm rerun only sends it."""
    spec = _chart_spec(builder, frames, tuple(sorted(kw.items())))
    box = container or st
    # An explicit height: "content" measures the chart before its axes and legend are laid out.
    h = spec.get("height")
    height = int(h) + 90 if isinstance(h, (int, float)) else "content"
    if on_select == "ignore":
        return box.vega_lite_chart(spec, width=width, height=height, key=key)
    return box.vega_lite_chart(spec, width=width, height=height, key=key, on_select=on_select,
                               selection_mode=selection_mode)


# ------------------------------------------------------------------ tabs whose choice lives in the URL


def url_tabs(tabs: dict[str, str], *, param: str, key: str, default: str | None = None) -> str:
    """A tab bar whose choice is the URL parameter `param` (a short slug: ?view=diff), both ways.

    tabs: slug → label. Returns the active slug; the page draws only that view (so the others cost
    nothing). A link naming a tab opens it; choosing one writes it into the URL, so a reload or a
    copied link shows the same view.
    """
    slugs = list(tabs)
    first = default if default in tabs else slugs[0]
    want = qp(param)
    if want is not None and want not in tabs:
        st.warning(f"Unknown view in this link: “{md_escape(want)}”; showing “{md_escape(tabs[first])}”.")
    active = want if want in tabs else first
    if st.session_state.get(key) != active:
        st.session_state[key] = active  # the URL is the truth (a link, back/forward, or the callback below)

    def _changed() -> None:
        chosen = st.session_state.get(key) or active
        st.session_state[key] = chosen
        st.query_params[param] = chosen

    st.segmented_control("View", slugs, format_func=lambda s: tabs[s], key=key, on_change=_changed,
                         label_visibility="collapsed", width="stretch")
    if qp(param) != active:
        st.query_params[param] = active
    return active


# ------------------------------------------------------------------ curves


def ema(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with start-up bias correction (as TensorBoard's smoothing):
    s_t = w·s_(t−1) + (1 − w)·x_t, reported as s_t / (1 − w^t). weight 0 returns the values."""
    out, acc, norm = [], 0.0, 0.0
    for v in values:
        acc = weight * acc + (1 - weight) * float(v)
        norm = weight * norm + (1 - weight)
        out.append(acc / norm if norm else float(v))
    return out


def with_smoothing(points: pd.DataFrame, weight: float, by: str = "series") -> pd.DataFrame:
    """points + a `smooth` column: the EMA of metric_value along training_step within each `by` group."""
    df = points.sort_values([by, "training_step"]).copy()
    df["smooth"] = df["metric_value"]
    if weight > 0:
        for idx in df.groupby(by).groups.values():
            df.loc[idx, "smooth"] = ema(df.loc[idx, "metric_value"].tolist(), weight)
    return df


def link(page: str, **params: Any) -> str:
    """A relative link to another page with its query string (works under a path prefix such as /eval360/)."""
    from urllib.parse import urlencode

    clean = {k: v for k, v in params.items() if v not in (None, "", [], ())}
    return page + ("?" + urlencode(clean, doseq=True) if clean else "")
