"""The DuckDB sink under real faults: a full disk, an unwritable path, the file deleted or
replaced while it records, and a reader that cannot write.

Tests run as root, where permissions stop no write, so a full disk is a file-size limit in a
recording process of its own (``duckdb_helpers/faulty.py``): with ``SIGXFSZ`` ignored every
write past ``RLIMIT_FSIZE`` fails with ``EFBIG``, as on a full disk, and lifting the limit is
space coming back. An unwritable path is one under a regular file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from duckdb_helpers import EVENTS, query, record_deltas, record_run

from runtrace import DuckDBSink, RunStore, connect
from runtrace.duckdb.segments import list_segments
from runtrace.errors import DatabaseError

ROOT = Path(__file__).resolve().parents[2]
HELPERS = ROOT / "tests" / "duckdb_helpers"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses RLIMIT_FSIZE")


class Faulty:
    """The recording process of ``faulty.py``, driven one command at a time."""

    def __init__(self, db: Path) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "faulty.py"), str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def __call__(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the faulty process died at {command!r}: {self.log()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def log(self) -> str:
        """Everything it logged (stderr), once it has exited."""
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        return self.proc.stderr.read()


def test_a_full_disk_keeps_the_events_logs_once_and_writes_them_when_space_is_back(
    db: Path,
) -> None:
    faulty = Faulty(db)
    assert faulty("open flush_interval=60 max_retries=1000") == {}
    first = faulty("record 50")["run_id"]
    assert faulty("flush")["flushed"]
    assert faulty("limit 1") == {}  # the disk is full from here on
    second = faulty("record 50")["run_id"]
    for _ in range(3):
        failed = faulty("flush")
        assert not failed["flushed"]
    stats = failed["stats"]
    assert stats["events_written"] == 50 and stats["pending"] == 50
    assert stats["failed_attempts"] == 3 and stats["events_lost"] == 0
    assert "File too large" in stats["last_error"]
    assert faulty("persisted") == {"persisted": [first]}  # the second is only in memory
    assert faulty("unlimit") == {}  # space is back
    done = faulty("flush")
    assert done["flushed"] and done["stats"]["pending"] == 0
    assert done["stats"]["events_written"] == 100 and done["stats"]["events_lost"] == 0
    assert faulty("persisted") == {"persisted": [first, second]}
    assert faulty("shutdown")["stats"]["events_rescued"] == 0
    log = faulty.log()
    assert log.count("failed, the events are kept") == 1, log  # once, not per attempt
    assert "is written again" in log
    assert query(
        db,
        "SELECT run_id, count(*), count(DISTINCT sequence) FROM run_events "
        "GROUP BY ALL ORDER BY min(timestamp_ms)",
    ) == [(first, 50, 50), (second, 50, 50)]


def test_batches_that_keep_failing_are_set_aside_and_their_ended_runs_count_as_persisted(
    db: Path,
) -> None:
    faulty = Faulty(db)
    assert faulty("open flush_interval=60 max_retries=1") == {}
    faulty("record 1")
    assert faulty("flush")["flushed"]
    # The file's log of 20,000 events (~1 MB) cannot be written, their Parquet (~0.1 MB) can.
    assert faulty("limit 300000") == {}
    run_id = faulty("record 20000")["run_id"]
    faulty("flush")
    stats = faulty("flush")["stats"]  # the second failure passes max_retries
    assert stats["events_rescued"] == 20_000 and stats["events_lost"] == 0, stats
    assert stats["pending"] == 0
    assert run_id in faulty("persisted")["persisted"]  # stored aside: retention may drop it
    faulty("shutdown")
    faulty.log()
    rescued = sorted(Path(f"{db}.failed").glob("*.events.parquet"))
    assert sum(pq.read_table(f).num_rows for f in rescued) == 20_000


def test_a_batch_that_cannot_be_set_aside_either_is_kept_not_lost_until_shutdown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "runs.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, max_retries=0, raise_errors=False)
    heard: list[list[str]] = []
    sink.add_persisted_listener(heard.append)
    run_id = record_run(store, sink, EVENTS)
    sink.on_run(store.finish(run_id))
    shutil.rmtree(home)
    home.write_text("the directory is now a regular file")  # nothing under it can be written
    with caplog.at_level(logging.DEBUG, logger="runtrace.duckdb"):
        for _ in range(3):
            assert not sink.force_flush()
    stats = sink.stats
    assert stats.pending == len(EVENTS) and stats.events_lost == 0
    assert stats.events_rescued == 0 and heard == []  # a batch not stored is never reported
    assert str(db) in caplog.text
    sink.shutdown(timeout_millis=1_000)  # the last chance: now it is lost, and says so
    assert sink.stats.events_lost == len(EVENTS) and heard == []
    assert "events lost" in caplog.text


def test_an_unwritable_database_path_is_refused_at_open_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    path = blocker / "runs.duckdb"
    with pytest.raises(DatabaseError, match=str(path)):
        DuckDBSink(path)
    assert not Path(f"{path}.segments").exists()


def test_a_file_deleted_under_a_running_sink_is_noticed_and_written_on(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    before = record_run(store, sink, EVENTS[:2])
    assert sink.force_flush()
    db.unlink()
    live = record_run(store, sink, EVENTS[:1])
    record_deltas(store, sink, before, 3)  # more of the run whose first events went
    with caplog.at_level(logging.ERROR, logger="runtrace.duckdb"):
        assert sink.force_flush()
        record_deltas(store, sink, live, 2)
        assert sink.force_flush()
    assert sink.stats.database_replaced == 1 and sink.stats.events_lost == 0
    assert caplog.text.count("was deleted under the sink") == 1
    sink.shutdown()
    # Everything since the last commit is in the new file, the runs rows whole.
    assert query(db, "SELECT run_id, count(*) FROM run_events GROUP BY ALL ORDER BY 1") == sorted(
        [(before, 3), (live, 3)]
    )
    assert query(db, "SELECT count(*) FROM runs") == [(2,)]


def test_a_file_replaced_under_a_running_sink_is_noticed_and_written_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, other = tmp_path / "runs.duckdb", tmp_path / "other.duckdb"
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60)
    record_run(store, sink, EVENTS[:2])
    assert sink.force_flush()
    with DuckDBSink(other, flush_interval=60) as elsewhere:  # another valid database
        kept = record_run(RunStore(), elsewhere, EVENTS[:3])
    os.replace(other, db)
    new = record_run(store, sink, EVENTS[:1])
    with caplog.at_level(logging.ERROR, logger="runtrace.duckdb"):
        assert sink.force_flush()
    sink.shutdown()
    assert sink.stats.database_replaced == 1
    assert "replaced by another file" in caplog.text
    assert query(db, "SELECT run_id, count(*) FROM run_events GROUP BY ALL ORDER BY 1") == sorted(
        [(kept, 3), (new, 1)]
    )


def test_a_file_replaced_by_something_not_a_database_keeps_the_events(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=60, raise_errors=False)
    record_run(store, sink, EVENTS[:2])
    assert sink.force_flush()
    db.unlink()
    db.write_text("not a database")
    run_id = record_run(store, sink, EVENTS[:2])
    with caplog.at_level(logging.ERROR, logger="runtrace.duckdb"):
        assert not sink.force_flush()
    assert sink.stats.pending == 2 and sink.stats.events_lost == 0
    assert "not a DuckDB database" in sink.stats.last_error  # type: ignore[operator]
    db.unlink()  # the stray file goes: the kept events are written into a new database
    assert sink.force_flush()
    sink.shutdown()
    assert query(db, "SELECT run_id, count(*) FROM run_events GROUP BY ALL") == [(run_id, 2)]


def test_a_reader_that_cannot_write_still_reads_what_a_gone_writer_left_in_segments(
    db: Path,
) -> None:
    # A writer that recorded while a reader held the file leaves segments behind; the next
    # connect compacts them, which writes. On a full disk that commit fails (DuckDB raises
    # TransactionException, which connect let through): the reader must still read.
    DuckDBSink(db).shutdown()
    held = connect(db)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, str(HELPERS / "recorder.py"), "batch", str(db), "w", "2", "30"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    held.close()
    assert done.returncode == 0, done.stderr
    assert list_segments(db) != ([], [])  # it could not compact them while the reader read
    faulty = Faulty(db)
    assert faulty("limit 1") == {}
    assert faulty("read") == {"counts": [2, 60]}
    faulty.log()
    assert query(db, "SELECT count(*) FROM run_events") == [(60,)]


def test_what_is_queued_during_an_outage_is_accounted_for_at_shutdown(db: Path) -> None:
    faulty = Faulty(db)
    assert faulty("open flush_interval=60 max_retries=1000 lock_timeout=0.5") == {}
    assert faulty("limit 1") == {}
    faulty("record 50")
    assert not faulty("flush")["flushed"]  # taken, failed, kept for a retry
    faulty("record 30")
    held = faulty("flush")  # only the retry is tried; the new run waits in the queue
    assert not held["flushed"] and held["stats"]["events_written"] == 0
    assert held["stats"]["events_received"] == 80
    stats = faulty("shutdown")["stats"]  # still full: nothing can be stored or set aside
    assert stats["pending"] == 0 and stats["events_written"] == 0
    assert stats["events_lost"] == 80  # counted, none silently left behind
    assert faulty("persisted") == {"persisted": []}
    assert "events lost" in faulty.log()


def test_spills_of_a_full_queue_on_a_full_disk_are_kept_logged_once_and_written_later(
    db: Path,
) -> None:
    faulty = Faulty(db)
    assert faulty("open flush_interval=60 max_queue_size=10 max_batch_size=10") == {}
    assert faulty("limit 1") == {}
    run_id = faulty("record 100")["run_id"]  # the queue is full ten times over: spills fail
    assert faulty("unlimit") == {}
    done = faulty("flush")
    assert done["flushed"], done
    stats = done["stats"]
    assert stats["events_written"] == 100 and stats["events_lost"] == 0
    assert stats["pending"] == 0 and stats["events_rescued"] == 0
    faulty("shutdown")
    log = faulty.log()
    assert log.count("failed, they are kept") == 1, log  # once, not once per spill
    assert "is written again" in log
    assert query(db, "SELECT count(*), count(DISTINCT sequence) FROM run_events") == [(100, 100)]
    assert query(db, "SELECT run_id, status FROM runs") == [(run_id, "completed")]
