"""The DuckDB sink in one process: batching, round trips, live reads, bad files, failures."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runtrace.errors import DatabaseError, DatabaseLocked, NotADuckDBFile, SchemaVersionError
from runtrace.events import parse_event
from runtrace.runs import RunRecord, RunStatus
from runtrace.sinks.base import RunSink
from runtrace.sinks.duckdb import (
    DuckDBSink,
    SinkStats,
    connect,
    load_records,
    write_records,
)
from runtrace.store import RunStore

EVENTS: list[dict[str, Any]] = [
    {"type": "agent_start", "prompt": "fix the bug"},
    {"type": "turn_start", "turn": 1},
    {"type": "tool_start", "id": "t1", "name": "bash"},
    {
        "type": "tool_end",
        "id": "t1",
        "name": "bash",
        "args": {"cmd": "ls"},
        "output": "a\nb",
        "exit_code": 2,
        "error_kind": "nonzero_exit",
    },
    {
        "type": "turn_end",
        "turn": 1,
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    },
    {"type": "permission_denied", "tool_id": "t2", "tool_name": "rm", "reason": "no"},
    {"type": "memory_stored", "memory_id": "m1", "nested": {"a": [1, 2.5, None, True]}},
    {
        "type": "agent_end",
        "text": "done",
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    },
]


def record_run(
    store: RunStore, sink: DuckDBSink, events: list[dict[str, Any]], **kwargs: Any
) -> str:
    """Drive the sink the way the OpenTelemetry processor does."""
    snap = store.create_run(kwargs.pop("session_id", "s1"), **kwargs)
    sink.on_run(snap)
    for event in events:
        snap, rec = store.record(snap.id, event)
        sink.on_event(snap, rec)
    return snap.id


def ordered(records: list[RunRecord]) -> list[RunRecord]:
    """load_records orders by creation time, then run id (the store keeps insertion order)."""
    return sorted(records, key=lambda r: (r.snapshot.created_at_ms, r.snapshot.id))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.duckdb"


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


def test_typed_columns_are_derived_from_the_events(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db) as sink:
        run_id = record_run(store, sink, EVENTS)
    con = connect(db)
    rows = con.execute(
        "SELECT type, tool_name, tool_call_id, exit_code, input_tokens, output_tokens, "
        "error_message FROM run_events WHERE run_id = ? ORDER BY sequence",
        [run_id],
    ).fetchall()
    assert rows[2] == ("tool_start", "bash", "t1", None, None, None, None)
    assert rows[3] == ("tool_end", "bash", "t1", 2, None, None, "nonzero_exit")
    assert rows[4] == ("turn_end", None, None, None, 11, 7, None)
    assert rows[5] == ("permission_denied", "rm", "t2", None, None, None, "no")
    assert rows[7] == ("agent_end", None, None, None, 20, 9, None)
    run = con.execute(
        "SELECT status, result_text, event_count, input_tokens, output_tokens, owner_pid "
        "FROM runs WHERE run_id = ?",
        [run_id],
    ).fetchone()
    assert run is not None
    assert run[:5] == ("completed", "done", len(EVENTS), 20, 9)
    assert run[5] > 0
    event_json = con.execute(
        "SELECT event FROM run_events WHERE run_id = ? AND sequence = 3", [run_id]
    ).fetchone()
    assert event_json is not None
    assert parse_event(event_json[0]) == store.events(run_id)[3].event
    con.close()


def test_duration_is_set_when_a_run_ends(db: Path) -> None:
    store = RunStore()
    with DuckDBSink(db) as sink:
        snap = store.create_run("s", created_at_ms=1_000)
        sink.on_run(snap)
        sink.on_run(store.finish(snap.id, at_ms=4_500))
    con = connect(db)
    assert con.execute("SELECT ended_at_ms, duration_ms, status FROM runs").fetchone() == (
        4_500,
        3_500,
        "completed",
    )
    con.close()


def test_write_records_and_load_records_round_trip(db: Path) -> None:
    store = RunStore()
    for i in range(5):
        snap = store.create_run(f"s{i % 2}", f"p{i}", created_at_ms=1_000 + i)
        for event in EVENTS[: i + 2]:
            store.record(snap.id, event, timestamp_ms=2_000 + i)
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


def test_load_records_filters_by_session_status_and_time(db: Path) -> None:
    store = RunStore()
    a = store.create_run("alpha", created_at_ms=100)
    store.record(a.id, EVENTS[0], timestamp_ms=100)
    b = store.create_run("beta", created_at_ms=200)
    store.record(b.id, {"type": "error", "message": "x"}, timestamp_ms=200)
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


def test_opening_a_file_that_is_not_duckdb_fails_clearly(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 500)
    with pytest.raises(NotADuckDBFile, match="not a DuckDB"):
        DuckDBSink(db)
    with pytest.raises(NotADuckDBFile):
        connect(db)


def test_opening_a_newer_schema_fails_clearly(db: Path) -> None:
    DuckDBSink(db).shutdown()
    con = duckdb.connect(str(db))
    con.execute("UPDATE runtrace_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaVersionError, match="version 99"):
        DuckDBSink(db)
    with pytest.raises(SchemaVersionError):
        load_records(db)


def test_an_older_schema_is_migrated_on_open(db: Path) -> None:
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, session_id VARCHAR)")
    con.execute("INSERT INTO runs VALUES ('old', 's')")
    con.execute("CREATE TABLE run_events (run_id VARCHAR, sequence BIGINT, event JSON)")
    con.close()
    DuckDBSink(db).shutdown()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT value FROM runtrace_meta").fetchone() == ("1",)
    columns = {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
    assert {"owner_pid", "attributes", "duration_ms"} <= columns
    assert con.execute("SELECT run_id FROM runs").fetchall() == [("old",)]
    con.close()


def test_a_file_held_by_another_program_raises_store_locked(db: Path) -> None:
    DuckDBSink(db).shutdown()
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(30)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseLocked, match="locked"):
            DuckDBSink(db, lock_timeout=0.3)
        with pytest.raises(DatabaseError):
            connect(db, lock_timeout=0.3)
    finally:
        holder.kill()
        holder.wait()


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
