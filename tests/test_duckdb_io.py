"""DuckDB sink I/O around the edges: segments, failed writes, JSONL import, Parquet export,
reading a file a slice of runs at a time."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as pads
import pytest

import runtrace.sinks.duckdb as sinkmod
from runtrace.errors import DatabaseNotFound, JsonlImportError
from runtrace.events import parse_event
from runtrace.runs import RunStatus
from runtrace.sinks.duckdb import (
    DuckDBSink,
    connect,
    export_parquet,
    list_run_ids,
    load_records,
    write_records,
)
from runtrace.sinks.jsonl import import_jsonl
from runtrace.sinks.segments import list_segments
from runtrace.store import RunStore


def record(store: RunStore, sink: DuckDBSink, run_id: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        sink.on_event(*store.record(run_id, {"type": "text_delta", "text": f"t{i}"}))


def count(db: Path, sql: str = "SELECT count(*) FROM run_events") -> Any:
    con = connect(db)
    try:
        row = con.execute(sql).fetchone()
        return row[0] if row is not None and len(row) == 1 else row
    finally:
        con.close()


def test_connect_to_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotFound):
        connect(tmp_path / "nope.duckdb")


def test_while_a_reader_holds_the_file_flushes_go_to_segments_it_can_see(tmp_path: Path) -> None:
    db = tmp_path / "seg.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    run = store.create_run("s")
    sink.on_run(run)
    record(store, sink, run.id, 10)
    sink.force_flush()
    reader = connect(db)
    try:
        record(store, sink, run.id, 15, start=10)
        sink.force_flush()
        assert sink.stats.flushes_to_segments == 1
        events, runs = list_segments(db)
        assert len(events) == 1 and len(runs) == 1
        assert reader.execute("SELECT count(*) FROM run_events").fetchone() == (25,)
        assert reader.execute("SELECT event_count FROM runs").fetchone() == (25,)
        assert reader.execute(
            "SELECT count(*) FROM run_events WHERE tool_name IS NULL AND type = 'text_delta'"
        ).fetchone() == (25,)
    finally:
        reader.close()
    sink.on_run(store.finish(run.id))
    sink.shutdown()  # compacts the segment now that nobody reads
    assert list_segments(db) == ([], [])
    plain = duckdb.connect(str(db), read_only=True)
    assert plain.execute(
        "SELECT count(*), count(DISTINCT sequence) FROM run_events"
    ).fetchone() == (
        25,
        25,
    )
    assert plain.execute("SELECT status, event_count FROM runs").fetchone() == ("completed", 25)
    assert plain.execute("SELECT count(*) FROM runtrace_segments").fetchone() == (2,)
    plain.close()


def test_load_records_by_run_ids_reads_a_file_a_slice_at_a_time(tmp_path: Path) -> None:
    db = tmp_path / "ids.duckdb"
    store = RunStore()
    odd = "r'); DROP TABLE runs; --"  # ids are data, never SQL
    ids = [
        store.create_run("s", run_id=rid, created_at_ms=at).id
        for rid, at in (("r3", 100), (odd, 200), ("r1", 300), ("r2", 300))
    ]
    for n, rid in enumerate(ids):
        for i in range(n + 1):
            store.record(rid, {"type": "text_delta", "text": f"{rid}/{i}"}, timestamp_ms=400 + i)
    write_records(db, store.records())

    def loaded(**kw: Any) -> list[tuple[str, int]]:
        return [(r.snapshot.id, len(r.events)) for r in load_records(db, **kw)]

    assert list_run_ids(db) == ids  # oldest first, then by id: load_records' order
    assert list_run_ids(db, since_ms=300) == ["r1", "r2"]
    assert list_run_ids(db, since_ms=301) == []
    assert loaded(run_ids=["r2", "r3", "nope"]) == [("r3", 1), ("r2", 4)]
    assert loaded(run_ids=[odd]) == [(odd, 2)]
    assert loaded(run_ids=[]) == []
    assert loaded(run_ids=("r3", "r1"), since_ms=150) == [("r1", 3)]
    slices = [loaded(run_ids=list_run_ids(db)[i : i + 3]) for i in (0, 3)]
    assert [run for part in slices for run in part] == loaded()
    assert count(db, "SELECT count(*) FROM runs") == 4


def test_list_run_ids_and_run_ids_see_a_live_writers_segments(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    first = store.create_run("s", created_at_ms=1)
    sink.on_run(first)
    record(store, sink, first.id, 2)
    sink.force_flush()
    reader = connect(db)  # holds the file: the next flush goes to a segment
    try:
        second = store.create_run("s", created_at_ms=2)
        sink.on_run(second)
        record(store, sink, second.id, 3)
        sink.force_flush()
        assert sink.stats.flushes_to_segments == 1
        assert list_run_ids(db) == [first.id, second.id]
        (loaded,) = load_records(db, run_ids=[second.id])
        assert len(loaded.events) == 3
    finally:
        reader.close()
        sink.shutdown()


def test_a_failed_batch_changes_nothing_stored_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "retry.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    a = store.create_run("s")
    sink.on_run(a)
    record(store, sink, a.id, 5)
    assert sink.force_flush()

    b = store.create_run("s")
    sink.on_run(b)
    record(store, sink, a.id, 3, start=5)
    record(store, sink, b.id, 4)
    monkeypatch.setattr(sinkmod, "events_select_sql", lambda source: "SELECT broken FROM nowhere")
    assert not sink.force_flush()
    stats = sink.stats
    assert stats.failed_attempts == 1 and stats.last_error is not None
    assert stats.pending == 7
    # The runs upsert in the failed transaction was rolled back with it.
    assert count(db, "SELECT count(*), max(event_count) FROM runs") == (1, 5)
    assert count(db) == 5

    monkeypatch.undo()
    assert sink.force_flush()
    sink.shutdown()
    assert count(db) == 12
    assert (
        count(db, "SELECT count(*) FROM (SELECT DISTINCT run_id, sequence FROM run_events)") == 12
    )
    assert sink.stats.events_written == 12 and sink.stats.events_lost == 0


def test_a_batch_that_keeps_failing_is_set_aside_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "rescue.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_retries=1, lock_timeout=0.2)
    run = store.create_run("s")
    sink.on_run(run)
    record(store, sink, run.id, 6)
    monkeypatch.setattr(sinkmod, "events_select_sql", lambda source: "SELECT broken FROM nowhere")
    sink.shutdown()
    stats = sink.stats
    assert stats.events_rescued == 6 and stats.events_written == 0 and stats.pending == 0
    rescued = list(Path(f"{db}.failed").glob("*.events.parquet"))
    assert len(rescued) == 1
    texts = pads.dataset(rescued[0]).to_table().column("event").to_pylist()
    assert [parse_event(t) for t in texts] == [r.event for r in store.events(run.id)]


def test_parquet_export_is_partitioned_by_day_and_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "exp.duckdb"
    day_ms = 86_400_000
    store = RunStore()
    with DuckDBSink(db) as sink:
        for day in (0, 1):
            run = store.create_run("s", created_at_ms=day * day_ms + 1_000)
            sink.on_run(run)
            for i in range(3):
                sink.on_event(
                    *store.record(
                        run.id,
                        {"type": "text_delta", "text": str(i)},
                        timestamp_ms=day * day_ms + i,
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


def line(run_id: str, session: str, at: int, **event: Any) -> dict[str, Any]:
    return {"run_id": run_id, "session_id": session, "timestamp_ms": at, "event": event}


def jsonl(*objs: Any) -> str:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs) + "\n"


def test_jsonl_import_rebuilds_runs_with_the_status_rules(tmp_path: Path) -> None:
    db = tmp_path / "imp.duckdb"
    src = tmp_path / "events.jsonl"
    src.write_text(
        jsonl(
            {
                "run_id": "r1",
                "session_id": "s",
                "timestamp_ms": 10,
                "event": {"type": "agent_start", "prompt": "p"},
            },
            {
                "run_id": "r2",
                "session_id": "t",
                "timestamp_ms": 11,
                "event": {"type": "planning_start", "prompt": "q"},
            },
            "",
            {
                "run_id": "r1",
                "session_id": "s",
                "timestamp_ms": 30,
                "event": {"type": "agent_end", "text": "ok"},
            },
            {
                "run_id": "r1",
                "session_id": "s",
                "timestamp_ms": 20,
                "event": {"type": "tool_start", "id": "1", "name": "x"},
            },
            {
                "run_id": "r2",
                "session_id": "t",
                "timestamp_ms": 12,
                "event": {"type": "brand_new", "v": 1},
            },
        ),
        encoding="utf-8",
    )
    result = import_jsonl(src, db)
    assert (result.runs, result.events, result.skipped) == (2, 5, [])
    records = {r.snapshot.id: r for r in load_records(db)}
    r1, r2 = records["r1"], records["r2"]
    assert [e.event.type for e in r1.events] == ["agent_start", "tool_start", "agent_end"]
    assert [e.timestamp_ms for e in r1.events] == [10, 20, 30]
    assert r1.snapshot.status is RunStatus.COMPLETED
    assert (r1.snapshot.prompt, r1.snapshot.result_text, r1.snapshot.ended_at_ms) == ("p", "ok", 30)
    assert r2.snapshot.status is RunStatus.PLANNING and r2.snapshot.ended_at_ms is None
    assert count(db, "SELECT owner_pid FROM runs WHERE run_id = 'r2'") is None

    again = import_jsonl(io.StringIO(src.read_text(encoding="utf-8")), db)
    assert (again.runs, again.events, again.skipped) == (0, 0, ["r1", "r2"])
    assert count(db) == 5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"run_id": "r", "session_id": "s", "timestamp_ms": "x", "event": {}}', "timestamp_ms"),
        (
            '{"run_id": "r", "session_id": "s", "timestamp_ms": 1, "event": {"type": "error"}}',
            "invalid event",
        ),
        (
            '{"run_id": "r1", "session_id": "other", "timestamp_ms": 1, "event": {"type": "x"}}',
            "session_id",
        ),
    ],
)
def test_a_bad_jsonl_line_is_named_and_nothing_is_written(
    tmp_path: Path, bad: str, message: str
) -> None:
    db = tmp_path / "bad.duckdb"
    DuckDBSink(db).shutdown()
    good = {"run_id": "r1", "session_id": "s", "timestamp_ms": 1, "event": {"type": "x"}}
    with pytest.raises(JsonlImportError, match=message) as info:
        import_jsonl([jsonl(good), jsonl(good), bad], db)
    assert info.value.line == 3
    assert str(info.value).startswith("line 3:")
    assert count(db) == 0
