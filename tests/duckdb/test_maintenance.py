"""Maintenance: Parquet export partitioned by day (recovery is in test_processes.py: it needs a
process to die)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from duckdb_helpers import start_run

from runtrace import DuckDBSink, RunStore
from runtrace.duckdb import export_parquet
from runtrace.duckdb.maintenance import EXPORT_BATCH_ROWS


def test_parquet_export_is_partitioned_by_day_and_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "exp.duckdb"
    day_ms = 86_400_000
    store = RunStore()
    with DuckDBSink(db) as sink:
        for day in (0, 1):
            run = start_run(store, sink, "s", created_at_ms=day * day_ms + 1_000)
            for i in range(3):
                sink.on_event(
                    *store.record(
                        run.id,
                        {"type": "text_delta", "text": str(i)},
                        at_ms=day * day_ms + i,
                    )
                )
    out = tmp_path / "lake"
    assert export_parquet(db, out) == {"runs": 2, "run_events": 6}
    assert sorted(p.name for p in (out / "run_events").iterdir()) == [
        "day=1970-01-01",
        "day=1970-01-02",
    ]
    con = duckdb.connect()
    rows = con.execute(
        "SELECT day, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY day "
        "ORDER BY day",
        [str(out / "run_events" / "**" / "*.parquet")],
    ).fetchall()
    assert [(str(d), n) for d, n in rows] == [("1970-01-01", 3), ("1970-01-02", 3)]
    runs = con.execute(
        "SELECT run_id, status FROM read_parquet(?, hive_partitioning = true) ORDER BY run_id",
        [str(out / "runs" / "**" / "*.parquet")],
    ).fetchall()
    assert sorted(r for r, _ in runs) == sorted(r.id for r in store.list())
    con.close()
    # A second machine exporting into the same directory adds files, clobbering none.
    export_parquet(db, out)
    assert len(list((out / "runs").rglob("*.parquet"))) == 4


def test_parquet_export_progress_counts_every_row_of_both_tables(tmp_path: Path) -> None:
    db = tmp_path / "exp.duckdb"
    store = RunStore()
    rows = EXPORT_BATCH_ROWS + 5  # more than one batch: the export reports on the way
    with DuckDBSink(db) as sink:
        run = start_run(store, sink, "s", created_at_ms=1_000)
        for i in range(rows):
            sink.on_event(*store.record(run.id, {"type": "text_delta", "text": "x"}, at_ms=i))
    calls: list[tuple[int, int]] = []
    counts = export_parquet(db, tmp_path / "lake", progress=lambda *c: calls.append(c))
    assert counts == {"runs": 1, "run_events": rows}
    assert calls[-1] == (rows + 1, rows + 1)
    assert len(calls) >= 3
    assert all(total == rows + 1 for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
