"""DuckDBSink: the sink side of the file, fed as the OpenTelemetry processor feeds it: round
trips, live visibility, batching, threads, odd values, stats, a full queue, shutdown."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from duckdb_helpers import EVENTS, count, ordered, query, record_run, start_run
from opentelemetry.sdk.trace import TracerProvider

import runtrace.duckdb.write as write_module
import runtrace.duckdb.writer as writer_module
from runtrace import DuckDBSink, RunSpanProcessor, RunStatus, RunStore, Runtrace, connect
from runtrace.duckdb import SinkStats, load_records
from runtrace.duckdb.segments import list_segments
from runtrace.sink import RunSink, SnapshotReadingSink


def test_sink_implements_the_run_sink_protocol(db: Path) -> None:
    with DuckDBSink(db) as sink:
        assert isinstance(sink, RunSink)


def test_recorded_runs_round_trip_exactly_through_the_file(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db, flush_interval=60) as sink:
        run_id = record_run(
            store, sink, EVENTS, agent_name="coder", attributes={"k": [1, 2], "t": "x"}
        )
        sink.on_run(store.finish(run_id))
        record_run(store, sink, EVENTS[:3], session_id="s2")
        assert sink.force_flush()
    loaded = load_records(db)
    assert loaded == ordered(store.records())
    rebuilt = RunStore()
    rebuilt.replace_records(loaded)
    assert ordered(rebuilt.records()) == ordered(store.records())
    assert rebuilt.snapshot(run_id) == store.snapshot(run_id)


def test_runs_recorded_through_runtrace_land_in_duckdb_and_reload(tmp_path: Path) -> None:
    db = tmp_path / "otel.duckdb"
    provider = TracerProvider()
    sink = DuckDBSink(db, flush_interval=0.05)
    rt = Runtrace(provider, RunSpanProcessor(sinks=[sink]))
    with rt.start_run("s1", prompt="p", agent_name="coder") as run:
        run.record({"type": "agent_start", "prompt": "p"})
        run.record({"type": "tool_start", "id": "c1", "name": "grep"})
        run.record({"type": "tool_end", "id": "c1", "name": "grep", "output": "", "exit_code": 1})
        run.record({"type": "agent_end", "text": "answer"})
    with pytest.raises(RuntimeError), rt.start_run("s2", prompt="q") as failing:
        failing.record({"type": "agent_start", "prompt": "q"})
        raise RuntimeError("boom")
    rt.shutdown()
    provider.shutdown()

    con = connect(db)
    rows = con.execute(
        "SELECT session_id, agent_name, status, event_count, trace_id IS NOT NULL, "
        "ended_at_ms IS NOT NULL FROM runs ORDER BY session_id"
    ).fetchall()
    tool = con.execute(
        "SELECT tool_name, tool_call_id, exit_code FROM run_events WHERE type = 'tool_end'"
    ).fetchall()
    con.close()
    assert rows == [
        ("s1", "coder", "completed", 4, True, True),
        ("s2", None, "failed", 1, True, True),
    ]
    assert tool == [("grep", "c1", 1)]

    records = {r.snapshot.id: r for r in load_records(db)}
    assert records[run.id].snapshot == rt.store.snapshot(run.id)
    assert records[run.id].events == rt.store.events(run.id)
    assert records[failing.id].snapshot.status is RunStatus.FAILED
    rebuilt = RunStore()
    rebuilt.replace_records(records.values())
    assert rebuilt.snapshot(run.id) == rt.store.snapshot(run.id)


def test_duration_is_set_when_a_run_ends(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db) as sink:
        snap = start_run(store, sink, "s", created_at_ms=1_000)
        sink.on_run(store.finish(snap.id, at_ms=4_500))
    con = connect(db)
    assert con.execute("SELECT ended_at_ms, duration_ms, status FROM runs").fetchone() == (
        4_500,
        3_500,
        "completed",
    )
    con.close()


def test_live_run_is_visible_within_one_flush(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db, flush_interval=0.05) as sink:
        run_id = record_run(store, sink, EVENTS[:3])
        deadline = threading.Event()
        seen: tuple[Any, ...] | None = None
        for _ in range(200):  # polls up to 10 s; one flush interval is 0.05 s
            con = connect(db)
            seen = con.execute(
                "SELECT status, event_count FROM runs WHERE run_id = ?", [run_id]
            ).fetchone()
            con.close()
            if seen == ("executing", 3):
                break
            deadline.wait(0.05)
        assert seen == ("executing", 3)


def test_ten_thousand_event_run_is_stored_complete(db: Path) -> None:
    store = RunStore()
    events = [{"type": "text_delta", "text": f"chunk {i}"} for i in range(10_000)]
    with DuckDBSink(db, max_batch_size=1_000) as sink:
        run_id = record_run(store, sink, [EVENTS[0], *events])
    con = connect(db)
    assert con.execute(
        "SELECT count(*), count(DISTINCT sequence), max(sequence) FROM run_events WHERE run_id = ?",
        [run_id],
    ).fetchone() == (10_001, 10_001, 10_000)
    assert con.execute("SELECT event_count FROM runs").fetchone() == (10_001,)
    con.close()
    assert load_records(db) == ordered(store.records())


def test_concurrent_threads_through_one_sink_lose_nothing(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db, flush_interval=0.01, max_batch_size=50) as sink:

        def agent(n: int) -> None:
            record_run(
                store,
                sink,
                [{"type": "text_delta", "text": f"{n}-{i}"} for i in range(500)],
                session_id=f"s{n}",
            )

        threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sink.stats.events_written == 8 * 500
    con = connect(db)
    assert con.execute("SELECT count(*) FROM run_events").fetchone() == (4_000,)
    assert con.execute("SELECT sum(event_count), count(*) FROM runs").fetchone() == (4_000, 8)
    con.close()
    assert load_records(db) == ordered(store.records())


def test_every_accepted_event_lands_including_odd_values(db: Path) -> None:
    store = RunStore()
    odd = [
        {"type": "text_delta", "text": "x" * 5_000_000},
        {"type": "text_delta", "text": "nul\u0000 emoji 😀 rtl \u202e combining e\u0301 \ud7ff"},
        {"type": "tool_end", "id": "t", "name": "n", "output": "", "exit_code": 2**80},
        {"type": "custom", "big": -(2**100), "f": 1e308, "tiny": 5e-324, "s": "'; DROP--"},
        {"type": "turn_end", "turn": 2**62, "usage": {"prompt_tokens": 2**70}},
    ]
    with DuckDBSink(db) as sink:
        run_id = record_run(store, sink, odd, prompt="'quoted' \"prompt\"")
    assert sink.stats.events_written == len(odd)
    assert load_records(db) == ordered(store.records())
    con = connect(db)
    assert con.execute(
        "SELECT exit_code, input_tokens FROM run_events WHERE run_id = ? ORDER BY sequence",
        [run_id],
    ).fetchall()[2:] == [(None, None), (None, None), (None, None)]
    con.close()


def test_stats_count_what_the_sink_received_and_wrote(db: Path) -> None:
    store = RunStore()
    sink = DuckDBSink(db)
    record_run(store, sink, EVENTS)
    sink.shutdown()
    stats = sink.stats
    assert isinstance(stats, SinkStats)
    assert (stats.events_received, stats.events_written, stats.pending) == (len(EVENTS), 8, 0)
    assert stats.events_lost == stats.events_rescued == stats.failed_attempts == 0
    sink.on_event(*store.record(store.list()[0].id, EVENTS[0]))
    assert sink.stats.received_after_shutdown == 1
    sink.shutdown()  # idempotent


def test_a_full_queue_hands_built_batches_to_the_next_flush_without_a_segment(db: Path) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_batch_size=10, max_queue_size=20)
    with sink._batch.exclusive():  # the writer is busy: the queue can only fill up
        run_id = record_run(store, sink, [EVENTS[0]] * 38)
        stats = sink.stats
        assert stats.events_spilled == 0 and stats.events_written == 0
        assert stats.pending == 38  # the first 20 items built (the run's start one of them)
        assert sink._batch.stats.spilled == 20
    assert list_segments(db) == ([], [])  # built into Arrow, not written aside
    assert sink.force_flush()
    stats = sink.stats
    assert (stats.events_written, stats.pending, stats.flushes_to_segments) == (38, 0, 0)
    assert stats.flushes_to_file == 1
    sink.on_run(store.finish(run_id))
    sink.shutdown()
    assert load_records(db) == store.records()


def test_a_run_ended_in_a_built_batch_is_reported_persisted_only_once_it_is_written(
    db: Path,
) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_batch_size=10, max_queue_size=10)
    heard: list[list[str]] = []
    sink.add_persisted_listener(heard.append)
    with sink._batch.exclusive():  # the writer is busy: the queue can only fill up
        run_id = record_run(store, sink, [EVENTS[0]] * 3)
        sink.on_run(store.finish(run_id))  # the 5th item: its end is in the first batch built
        for _ in range(6):
            record_run(store, sink, [])  # five more items fill the queue; the sixth spills
        assert sink._batch.stats.spilled == 10 and list_segments(db) == ([], [])
        assert heard == []  # built, not stored yet: retention must keep the run
    assert sink.force_flush()
    assert heard == [[run_id]]
    sink.shutdown()
    assert load_records(db) == ordered(store.records())


def test_a_full_queue_spills_to_a_segment_past_the_built_bound_and_every_event_lands(
    db: Path,
) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_batch_size=10, max_queue_size=20)
    with sink._batch.exclusive():  # the writer is busy: the queue can only fill up
        run_id = record_run(store, sink, [EVENTS[0]] * 100)
        stats = sink.stats
        # 20 built for the next flush (the bound: max_queue_size), at most 21 queued
        assert stats.events_spilled >= 100 - 20 - 21 and stats.pending <= 20 + 21
    assert list_segments(db) != ([], [])  # past the bound: straight to segment files
    sink.on_run(store.finish(run_id))
    sink.shutdown()
    stats = sink.stats
    assert (stats.events_written, stats.events_lost, stats.pending) == (100, 0, 0)
    assert stats.events_received == 100 and stats.blocked == 0
    assert list_segments(db) == ([], [])  # compacted at shutdown
    assert load_records(db) == store.records()
    assert count(db, "SELECT count(DISTINCT sequence), max(sequence) FROM run_events") == (100, 99)


def test_a_full_queue_in_block_mode_makes_the_agent_wait_then_spills(db: Path) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_queue_size=5, when_full="block", block_timeout=0)
    with sink._batch.exclusive():
        record_run(store, sink, EVENTS)
        assert sink.stats.blocked >= 1
        assert sink._batch.stats.spilled >= 1  # built for the next flush, or in a segment
    sink.shutdown()
    assert sink.stats.events_written == len(EVENTS)
    assert load_records(db) == store.records()


def test_a_spill_that_cannot_be_written_is_kept_for_the_next_flush(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_batch_size=4, max_queue_size=4)

    def disk_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch, sink._batch.exclusive():
        patch.setattr(writer_module, "write_to_segment", disk_full)
        run_id = record_run(store, sink, EVENTS)
        assert sink.stats.events_spilled == 0 and sink.stats.pending == len(EVENTS)
        assert "No space left" in (sink.stats.last_error or "")
    assert sink.force_flush()
    sink.shutdown()
    assert sink.stats.events_written == len(EVENTS)
    assert [len(r.events) for r in load_records(db)] == [len(EVENTS)]
    assert query(db, "SELECT status FROM runs WHERE run_id = ?", [run_id]) == [("completed",)]


def test_shutdown_takes_the_run_sink_timeout(db: Path) -> None:
    assert inspect.signature(DuckDBSink.shutdown).parameters["timeout_millis"].default == 30_000
    store = RunStore()
    sink = DuckDBSink(db)
    record_run(store, sink, EVENTS)
    sink.shutdown(timeout_millis=10_000)
    assert sink.stats.events_written == len(EVENTS)
    sink.shutdown(timeout_millis=0)  # again: nothing to do


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flush_interval": 0}, "flush_interval"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"when_full": "never"}, "when_full"),
    ],
)
def test_bad_settings_are_refused_naming_them(
    db: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DuckDBSink(db, **kwargs)


def test_what_is_queued_when_the_interpreter_exits_reaches_the_file(db: Path) -> None:
    # No shutdown(): atexit writes the queue, after concurrent.futures stopped taking work.
    script = f"""
