"""Reading: connect, load_records with its filters, list_run_ids and reading a slice at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from duckdb_helpers import EVENTS, count, record_deltas, start_run

from runtrace import DuckDBSink, RunStatus, RunStore, connect
from runtrace.duckdb import list_run_ids, load_records, write_records
from runtrace.errors import DatabaseNotFound


def test_connect_to_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotFound):
        connect(tmp_path / "nope.duckdb")


def test_load_records_filters_by_session_status_and_time(db: Path) -> None:
    store = RunStore()
    a = store.create_run("alpha", created_at_ms=100)
    store.record(a.id, EVENTS[0], at_ms=100)
    b = store.create_run("beta", created_at_ms=200)
    store.record(b.id, {"type": "error", "message": "x"}, at_ms=200)
    c = store.create_run("beta", created_at_ms=300)
    write_records(db, store.records())

    def ids(**kw: Any) -> list[str]:
        return [r.snapshot.id for r in load_records(db, **kw)]

    assert ids(session_id="beta") == [b.id, c.id]
    assert ids(status=RunStatus.FAILED) == [b.id]
    assert ids(status="executing") == [a.id]
    assert ids(since_ms=200) == [b.id, c.id]
    assert ids(until_ms=200) == [a.id]
    assert ids(session_id="beta", since_ms=250) == [c.id]


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
            store.record(rid, {"type": "text_delta", "text": f"{rid}/{i}"}, at_ms=400 + i)
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
    first = start_run(store, sink, "s", created_at_ms=1)
    record_deltas(store, sink, first.id, 2)
    sink.force_flush()
    reader = connect(db)  # holds the file: the next flush goes to a segment
    try:
        second = start_run(store, sink, "s", created_at_ms=2)
        record_deltas(store, sink, second.id, 3)
        sink.force_flush()
        assert sink.stats.flushes_to_segments == 1
        assert list_run_ids(db) == [first.id, second.id]
        (loaded,) = load_records(db, run_ids=[second.id])
        assert len(loaded.events) == 3
    finally:
        reader.close()
        sink.shutdown()
