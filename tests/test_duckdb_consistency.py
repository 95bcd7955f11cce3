"""The DuckDB sink keeps what it stores consistent: a stale snapshot never overwrites a newer
one, nothing is lost silently, bulk writes replace whole runs, odd file names work."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

import runtrace.sinks.duckdb as sinkmod
from runtrace.errors import JsonlImportError, NotADuckDBFile
from runtrace.events import parse_event
from runtrace.runs import RunEventRecord, RunSnapshot, RunStatus
from runtrace.sinks.duckdb import (
    DuckDBSink,
    compact,
    connect,
    load_records,
    runs_table,
    write_records,
)
from runtrace.sinks.jsonl import import_jsonl
from runtrace.sinks.segments import list_segments, write_segment
from runtrace.sinks.storefile import HOST
from runtrace.store import RunStore


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# -- 1. a stale snapshot never overwrites a newer one ----------------------------------------


def test_a_stale_snapshot_queued_after_a_cancel_does_not_reopen_the_run(tmp_path: Path) -> None:
    db = tmp_path / "race.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    run = store.create_run("s", "p")
    sink.on_run(run)
    sink.on_event(*store.record(run.id, {"type": "agent_start", "prompt": "p"}, timestamp_ms=1000))
    # An agent thread records an event, then is descheduled before handing it to the sink ...
    late = store.record(run.id, {"type": "text_delta", "text": "hi"}, timestamp_ms=1000)
    # ... while the host cancels and ends the run, in the same millisecond.
    store.mark_cancelled(run.id, reason="stop", at_ms=1000)
    sink.on_run(store.finish(run.id, at_ms=1000))
    assert sink.force_flush()
    assert query(db, "SELECT status, ended_at_ms FROM runs") == [("cancelled", 1000)]
    sink.on_event(*late)  # the stale `executing` snapshot arrives in a later flush
    assert sink.force_flush()
    sink.shutdown()
    assert query(db, "SELECT status, ended_at_ms, error, event_count FROM runs") == [
        ("cancelled", 1000, "stop", 2)
    ]
    assert query(db, "SELECT count(*) FROM run_events") == [(2,)]


def test_a_stale_segment_row_does_not_overwrite_a_finished_run(tmp_path: Path) -> None:
    db = tmp_path / "seg.duckdb"
    store = RunStore()
    run = store.create_run("s", "p")
    stale, _ = store.record(run.id, {"type": "agent_start", "prompt": "p"}, timestamp_ms=5)
    store.mark_cancelled(run.id, at_ms=5)
    done = store.finish(run.id, at_ms=5)
    write_records(db, store.records())
    scratch = duckdb.connect(":memory:")
    write_segment(db, None, runs_table([stale], owner=None), scratch)
    scratch.close()
    assert len(list_segments(db)[1]) == 1
    compact(db)
    assert list_segments(db) == ([], [])
    assert query(db, "SELECT status, ended_at_ms FROM runs") == [("cancelled", done.ended_at_ms)]


def test_the_sink_remembers_a_bounded_number_of_ended_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinkmod, "_MAX_ENDED_KEYS", 3)
    store = RunStore()
    sink = DuckDBSink(tmp_path / "bound.duckdb", flush_interval=60)
    ids = []
    for _ in range(5):
        run = store.create_run("s")
        sink.on_event(*store.record(run.id, {"type": "agent_end", "text": "ok"}))
        sink.on_run(store.finish(run.id))
        ids.append(run.id)
        assert sink.force_flush()
    assert list(sink._ended_keys) == ids[-3:]
    assert not sink._written_keys
    sink.shutdown()
    assert query(tmp_path / "bound.duckdb", "SELECT DISTINCT status FROM runs") == [
        (RunStatus.COMPLETED.value,)
    ]


# -- 2. one bad item never costs the flush ---------------------------------------------------


class _NotJSON:
    pass


def test_an_item_that_cannot_be_serialised_is_counted_and_the_rest_is_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "poison.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    good = store.create_run("good")
    sink.on_run(good)
    for i in range(100):
        sink.on_event(*store.record(good.id, {"type": "text_delta", "text": f"t{i}"}))
    bad = store.create_run("bad")
    snap, rec = store.record(bad.id, {"type": "agent_start", "prompt": "p"})
    sink.on_event(snap, rec)
    # Values the core refuses, smuggled past validation: an object JSON cannot carry, and a
    # timestamp beyond 64 bits.
    event = type(parse_event({"type": "custom_metric"})).model_construct(
        type="custom_metric", payload=_NotJSON()
    )
    sink.on_event(snap, RunEventRecord.model_construct(sequence=1, timestamp_ms=1, event=event))
    sink.on_event(
        snap, RunEventRecord.model_construct(sequence=2, timestamp_ms=10**23, event=rec.event)
    )
    odd = store.create_run("odd")
    sink.on_run(RunSnapshot.model_construct(**{**odd.__dict__, "attributes": {"x": _NotJSON()}}))
    with caplog.at_level(logging.ERROR, logger="runtrace.duckdb"):
        assert sink.force_flush()
    sink.shutdown()
    stats = sink.stats
    assert (stats.events_received, stats.events_written, stats.events_lost) == (103, 101, 2)
    assert (stats.run_rows_lost, stats.pending) == (1, 0)
    assert any("lost" in r.getMessage() for r in caplog.records)
    assert query(
        db,
        "SELECT session_id, count(*) FROM run_events JOIN runs USING (run_id) "
        "GROUP BY ALL ORDER BY 1",
    ) == [("bad", 1), ("good", 100)]


# -- 3. write_records replaces whole runs ----------------------------------------------------


def test_writing_back_what_was_loaded_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "back.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    run = store.create_run("s", "p")
    sink.on_run(run)
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


# -- 4. any file name ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["my-runs.duckdb", "my runs.duckdb", 'say "hi".duckdb'])
def test_file_names_that_need_quoting_in_sql_work(tmp_path: Path, name: str) -> None:
    db = tmp_path / name
    store = RunStore()
    with DuckDBSink(db, flush_interval=60) as sink:
        run = store.create_run("s")
        sink.on_run(run)
        sink.on_event(*store.record(run.id, {"type": "agent_end", "text": "ok"}))
    assert [r.snapshot.id for r in load_records(db)] == [run.id]
    assert write_records(db, store.records()) == 1
    assert query(db, "SELECT count(*) FROM run_events") == [(1,)]


# -- 5. fork ---------------------------------------------------------------------------------


def test_a_forked_child_records_through_the_sink_it_inherited(tmp_path: Path) -> None:
    db = tmp_path / "fork.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    parent = store.create_run("parent")
    sink.on_run(parent)
    for i in range(3):  # queued before the fork: the parent's to write, once
        sink.on_event(*store.record(parent.id, {"type": "text_delta", "text": f"t{i}"}))

    def child(flush: bool) -> None:
        run = store.create_run(f"child-flush={flush}")
        sink.on_run(run)
        sink.on_event(*store.record(run.id, {"type": "agent_end", "text": "ok"}))
        sink.on_run(store.finish(run.id))
        if flush:
            ok = sink.force_flush() and sink._thread.is_alive()
            stats = sink.stats
            ok = ok and (stats.events_written, stats.pending) == (1, 0)
            sys.exit(0 if ok and sink._owner == (HOST, os.getpid()) else 3)
        # otherwise the sink is written when the child's work returns

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=child, args=(flush,)) for flush in (True, False)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    sink.shutdown()
    rows = query(
        db,
        "SELECT session_id, count(e.run_id) FROM runs LEFT JOIN run_events e USING (run_id) "
        "GROUP BY ALL ORDER BY 1",
    )
    assert rows == [("child-flush=False", 1), ("child-flush=True", 1), ("parent", 3)]


# -- 6. JSONL import -------------------------------------------------------------------------


@pytest.mark.parametrize("at", [10**23, 2**63, -1])
def test_an_out_of_range_jsonl_timestamp_is_named_and_nothing_is_created(
    tmp_path: Path, at: int
) -> None:
    db = tmp_path / "imp.duckdb"
    good = {"run_id": "r1", "session_id": "s", "timestamp_ms": 1, "event": {"type": "x"}}
    lines = [json.dumps(good), json.dumps({**good, "timestamp_ms": at})]
    with pytest.raises(JsonlImportError, match="timestamp_ms") as info:
        import_jsonl(lines, db)
    assert info.value.line == 2
    assert sorted(tmp_path.iterdir()) == []


# -- 7. a failed open leaves nothing behind --------------------------------------------------


def test_a_failed_open_leaves_no_segment_directory(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 500)
    with pytest.raises(NotADuckDBFile):
        DuckDBSink(notes)
    with pytest.raises(NotADuckDBFile):
        write_records(notes, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert notes.read_text() == "not a database\n" * 500
