"""The DuckDB sink across processes: SIGKILL and recovery, readers while recording, two writers,
and a sink inherited through fork."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from duckdb_helpers import query, start_run

from runtrace import DuckDBSink, RunStatus, RunStore, connect
from runtrace.duckdb import INTERRUPTED_ERROR, load_records, recover_interrupted
from runtrace.duckdb.database import HOST
from runtrace.duckdb.segments import list_segments

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "tests" / "duckdb_helpers" / "recorder.py"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and fork")


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(RECORDER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def test_sigkill_mid_run_loses_at_most_the_last_flush_and_recovery_fails_the_run(
    tmp_path: Path,
) -> None:
    db = tmp_path / "killed.duckdb"
    proc = spawn("forever", str(db))
    assert proc.stdout is not None
    flushed = 0
    for line in proc.stdout:  # wait for a few flushes, then kill in the middle of recording
        flushed = int(line.split()[1])
        if flushed > 500:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    con = connect(db)  # the file opens; a reader sees what was flushed
    statuses = dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    live_events = con.execute(
        "SELECT count(*), max(sequence) FROM run_events WHERE run_id = 'live-run'"
    ).fetchone()
    con.close()
    assert statuses == {
        "completed-run": "completed",
        "cancelled-run": "cancelled",
        "live-run": "executing",
    }
    assert live_events is not None
    assert live_events[0] >= flushed  # every event flushed before the kill survived
    assert live_events[1] == live_events[0] - 1  # and no gap

    # A run owned by this (live) process is never touched by recovery.
    store = RunStore()
    with DuckDBSink(db, recover=False) as sink:
        mine = start_run(store, sink, "s", "mine")

    recovered = recover_interrupted(db)
    assert [s.id for s in recovered] == ["live-run"]
    assert recovered[0].status is RunStatus.FAILED
    assert recovered[0].error == INTERRUPTED_ERROR
    assert recovered[0].ended_at_ms == recovered[0].updated_at_ms
    by_id = {r.snapshot.id: r.snapshot for r in load_records(db)}
    assert by_id["cancelled-run"].status is RunStatus.CANCELLED
    assert by_id["completed-run"].status is RunStatus.COMPLETED
    assert by_id["live-run"].status is RunStatus.FAILED
    assert by_id[mine.id].status is RunStatus.CREATED
    assert recover_interrupted(db) == []  # idempotent


def test_sink_open_recovers_runs_of_dead_processes(tmp_path: Path) -> None:
    db = tmp_path / "auto.duckdb"
    proc = spawn("forever", str(db))
    assert proc.stdout is not None
    proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    DuckDBSink(db).shutdown()  # recover=True by default
    con = connect(db)
    assert con.execute("SELECT status, error FROM runs WHERE run_id = 'live-run'").fetchone() == (
        "failed",
        INTERRUPTED_ERROR,
    )
    con.close()


def test_reader_sees_live_events_while_another_process_records(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    DuckDBSink(db).shutdown()
    total = 3_000
    proc = spawn("trickle", str(db), str(total))
    held = connect(db)  # held open the whole time: the writer must fall back to segments
    counts: list[int] = []
    try:
        while proc.poll() is None:
            row = held.execute("SELECT count(*) FROM run_events").fetchone()
            assert row is not None
            counts.append(row[0])
            time.sleep(0.02)
        finish(proc)
        final = held.execute("SELECT count(*), count(DISTINCT sequence) FROM run_events").fetchone()
        status = held.execute("SELECT status, event_count FROM runs").fetchone()
    finally:
        held.close()
    assert counts == sorted(counts)  # never goes backwards
    assert any(0 < c < total for c in counts)  # saw the run while it was being recorded
    assert final == (total, total)
    assert status == ("completed", total)
    # The writer could not compact while the reader held the file; the next open does.
    assert list_segments(db) != ([], [])
    con = connect(db)
    con.close()
    assert list_segments(db) == ([], [])
    plain = duckdb.connect(str(db), read_only=True)
    assert plain.execute("SELECT count(*) FROM run_events").fetchone() == (total,)
    plain.close()


def test_two_processes_record_at_once_and_every_event_is_accounted_for(tmp_path: Path) -> None:
    db = tmp_path / "two.duckdb"
    DuckDBSink(db).shutdown()
    runs, events = 5, 400
    procs = [spawn("batch", str(db), tag, str(runs), str(events)) for tag in ("a", "b")]
    peeks = 0
    while any(p.poll() is None for p in procs):  # a reader comes and goes meanwhile
        con = connect(db)
        con.execute("SELECT count(*) FROM run_events").fetchone()
        con.close()
        peeks += 1
        time.sleep(0.05)
    for p in procs:
        assert finish(p).strip() == "done"
    assert peeks > 0
    # Once every writer has shut down, the file alone holds everything.
    assert list_segments(db) == ([], [])
    plain = duckdb.connect(str(db), read_only=True)
    rows = plain.execute(
        "SELECT run_id, count(*), count(DISTINCT sequence), min(sequence), max(sequence) "
        "FROM run_events GROUP BY run_id ORDER BY run_id"
    ).fetchall()
    run_rows = plain.execute(
        "SELECT run_id, status, event_count FROM runs ORDER BY run_id"
    ).fetchall()
    plain.close()
    expected_ids = sorted(f"{t}-{r}" for t in ("a", "b") for r in range(runs))
    assert rows == [(i, events, events, 0, events - 1) for i in expected_ids]
    assert run_rows == [(i, "completed", events) for i in expected_ids]


def test_a_forked_child_records_through_the_sink_it_inherited(tmp_path: Path) -> None:
    db = tmp_path / "fork.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    parent = start_run(store, sink, "parent")
    for i in range(3):  # queued before the fork: the parent's to write, once
        sink.on_event(*store.record(parent.id, {"type": "text_delta", "text": f"t{i}"}))

    def child(flush: bool) -> None:
        run = start_run(store, sink, f"child-flush={flush}")
        sink.on_event(*store.record(run.id, {"type": "agent_end", "text": "ok"}))
        sink.on_run(store.finish(run.id))
        if flush:
            ok = sink.force_flush() and sink._batch.worker_alive
            stats = sink.stats
            ok = ok and (stats.events_written, stats.pending) == (1, 0)
            sys.exit(0 if ok and sink._builder.owner == (HOST, os.getpid()) else 3)
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
