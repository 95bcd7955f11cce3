"""Bulk writes: write_records puts whole runs into the file itself and replaces them whole."""

from __future__ import annotations

from pathlib import Path

import duckdb
from duckdb_helpers import EVENTS, ordered, query, record_run, start_run

from runtrace import DuckDBSink, RunStore
from runtrace.duckdb import load_records, write_records
from runtrace.runs import RunRecord


def test_write_records_and_load_records_round_trip(db: Path) -> None:
    store = RunStore()
    for i in range(5):
        snap = store.create_run(f"s{i % 2}", f"p{i}", created_at_ms=1_000 + i)
        for event in EVENTS[: i + 2]:
            store.record(snap.id, event, at_ms=2_000 + i)
    with DuckDBSink(db) as sink:
        assert sink.write_records(store.records()) == sum(i + 2 for i in range(5))
    assert load_records(db) == ordered(store.records())


def test_module_write_records_writes_into_the_file_itself(db: Path) -> None:
    store = RunStore()
    snap = store.create_run("s", "p")
    store.record(snap.id, EVENTS[0])
    assert write_records(db, store.records()) == 1
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM run_events").fetchone() == (1,)
    con.close()


def test_writing_back_what_was_loaded_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "back.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    run = start_run(store, sink, "s", "p")
    for event in (
        {"type": "tool_start", "id": "c1", "name": "bash"},
        {"type": "tool_end", "id": "c1", "name": "bash", "output": "x", "exit_code": 1},
        {"type": "agent_end", "text": "done"},
    ):
        sink.on_event(*store.record(run.id, event))
    sink.on_run(store.finish(run.id))
    sink.shutdown()
    loaded = load_records(db)

    rebuilt = RunStore()
    rebuilt.replace_records(loaded)
    assert write_records(db, rebuilt.records()) == 3
    with DuckDBSink(db) as again:
        assert again.write_records(rebuilt.records()) == 3
    assert query(db, "SELECT count(*), count(DISTINCT sequence) FROM run_events") == [(3, 3)]
    assert load_records(db) == loaded


def test_write_records_replaces_the_stored_events_of_a_run(tmp_path: Path) -> None:
    db = tmp_path / "replace.duckdb"
    store = RunStore()
    run = store.create_run("s")
    for i in range(5):
        store.record(run.id, {"type": "text_delta", "text": f"t{i}"})
    other = store.create_run("s")
    store.record(other.id, {"type": "text_delta", "text": "kept"})
    write_records(db, store.records())

    shorter = RunStore()
    shorter.create_run("s", run_id=run.id)
    shorter.record(run.id, {"type": "text_delta", "text": "only"})
    write_records(db, shorter.records())
    rows = query(db, "SELECT run_id, event->>'text' FROM run_events ORDER BY run_id, sequence")
    assert sorted(rows) == sorted([(run.id, "only"), (other.id, "kept")])
    assert query(db, "SELECT event_count FROM runs WHERE run_id = ?", [run.id]) == [(1,)]


def test_round_trip_of_a_store_rebuilt_twice_is_stable(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db) as sink:
        record_run(store, sink, EVENTS)
    first = load_records(db)
    other = db.with_name("copy.duckdb")
    write_records(other, first)
    second = load_records(other)
    assert second == first
    assert all(isinstance(r, RunRecord) for r in second)
