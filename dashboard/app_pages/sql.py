"""SQL: read-only queries over the views on the eval360_reader login; result table and CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import empty, load, md_escape, qp, qp_int, sync_qp, table
from ingest_api.core import reader
from ingest_api.core.settings import get_settings
from ingest_api.read import readonly

url = data.database_url()
settings = get_settings()
# Ad-hoc SQL never runs on the dashboard's own login: it connects as the reader role.
reader_url = reader.reader_url(settings, url)
st.title("SQL")
timeout_ms = settings.reader_statement_timeout_ms
cap_rows, cap_bytes = max(1, settings.sql_max_rows), max(1, settings.sql_max_bytes)
st.caption(f"Read-only queries over the views (v_*), connected as the `{reader.READER_ROLE}` role, which can read "
           f"the views and nothing else. {timeout_ms / 1000:g} s statement timeout; at most {cap_rows:,} rows and "
           f"{cap_bytes / 1e6:g} MB of text per result. One statement at a time.")


@st.cache_data(ttl=300, show_spinner=False)
def views(u: str) -> list[dict]:
    return readonly.list_views(u)


with st.expander("Views you can query"):
    v = load(views, reader_url, what="the list of views")
    if v:
        table(pd.DataFrame(v), name="views", key="sql_views")
    else:
        empty("No view is readable by the reader role: run `eval360 migrate`.")

example = "select model_id, dataset_name, metric_value, n, ci_lower, ci_upper\nfrom v_latest_scores\n" \
          "order by dataset_name, metric_value desc"
query = st.text_area("Query", value=qp("q", example) or example, height=160, key="sql_query")
c1, c2 = st.columns([1, 4])
default_rows = min(cap_rows, 1000)
max_rows = int(c1.number_input("Max rows", min_value=1, max_value=cap_rows,
                               value=min(cap_rows, max(1, qp_int("rows", default_rows) or default_rows)),
                               step=100, key="sql_rows"))
run = c2.button("Run", type="primary", key="sql_run", icon=":material/play_arrow:")
# A link with ?q=… reproduces the result: the query runs on load when it came from the URL.
if run or qp("q"):
    sync_qp(q=query, rows=max_rows if max_rows != default_rows else None)
    try:
        res = readonly.run_readonly(reader_url, query, timeout_ms=timeout_ms, max_rows=max_rows,
                                    max_bytes=cap_bytes, flush_url=url)
    except readonly.ReadOnlyQueryError as exc:
        st.error(f"Query refused: {md_escape(exc)}")
    except Exception as exc:  # noqa: BLE001 - every failure is a message
        from dashboard.page_kit import friendly_error

        st.error(f"Query failed: {md_escape(friendly_error(exc))}")
    else:
        seen: dict[str, int] = {}
        names: list[str] = []
        for c in res.columns:  # `select 1, 1`: two columns named ?column?; a table needs distinct names
            seen[c] = seen.get(c, 0) + 1
            names.append(c if seen[c] == 1 else f"{c} ({seen[c]})")
        df = pd.DataFrame.from_records(res.rows, columns=names)
        for col in df.columns:
            if df[col].map(lambda x: isinstance(x, (dict, list))).any():
                df[col] = df[col].map(lambda x: None if x is None else str(x))
        st.caption(f"{len(df)} rows in {res.elapsed_ms:.0f} ms")
        cut = res.cut_message()
        if cut:
            st.warning(cut, icon=":material/content_cut:")  # our own text, no client data
        for note in res.notices:
            st.caption(md_escape(note))
        if df.empty and not cut:
            st.info("The query returned no row.")
        table(df, name="query_result", key="sql_result")
else:
    st.info("Write a query and press Run.")
