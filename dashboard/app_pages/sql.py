"""SQL: read-only queries over the views as the eval360_reader role; result table and CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.page_kit import empty, load, md_escape, qp, qp_int, sync_qp, table
from ingest_api import readonly
from ingest_api.settings import Settings

url = data.database_url()
st.title("SQL")
timeout_ms = Settings.from_env().reader_statement_timeout_ms
st.caption(f"Read-only queries over the views (v_*), run as the `{readonly.READER_ROLE}` role in a READ ONLY "
           f"transaction with a {timeout_ms / 1000:g} s statement timeout. One statement at a time.")


@st.cache_data(ttl=300, show_spinner=False)
def views(u: str) -> list[dict]:
    return readonly.list_views(u)


with st.expander("Views you can query"):
    v = load(views, url, what="the list of views")
    if v:
        table(pd.DataFrame(v), name="views", key="sql_views")
    else:
        empty("No view is readable by the reader role: run `eval360 migrate`.")

example = "select model_id, dataset_name, metric_value, n, ci_lower, ci_upper\nfrom v_latest_scores\n" \
          "order by dataset_name, metric_value desc"
query = st.text_area("Query", value=qp("q", example) or example, height=160, key="sql_query")
c1, c2 = st.columns([1, 4])
max_rows = int(c1.number_input("Max rows", min_value=1, max_value=50_000, value=qp_int("rows", 1000) or 1000,
                               step=100, key="sql_rows"))
run = c2.button("Run", type="primary", key="sql_run", icon=":material/play_arrow:")
# A link with ?q=… reproduces the result: the query runs on load when it came from the URL.
if run or qp("q"):
    sync_qp(q=query, rows=max_rows if max_rows != 1000 else None)
    try:
        res = readonly.run_readonly(url, query, timeout_ms=timeout_ms, max_rows=max_rows)
    except readonly.ReadOnlyQueryError as exc:
        st.error(f"Query refused: {md_escape(exc)}")
    except Exception as exc:  # noqa: BLE001 - every failure is a message
        from dashboard.page_kit import friendly_error

        st.error(f"Query failed: {md_escape(friendly_error(exc))}")
    else:
        df = pd.DataFrame.from_records(res.rows, columns=res.columns)
        for col in df.columns:
            if df[col].map(lambda x: isinstance(x, (dict, list))).any():
                df[col] = df[col].map(lambda x: None if x is None else str(x))
        st.caption(f"{len(df)} rows in {res.elapsed_ms:.0f} ms"
                   + (f" — truncated at {res.max_rows} rows" if res.truncated else ""))
        if df.empty:
            st.info("The query returned no row.")
        table(df, name="query_result", key="sql_result")
else:
    st.info("Write a query and press Run.")
