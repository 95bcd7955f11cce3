"""Segments: where flushes go while the file is busy, seen by readers, compacted exactly once."""

from __future__ import annotations

from pathlib import Path

import duckdb
from duckdb_helpers import query, record_deltas, start_run

from runtrace import DuckDBSink, RunStore, connect
from runtrace.duckdb import compact, write_records
from runtrace.duckdb.rows import runs_table
from runtrace.duckdb.segments import list_segments, write_segment


def test_while_a_reader_holds_the_file_flushes_go_to_segments_it_can_see(tmp_path: Path) -> None:
    db = tmp_path / "seg.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    run = start_run(store, sink, "s")
    record_deltas(store, sink, run.id, 10)
    sink.force_flush()
    reader = connect(db)
    try:
        record_deltas(store, sink, run.id, 15, start=10)
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


def test_a_stale_segment_row_does_not_overwrite_a_finished_run(tmp_path: Path) -> None:
    db = tmp_path / "seg.duckdb"
    store = RunStore()
    run = store.create_run("s", "p")
    stale, _ = store.record(run.id, {"type": "agent_start", "prompt": "p"}, at_ms=5)
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


def test_a_reader_sees_a_runs_newest_segment_row_even_if_an_older_one_came_last(
    tmp_path: Path,
) -> None:
    db = tmp_path / "order.duckdb"
    write_records(db, [])  # the file, empty
    store = RunStore()
    run = store.create_run("s", "p")
    started, _ = store.record(run.id, {"type": "agent_start", "prompt": "p"}, at_ms=5)
    store.record(run.id, {"type": "agent_end", "text": "ok"}, at_ms=6)
    done = store.finish(run.id, at_ms=7)
    held = connect(db)  # a reader holds the file: nothing is compacted meanwhile
    try:
        scratch = duckdb.connect(":memory:")
        # A spill and a flush of one process can finish writing out of order: the newer
        # snapshot's segment is written first, the stale one's last.
        write_segment(db, None, runs_table([done], owner=None), scratch)
        write_segment(db, None, runs_table([started], owner=None), scratch)
        scratch.close()
        assert len(list_segments(db)[1]) == 2
        assert held.execute("SELECT status, event_count, ended_at_ms FROM runs").fetchall() == [
            ("completed", 2, 7)
        ]
    finally:
        held.close()
    compact(db)
    assert query(db, "SELECT status, event_count FROM runs") == [("completed", 2)]
