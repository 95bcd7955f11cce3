"""Opening the file: a file that is not DuckDB, one held by another program, odd names, and
a failed open that leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from duckdb_helpers import query, start_run

from runtrace import DuckDBSink, RunStore, connect
from runtrace.duckdb import load_records, write_records
from runtrace.duckdb.database import new_connection
from runtrace.errors import DatabaseError, DatabaseLocked, NotADuckDBFile


def test_opening_a_file_that_is_not_duckdb_fails_clearly(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 500)
    with pytest.raises(NotADuckDBFile, match="not a DuckDB"):
        DuckDBSink(db)
    with pytest.raises(NotADuckDBFile):
        connect(db)


def test_a_file_held_by_another_program_raises_database_locked(db: Path) -> None:
    DuckDBSink(db).shutdown()

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


@pytest.mark.parametrize("name", ["my-runs.duckdb", "my runs.duckdb", 'say "hi".duckdb'])
def test_file_names_that_need_quoting_in_sql_work(tmp_path: Path, name: str) -> None:
    db = tmp_path / name
    store = RunStore()
    with DuckDBSink(db, flush_interval=60) as sink:
        run = start_run(store, sink, "s")
        sink.on_event(*store.record(run.id, {"type": "agent_end", "text": "ok"}))
    assert [r.snapshot.id for r in load_records(db)] == [run.id]
    assert write_records(db, store.records()) == 1
    assert query(db, "SELECT count(*) FROM run_events") == [(1,)]


def test_a_failed_open_leaves_no_segment_directory(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 500)
    with pytest.raises(NotADuckDBFile):
        DuckDBSink(notes)
    with pytest.raises(NotADuckDBFile):
        write_records(notes, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert notes.read_text() == "not a database\n" * 500


@pytest.mark.parametrize("quiet", [True, False])
def test_runtraces_own_connections_print_no_progress_bar(
    quiet: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    # DuckDB prints one to stdout, terminal or not, once a query runs longer than
    # progress_bar_time; the agent's stdout may be a protocol. (False: the control.)
    con = new_connection() if quiet else duckdb.connect()
    con.execute("SET progress_bar_time = 0")
    con.execute("SELECT count(*) FROM (SELECT * FROM range(2000000) t(i) ORDER BY hash(i))")
    con.close()
    printed = capfd.readouterr().out
    assert (printed == "") is quiet


def test_a_database_path_with_a_nul_is_refused_not_cut_short(tmp_path: Path) -> None:
    from runtrace import DuckDBSink
    from runtrace.duckdb import write_records
    from runtrace.errors import DatabaseError

    cut = tmp_path / "runs"  # what DuckDB would open instead: the path up to the NUL
    hostile = f"{cut}\x00.duckdb"
    with pytest.raises(DatabaseError, match="NUL"):
        DuckDBSink(hostile)
    with pytest.raises(DatabaseError, match="NUL"):
        write_records(hostile, [])
    assert not cut.exists()
