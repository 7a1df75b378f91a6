"""`eval360 export --parquet DIR`: the views and the example outcomes as Parquet, hive layout.

    DIR/views/<view>/model=<model_id>/dataset=<dataset>/part-0.parquet   (views with both columns)
    DIR/views/<view>/part-0.parquet                                      (the others)
    DIR/example_outcomes/model=<model_id>/dataset=<dataset>/part-0.parquet

example_outcomes: one row per example of every current, completed eval run (the rows behind
v_example_run_outcomes), with the run's checkpoint and step. Pair views (v_example_pairs and the
two pair-stat views) are left out: they are a join of every run with every other run of a dataset,
to be computed where they are read. Spark / Trino: docs/export.md.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import orjson
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.rows import tuple_row

SKIP_VIEWS = {"v_example_pairs", "v_example_pair_stats", "v_example_pair_sums", "v_example_run_outcomes"}
JSON_OIDS = {114, 3802}  # json, jsonb: written as JSON text

OUTCOME_SCHEMA = pa.schema([
    ("eval_run_id", pa.string()), ("checkpoint_id", pa.string()), ("training_step", pa.int64()),
    ("model_type", pa.string()), ("example_idx", pa.int32()), ("is_correct", pa.bool_()),
    ("score", pa.float64()), ("correct", pa.bool_()), ("topic", pa.string()), ("difficulty", pa.string()),
    ("subtask", pa.string()), ("error_tag", pa.string()),
])
OUTCOME_SQL = """
copy (select e.eval_run_id, f.checkpoint_id, f.training_step, f.model_type, e.example_idx, e.is_correct,
             e.score, coalesce(e.is_correct, e.score >= 0.5) as correct, e.topic, e.difficulty, e.subtask,
             e.error_tag
        from score_facts f join example_results e on e.eval_run_id = f.eval_run_id
       where f.model_id = {m} and f.dataset_name = {d} and f.status = 'completed'
       order by f.training_step nulls last, e.eval_run_id, e.example_idx)
  to stdout (format csv, header)
"""


def _write(table: pa.Table, folder: Path, partition: bool) -> None:
    if partition:
        pq.write_to_dataset(table, folder, partition_cols=["model", "dataset"],
                            basename_template="part-{i}.parquet", existing_data_behavior="delete_matching")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet")


def export_views(conn: psycopg.Connection, out: Path) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "select table_name from information_schema.views where table_schema = current_schema() "
        "order by table_name").fetchall()]
    counts = {}
    for name in names:
        if name in SKIP_VIEWS:
            continue
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.SQL("select * from {}").format(sql.Identifier(name)))
            desc = cur.description
            rows = cur.fetchall()
        cols = [d.name for d in desc]
        data: dict[str, list] = {}
        for i, d in enumerate(desc):
            vals = [r[i] for r in rows]
            if d.type_code in JSON_OIDS:
                vals = [None if v is None else orjson.dumps(v).decode() for v in vals]
            data[d.name] = vals
        partition = "model_id" in cols and "dataset_name" in cols
        if partition:
            data["model"], data["dataset"] = data["model_id"], data["dataset_name"]
        table = pa.table({k: pa.array(v) for k, v in data.items()})
        folder = out / "views" / name
        if folder.exists():
            shutil.rmtree(folder)
        if partition and len(rows):
            _write(table, folder, True)
        else:
            _write(table, folder, False)
        counts[name] = len(rows)
    return counts


def export_outcomes(conn: psycopg.Connection, out: Path) -> int:
    folder = out / "example_outcomes"
    if folder.exists():
        shutil.rmtree(folder)
    pairs = conn.execute("select distinct model_id, dataset_name from v_example_run_outcomes order by 1, 2").fetchall()
    total = 0
    opts = pacsv.ConvertOptions(column_types=OUTCOME_SCHEMA, strings_can_be_null=True,
                                true_values=["t"], false_values=["f"])
    for row in pairs:
        model, dataset = (row["model_id"], row["dataset_name"]) if isinstance(row, dict) else row
        buf = io.BytesIO()
        with conn.cursor() as cur, cur.copy(sql.SQL(OUTCOME_SQL).format(m=sql.Literal(model),
                                                                       d=sql.Literal(dataset))) as cp:
            for chunk in cp:
                buf.write(chunk)
        buf.seek(0)
        table = pacsv.read_csv(buf, convert_options=opts)
        # Empty CSV cells are nulls (no text column here holds an empty string worth keeping apart).
        table = table.append_column("model", pa.array([model] * len(table), pa.string()))
        table = table.append_column("dataset", pa.array([dataset] * len(table), pa.string()))
        _write(table, folder, True)
        total += len(table)
    return total


def export_parquet(url: str, out: Path) -> dict:
    """Write every view (but the pair views) and the example outcomes under out; returns row counts."""
    from ..core.db import flush_facts

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url) as conn:
        flush_facts(conn)
        # One snapshot for the whole export: the files agree with each other.
        conn.execute("set transaction isolation level repeatable read, read only")
        views = export_views(conn, out)
        n = export_outcomes(conn, out)
    return {"views": views, "example_outcomes": n}