from runtrace import DuckDBSink, RunStore
store = RunStore()
sink = DuckDBSink({str(db)!r}, flush_interval=60, max_batch_size=10)
run = store.create_run("s")
sink.on_run(run)
for i in range(100):
    sink.on_event(*store.record(run.id, {{"type": "text_delta", "text": f"t{{i}}"}}))
sink.on_run(store.finish(run.id))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "failed" not in done.stderr, done.stderr
    assert count(db, "SELECT count(*), max(sequence) FROM run_events") == (100, 99)
    assert query(db, "SELECT status FROM runs") == [("completed",)]
    assert not Path(f"{db}.failed").exists()


def test_persisted_listeners_hear_of_ended_runs_once_their_final_rows_are_stored(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    heard: list[list[str]] = []
    sink.add_persisted_listener(heard.append)
    ended = record_run(store, sink, EVENTS[:2])
    sink.on_run(store.finish(ended))
    record_run(store, sink, EVENTS[:2])  # still running: never reported
    monkeypatch.setattr(
        write_module, "events_select_sql", lambda source: "SELECT broken FROM nowhere"
    )
    assert not sink.force_flush()
    assert heard == []  # not stored yet: only this sink has it
    monkeypatch.undo()
    assert sink.force_flush()
    assert heard == [[ended]]
    assert query(db, "SELECT status FROM runs WHERE run_id = ?", [ended]) == [("completed",)]
    assert sink.force_flush()
    sink.shutdown()
    assert heard == [[ended]]  # once


def test_open_runs_are_owned_by_the_recording_process_unless_owner_is_false(
    tmp_path: Path,
) -> None:
    from runtrace.duckdb.database import HOST

    store = RunStore()
    owned, unowned = tmp_path / "owned.duckdb", tmp_path / "unowned.duckdb"
    for path, owner in ((owned, True), (unowned, False)):
        with DuckDBSink(path, flush_interval=60, owner=owner) as sink:
            record_run(store, sink, EVENTS[:2])
    assert query(owned, "SELECT owner_host, owner_pid FROM runs") == [(HOST, os.getpid())]
    assert query(unowned, "SELECT owner_host, owner_pid FROM runs") == [(None, None)]


def test_a_forked_child_of_an_unowned_sink_writes_no_owner_either(db: Path) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, owner=False)
    pid = os.fork()
    if pid == 0:  # the child records one run and exits without Python's cleanup
        code = 0
        try:
            record_run(store, sink, EVENTS[:2], session_id="child")
            sink.shutdown()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.shutdown()
    assert query(db, "SELECT session_id, owner_host, owner_pid FROM runs") == [
        ("child", None, None)
    ]


def test_an_owner_that_is_not_a_bool_is_refused_naming_it(db: Path) -> None:
    with pytest.raises(TypeError, match="owner"):
        DuckDBSink(db, owner=("host", 1))  # type: ignore[arg-type]


def test_runs_written_whole_are_reported_persisted_once_ended(db: Path) -> None:
    store = RunStore()
    ended, still_open = store.create_run("s1").id, store.create_run("s2").id
    for run_id in (ended, still_open):
        for event in EVENTS[:2]:
            store.record(run_id, event)
    store.finish(ended)
    sink = DuckDBSink(db, flush_interval=60)
    heard: list[list[str]] = []
    sink.add_persisted_listener(heard.append)
    sink.write_records(store.records())
    sink.shutdown()
    assert heard == [[ended]]  # the open one is not final yet
    assert sorted(r for (r,) in query(db, "SELECT run_id FROM runs")) == sorted([ended, still_open])


def test_a_live_runs_row_counts_its_events_though_the_agent_made_no_snapshot_per_event(
    db: Path,
) -> None:
    sink = DuckDBSink(db)
    assert isinstance(sink, SnapshotReadingSink)
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=[sink]))
    run = rt.begin_run("s", prompt="p")
    run.record({"type": "agent_start", "prompt": "p"})
    for i in range(50):
        run.record({"type": "text_delta", "text": f"t{i}"})
    assert sink.force_flush()
    # The queue carried the snapshot made at agent_start (1 event); the row has all 51.
    assert query(db, "SELECT status, event_count FROM runs") == [("executing", 51)]
    assert count(db) == 51
    run.record({"type": "agent_end", "text": "done"})
    run.end()
    rt.shutdown()
    assert query(db, "SELECT status, event_count FROM runs") == [("completed", 52)]
    assert count(db) == 52
