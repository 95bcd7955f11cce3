"""The DuckDB sink: runs and events in one local file that any DuckDB client can query.

Writes happen in a background thread, in batches handed to DuckDB as Arrow tables; the agent's
threads only append to a queue. The file's write lock is held only while a batch is written;
when another process holds it, the batch goes to a per-process Parquet segment instead (see
:mod:`runtrace.sinks.segments`) and the next writer to get the lock compacts it in. Readers use
:func:`connect`, which unions the file with the segments, so nothing is hidden from them.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pydantic_core

from ..errors import DatabaseError, DatabaseNotFound
from ..runs import RunEventRecord, RunRecord, RunSnapshot, RunStatus
from .fastload import build_event_records, gc_paused
from .schema import (
    EVENT_BATCH_SCHEMA,
    EVENT_COLUMNS,
    RUN_BATCH_SCHEMA,
    RUN_COLUMNS,
    RUNS_AS_TEXT,
    SCHEMA_VERSION,
    SEGMENTS_TABLE,
    check_version,
    ensure_schema,
    events_select_sql,
    read_schema_version,
    runs_select_sql,
    runs_upsert_sql,
)
from .segments import (
    EVENTS_SUFFIX,
    RUNS_SUFFIX,
    compact_segments,
    delete_files,
    ensure_segment_dir,
    list_segments,
    segment_dir,
    write_segment,
)
from .database import (
    HOST,
    is_lock_conflict,
    open_rw,
    pid_alive,
    retry_locked,
    transaction,
    translate_open_error,
)

__all__ = [
    "INTERRUPTED_ERROR",
    "DuckDBSink",
    "SinkStats",
    "compact",
    "connect",
    "export_parquet",
    "list_run_ids",
    "load_records",
    "recover_interrupted",
    "write_records",
]

_log = logging.getLogger("runtrace.duckdb")

INTERRUPTED_ERROR: Final = "process exited before the run ended"
"""The error :func:`recover_interrupted` gives the runs a dead process left unfinished."""

_NON_TERMINAL: Final = tuple(s.value for s in RunStatus if not s.is_terminal)


# --------------------------------------------------------------------------------------------
# Batches: snapshots and records -> Arrow


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT_FIELDS: Final = (
    "event_count",
    "created_at_ms",
    "updated_at_ms",
    "ended_at_ms",
    "input_tokens",
    "output_tokens",
)


def _run_row(s: RunSnapshot) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": s.id,
        "session_id": s.session_id,
        "agent_name": s.agent_name,
        "status": s.status.value,
        "prompt": s.prompt,
        "result_text": s.result_text,
        "error": s.error,
        "event_count": s.event_count,
        "created_at_ms": s.created_at_ms,
        "updated_at_ms": s.updated_at_ms,
        "ended_at_ms": s.ended_at_ms,
        "duration_ms": s.duration_ms,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "attributes": pydantic_core.to_json(dict(s.attributes)),
        "overflow": None,
    }
    # An integer the store accepted but BIGINT cannot hold stays exact in ``overflow``.
    big = {
        name: str(row[name])
        for name in (*_INT_FIELDS, "duration_ms")
        if row[name] is not None and not _INT64_MIN <= row[name] <= _INT64_MAX
    }
    if big:
        for name in big:
            row[name] = None
        row["overflow"] = pydantic_core.to_json(big)
    return row


def runs_table(snapshots: Iterable[RunSnapshot], *, owner: tuple[str, int] | None) -> pa.Table:
    """Arrow rows for ``runs`` (attributes as JSON text); ``owner`` is (host, pid) or None."""
    rows = [_run_row(s) for s in snapshots]
    host, pid = owner if owner is not None else (None, None)
    for row in rows:
        row["owner_host"] = host
        row["owner_pid"] = pid
    return pa.Table.from_pylist(rows, schema=RUN_BATCH_SCHEMA)


def events_table(run_ids: Sequence[str], records: Sequence[RunEventRecord]) -> pa.Table:
    """Arrow rows for ``run_events`` minus the typed columns, which DuckDB derives.

    Each event is serialised once, to its wire JSON, in the writer thread.
    """
    seqs: list[int] = []
    stamps: list[int] = []
    types: list[str] = []
    texts: list[bytes] = []
    add_seq, add_stamp, add_type, add_text = seqs.append, stamps.append, types.append, texts.append
    with gc_paused():
        for rec in records:
            event = rec.event
            add_seq(rec.sequence)
            add_stamp(rec.timestamp_ms)
            add_type(event.type)
            add_text(event.__pydantic_serializer__.to_json(event))
    return _events_arrow(run_ids, seqs, stamps, types, texts)


def _events_arrow(
    run_ids: Sequence[str],
    seqs: list[int],
    stamps: list[int],
    types: list[str],
    texts: list[bytes],
) -> pa.Table:
    return pa.table(
        [
            pa.array(run_ids, pa.string()),
            pa.array(seqs, pa.int64()),
            pa.array(stamps, pa.int64()),
            pa.array(types, pa.string()),
            pa.array(texts, pa.string()),
        ],
        schema=EVENT_BATCH_SCHEMA,
    )


_Version = tuple[int, int, bool, bool]

_MAX_ENDED_KEYS: Final = 100_000
"""How many ended runs a sink remembers the written version of (the most recent ones)."""


def _version(s: RunSnapshot) -> _Version:
    """The order of a run's snapshots: more events, later update, then the one that ended it.

    The core never moves ``updated_at_ms`` backwards, so a cancel or end that happened at the
    same millisecond as an event wins the tie. Same order as :func:`run_version_sql`.
    """
    return (s.event_count, s.updated_at_ms, s.status.is_terminal, s.ended_at_ms is not None)


def _newer(a: RunSnapshot, b: RunSnapshot) -> bool:
    return _version(a) > _version(b)


@dataclass
class _Batch:
    events: pa.Table | None
    runs: pa.Table | None
    attempts: int = 0
    replaces: list[str] | None = None
    """Run ids whose stored rows and events this batch replaces whole (``write_records``)."""

    @property
    def event_rows(self) -> int:
        return 0 if self.events is None else self.events.num_rows

    @property
    def run_rows(self) -> int:
        return 0 if self.runs is None else self.runs.num_rows


# --------------------------------------------------------------------------------------------
# Opening the file


def _prepare(path: str, lock_timeout: float) -> None:
    """Validate (and create or migrate) the file before any batch is accepted.

    Raises the :class:`DatabaseError` subclass that explains a bad file. While other
    processes read the file (a shared lock), the schema is checked read-only instead. The
    segment directory is created only once the file is known good, so a failed open leaves
    nothing behind.
    """

    def attempt() -> None:
        try:
            con = open_rw(path)
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise
            _check_read_only(path)  # readers hold it: validating is all we need now
            return
        try:
            ensure_schema(con, path)
        finally:
            con.close()

    retry_locked(attempt, path, lock_timeout)
    ensure_segment_dir(path)


def _check_read_only(path: str) -> None:
    con = duckdb.connect(":memory:")
    try:
        con.execute("ATTACH ? AS store (READ_ONLY)", [path])
        version = read_schema_version(con, "store")
        check_version(version, path)
        if version is None or version < SCHEMA_VERSION:
            raise DatabaseError(
                f"{path} needs its schema created or migrated, which needs the write lock "
                "that another program holds"
            )
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# Writing a batch


def _insert(con: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    if batch.replaces:
        con.execute(
            "DELETE FROM run_events WHERE list_contains(?::VARCHAR[], run_id)", [batch.replaces]
        )
    if batch.runs is not None and batch.runs.num_rows:
        con.register("_rt_runs_batch", batch.runs)
        try:
            select = runs_select_sql("_rt_runs_batch")
            if batch.replaces is not None:  # whole runs, as given: no version check
                con.execute("INSERT OR REPLACE INTO runs " + select)
            else:
                con.execute(runs_upsert_sql(select))
        finally:
            con.unregister("_rt_runs_batch")
    if batch.events is not None and batch.events.num_rows:
        con.register("_rt_events_batch", batch.events)
        try:
            con.execute("INSERT INTO run_events " + events_select_sql("_rt_events_batch"))
        finally:
            con.unregister("_rt_events_batch")


def _write_in_transaction(con: duckdb.DuckDBPyConnection, path: str, batches: list[_Batch]) -> None:
    """Compact segments, then write ``batches``, all or nothing; segments deleted after commit."""
    with transaction(con):
        compacted = compact_segments(con, path)
        for batch in batches:
            _insert(con, batch)
    delete_files(compacted)


class _Transaction:
    """One flush: into the file when its write lock is free at once, else into a segment.

    ``insert`` may run in a helper thread (DuckDB releases the GIL) while the next batch is
    built; calls never overlap. Nothing is visible to readers before ``commit``, and a
    failure before it leaves the file and the segments as they were.
    """

    def __init__(self, path: str, scratch: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self.path = path
        self._scratch = scratch
        self._compacted: list[Path] = []
        self._pending: list[_Batch] = []
        try:
            self._con: duckdb.DuckDBPyConnection | None = open_rw(path)
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise
            self._con = None
        if self._con is not None:
            try:
                self._con.execute("BEGIN TRANSACTION")
                self._compacted = compact_segments(self._con, path)
            except BaseException:
                self.rollback()
                raise

    @property
    def target(self) -> str:
        return "file" if self._con is not None else "segment"

    def insert(self, batch: _Batch) -> None:
        if self._con is None:
            self._pending.append(batch)
        else:
            _insert(self._con, batch)

    def commit(self) -> None:
        if self._con is None:
            events = [b.events for b in self._pending if b.event_rows]
            runs = [b.runs for b in self._pending if b.runs is not None and b.run_rows]
            write_segment(
                self.path,
                pa.concat_tables(events) if events else None,
                _latest_runs(pa.concat_tables(runs)) if runs else None,
                self._scratch(),
            )
            return
        con, self._con = self._con, None
        try:
            con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            con.close()
            raise
        con.close()
        delete_files(self._compacted)

    def rollback(self) -> None:
        self._pending = []
        if self._con is not None:
            con, self._con = self._con, None
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            with suppress(duckdb.Error):
                con.close()


def _latest_runs(runs: pa.Table) -> pa.Table:
    """Keep each run's last row: the batches are in order, so the last is the newest."""
    if runs.num_rows <= 1:
        return runs
    ids = runs.column("run_id").to_pylist()
    last = {run_id: i for i, run_id in enumerate(ids)}
    if len(last) == len(ids):
        return runs
    return runs.take(sorted(last.values()))


# --------------------------------------------------------------------------------------------
# The sink


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink: what it was given, wrote, and could not write (never silent)."""

    events_received: int
    runs_received: int
    events_written: int
    run_rows_written: int
    flushes_to_file: int
    flushes_to_segments: int
    failed_attempts: int
    events_rescued: int
    events_lost: int
    received_after_shutdown: int
    pending: int
    last_error: str | None = None
    run_rows_lost: int = 0
    """Snapshots that could not be serialised (logged at ERROR); their events are kept."""


@dataclass
class _Counters:
    events_received: int = 0
    runs_received: int = 0
    events_written: int = 0
    run_rows_written: int = 0
    flushes_to_file: int = 0
    flushes_to_segments: int = 0
    failed_attempts: int = 0
    events_rescued: int = 0
    events_lost: int = 0
    received_after_shutdown: int = 0
    last_error: str | None = None
    run_rows_lost: int = 0


class DuckDBSink:
    """A :class:`~runtrace.sinks.RunSink` that stores runs and events in a DuckDB file.

    ``on_run`` and ``on_event`` only append to a queue. A background thread writes the queue
    every ``flush_interval`` seconds (sooner once ``max_batch_size`` events wait): the latest
    snapshot of each changed run is upserted into ``runs`` and the new events appended to
    ``run_events``, in one transaction. A batch that fails is retried up to ``max_retries``
    times, then written aside to ``<file>.failed/`` as Parquet and counted in :attr:`stats`.

    Opening validates the file: :class:`~runtrace.errors.NotADuckDBFile`,
    :class:`~runtrace.errors.SchemaVersionError` or :class:`~runtrace.errors.DatabaseLocked`
    (another program held it past ``lock_timeout`` seconds). With ``recover=True`` the runs
    that dead processes on this host left unfinished are marked failed
    (:func:`recover_interrupted`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "runtrace.duckdb",
        *,
        flush_interval: float = 1.0,
        max_batch_size: int = 100_000,
        lock_timeout: float = 10.0,
        max_retries: int = 5,
        recover: bool = True,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.path = os.fspath(path)
        self.flush_interval = flush_interval
        self.max_batch_size = max_batch_size
        self.lock_timeout = lock_timeout
        self.max_retries = max_retries
        _prepare(self.path, lock_timeout)
        if recover:
            try:
                recover_interrupted(self.path, lock_timeout=0.0)
            except DatabaseError as exc:  # locked by readers: the next writer recovers
                _log.info("recovery of %s deferred: %s", self.path, exc)
        self._owner = (HOST, os.getpid())
        self._queue: deque[tuple[RunSnapshot, RunEventRecord | None]] = deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._retry: list[_Batch] = []
        # The version last written of each run: live runs, and the most recent ended ones
        # (bounded), so a stale snapshot queued late never overwrites a newer one.
        self._written_keys: dict[str, _Version] = {}
        self._ended_keys: dict[str, _Version] = {}
        self._counters = _Counters()
        self._pool: ThreadPoolExecutor | None = None
        self._scratch: duckdb.DuckDBPyConnection | None = None
        self._closed = False
        self._fork_held = False
        self._thread = self._start_writer()
        atexit.register(self.shutdown)
        _SINKS.add(self)
        # A multiprocessing child exits with os._exit (no atexit): shut down there too.
        multiprocessing.util.register_after_fork(self, _shutdown_at_child_exit)

    def _start_writer(self) -> threading.Thread:
        thread = threading.Thread(
            target=self._run, name=f"runtrace-duckdb:{Path(self.path).name}", daemon=True
        )
        thread.start()
        return thread

    # -- fork ------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        # Never fork in the middle of a flush: the child would inherit a half-done DuckDB
        # write (an open instance that believes it holds the file's lock).
        if not self._closed:
            self._fork_held = self._write_lock.acquire(timeout=self.lock_timeout + 1.0)

    def _after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._write_lock.release()

    def _after_fork_in_child(self) -> None:
        """The child is a new writer: its own queue, locks, owner pid and writer thread.

        What was queued before the fork belongs to the parent, which writes it; the child
        starts empty, so nothing is written twice. Objects of the parent's threads (the
        insert helper, the scratch connection) are kept but never used or destroyed here.
        """
        _ABANDONED.extend(o for o in (self._pool, self._scratch) if o is not None)
        self._fork_held = False
        self._pool = None
        self._scratch = None
        self._owner = (HOST, os.getpid())
        self._queue = deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._retry = []
        self._counters = _Counters()
        if not self._closed:
            self._thread = self._start_writer()

    # -- RunSink ---------------------------------------------------------------------------

    def on_run(self, snapshot: RunSnapshot) -> None:
        """Queue the run's new snapshot; never blocks."""
        if self._closed:
            self._counters.received_after_shutdown += 1
            return
        self._queue.append((snapshot, None))

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        """Queue the event and the run's snapshot after it; never blocks."""
        if self._closed:
            self._counters.received_after_shutdown += 1
            return
        queue = self._queue
        queue.append((snapshot, record))
        if len(queue) >= self.max_batch_size:
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Write everything queued so far; True if it all reached the file or a segment."""
        deadline = time.monotonic() + timeout_millis / 1000
        if not self._write_lock.acquire(timeout=max(timeout_millis / 1000, 0)):
            return False
        try:
            while True:
                self._flush_locked()
                if not self._queue or time.monotonic() >= deadline:
                    break
        finally:
            self._write_lock.release()
        return not self._queue and not self._retry

    def shutdown(self) -> None:
        """Write what is pending, compact this process's segments if possible, release all.

        Runs at interpreter exit too; calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.shutdown)
        self._wake.set()
        self._thread.join()
        with self._write_lock:
            self._flush_locked()
            deadline = time.monotonic() + self.lock_timeout
            while self._retry and time.monotonic() < deadline:
                time.sleep(0.05)
                self._flush_locked()
            self._rescue(self._retry)
            self._retry = []
            if self._pool is not None:
                self._pool.shutdown()
            if self._scratch is not None:
                self._scratch.close()
        try:
            compact(self.path, lock_timeout=min(self.lock_timeout, 2.0))
        except Exception as exc:  # shutdown never raises; the next writer compacts
            _log.info("segments of %s left for the next writer: %s", self.path, exc)

    # -- Bulk ------------------------------------------------------------------------------

    def write_records(self, records: Iterable[RunRecord]) -> int:
        """Write whole runs already in memory, now, in one transaction; returns events written.

        A run already stored is replaced whole (its row and all its events). Runs that have
        not ended are owned by this process, as if it had recorded them. Like the module's
        :func:`write_records`, it waits up to ``lock_timeout`` for the file's write lock
        (replacing needs the file itself, not a segment): :class:`DatabaseLocked` past that.
        """
        batch = _records_batch(records, owner=self._owner)
        with self._write_lock:
            self._flush_locked()  # keep earlier snapshots earlier
            con = retry_locked(lambda: open_rw(self.path), self.path, self.lock_timeout)
            try:
                _write_in_transaction(con, self.path, [batch])
            finally:
                con.close()
            self._counters.events_written += batch.event_rows
            self._counters.run_rows_written += batch.run_rows
        return batch.event_rows

    @property
    def stats(self) -> SinkStats:
        """A snapshot of the sink's counters."""
        c = self._counters
        pending = len(self._queue) + sum(b.event_rows for b in self._retry)
        return SinkStats(
            events_received=c.events_received + sum(1 for _, r in list(self._queue) if r),
            runs_received=c.runs_received,
            events_written=c.events_written,
            run_rows_written=c.run_rows_written,
            flushes_to_file=c.flushes_to_file,
            flushes_to_segments=c.flushes_to_segments,
            failed_attempts=c.failed_attempts,
            events_rescued=c.events_rescued,
            events_lost=c.events_lost,
            received_after_shutdown=c.received_after_shutdown,
            pending=pending,
            last_error=c.last_error,
            run_rows_lost=c.run_rows_lost,
        )

    def __enter__(self) -> DuckDBSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- Background ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._closed:
                break
            with self._write_lock:
                try:
                    self._flush_locked()
                except Exception:  # never let the thread die; the batch is kept for retry
                    _log.exception("runtrace DuckDB flush failed")

    def _drain(self, limit: int) -> _Batch | None:
        queue = self._queue
        n = min(len(queue), limit)
        if not n:
            return None
        popleft = queue.popleft
        items = [popleft() for _ in range(n)]
        try:
            return self._build(items, checked=False)
        except Exception as exc:
            # Something in the batch cannot be serialised (a value that bypassed validation):
            # build it again item by item, so only what cannot be written is dropped, counted.
            _log.debug("runtrace: rebuilding a batch item by item after %r", exc)
        try:
            return self._build(items, checked=True)
        except Exception:
            lost = sum(1 for _, rec in items if rec is not None)
            self._counters.events_received += lost
            self._counters.events_lost += lost
            _log.exception("runtrace: %d events lost for %s", lost, self.path)
            return _Batch(None, None)

    def _build(
        self, items: list[tuple[RunSnapshot, RunEventRecord | None]], *, checked: bool
    ) -> _Batch:
        # One pass, and no per-event tuples or dicts: the records are cold in memory (a
        # cache miss per pass), and objects that survive a batch make the cyclic GC walk the
        # whole heap again. The last snapshot queued for a run usually is its newest.
        ids: list[str] = []
        seqs: list[int] = []
        stamps: list[int] = []
        types: list[str] = []
        texts: list[bytes] = []
        latest: dict[str, RunSnapshot] = {}
        run_only: list[RunSnapshot] = []
        columns = (ids, seqs, stamps, types, texts)
        with gc_paused():  # its passes over a big heap would cost more than this loop
            if checked:
                self._collect_checked(items, latest, run_only, columns)
            else:
                self._collect(items, latest, run_only, columns)
        events = _events_arrow(ids, seqs, stamps, types, texts) if ids else None
        runs = self._latest_snapshots(latest, run_only, events, items)
        table = None
        if runs:
            table = self._runs_checked(runs) if checked else runs_table(runs, owner=self._owner)
        # Lost events were received too (and counted in events_lost).
        self._counters.events_received += (
            sum(1 for _, rec in items if rec is not None) if checked else len(ids)
        )
        self._counters.runs_received += len(run_only)
        return _Batch(events, table)

    def _collect_checked(
        self,
        items: list[tuple[RunSnapshot, RunEventRecord | None]],
        latest: dict[str, RunSnapshot],
        run_only: list[RunSnapshot],
        columns: tuple[list[str], list[int], list[int], list[str], list[bytes]],
    ) -> None:
        """:meth:`_collect`, one item at a time: an event that cannot be written is counted
        in ``events_lost`` and logged; its run's snapshot is still kept."""
        lost = 0
        first: str | None = None
        for snap, rec in items:
            if not isinstance(snap.id, str):
                first = first or f"run id {snap.id!r} is not a string"
                lost += rec is not None
                continue
            if rec is None:
                self._collect([(snap, rec)], latest, run_only, columns)
                continue
            try:
                event = rec.event
                text = event.__pydantic_serializer__.to_json(event)
                for name, value in (("sequence", rec.sequence), ("timestamp_ms", rec.timestamp_ms)):
                    if type(value) is not int or not _INT64_MIN <= value <= _INT64_MAX:
                        raise ValueError(f"{name} {value!r:.40} is not a 64-bit integer")
                if not isinstance(event.type, str):
                    raise ValueError(f"type {event.type!r:.40} is not a string")
            except Exception as exc:
                lost += 1
                first = first or f"event {rec.sequence!r:.40} of run {snap.id!r}: {exc}"
                latest[snap.id] = snap
                continue
            latest[snap.id] = snap
            ids, seqs, stamps, types, texts = columns
            ids.append(snap.id)
            seqs.append(rec.sequence)
            stamps.append(rec.timestamp_ms)
            types.append(event.type)
            texts.append(text)
        if lost:
            self._counters.events_lost += lost
            self._counters.last_error = first
            _log.error(
                "runtrace: %d event(s) cannot be written to %s and are lost; first: %s",
                lost,
                self.path,
                first,
            )

    def _runs_checked(self, runs: list[RunSnapshot]) -> pa.Table | None:
        """:func:`runs_table`, dropping (counted, logged) the snapshots that cannot be written."""
        good: list[pa.Table] = []
        for snap in runs:
            try:
                good.append(runs_table([snap], owner=self._owner))
            except Exception as exc:
                self._counters.run_rows_lost += 1
                self._counters.last_error = f"snapshot of run {snap.id!r}: {exc}"
                _log.error(
                    "runtrace: the snapshot of run %r cannot be written to %s: %s",
                    snap.id,
                    self.path,
                    exc,
                )
        return pa.concat_tables(good) if good else None

    @staticmethod
    def _collect(
        items: list[tuple[RunSnapshot, RunEventRecord | None]],
        latest: dict[str, RunSnapshot],
        run_only: list[RunSnapshot],
        columns: tuple[list[str], list[int], list[int], list[str], list[bytes]],
    ) -> None:
        ids, seqs, stamps, types, texts = columns
        add_id, add_seq, add_stamp = ids.append, seqs.append, stamps.append
        add_type, add_text = types.append, texts.append
        for snap, rec in items:
            run_id = snap.id
            latest[run_id] = snap
            if rec is None:
                run_only.append(snap)
                continue
            event = rec.event
            add_id(run_id)
            add_seq(rec.sequence)
            add_stamp(rec.timestamp_ms)
            add_type(event.type)
            add_text(event.__pydantic_serializer__.to_json(event))

    def _latest_snapshots(
        self,
        latest: dict[str, RunSnapshot],
        run_only: list[RunSnapshot],
        events: pa.Table | None,
        items: list[tuple[RunSnapshot, RunEventRecord | None]],
    ) -> list[RunSnapshot]:
        """Each changed run's newest snapshot, robust to threads enqueuing out of order.

        ``latest`` holds the last snapshot queued per run. It loses to an ``on_run`` snapshot
        that is newer (cancelled, ended), and must not be older than the run's highest
        sequence in the batch; if it is, a racing thread queued an older snapshot last, and
        the batch is searched for the one that came with the highest sequence (rare).
        """
        for s in run_only:
            if _newer(s, latest[s.id]):
                latest[s.id] = s
        if events is not None:
            maxima = events.group_by("run_id").aggregate([("sequence", "max")])
            for run_id, top in zip(
                maxima.column("run_id").to_pylist(),
                maxima.column("sequence_max").to_pylist(),
                strict=True,
            ):
                if latest[run_id].event_count < top + 1:
                    for snap, rec in reversed(items):
                        if rec is not None and snap.id == run_id and rec.sequence == top:
                            if _newer(snap, latest[run_id]):
                                latest[run_id] = snap
                            break
        written, ended = self._written_keys, self._ended_keys
        fresh: list[RunSnapshot] = []
        for run_id, s in latest.items():
            key = _version(s)
            old = written.get(run_id) or ended.get(run_id)
            if old is not None and key < old:
                continue  # lost a race against a snapshot written in an earlier flush
            fresh.append(s)
            if s.ended_at_ms is None:
                written[run_id] = key
            else:
                written.pop(run_id, None)
                ended.pop(run_id, None)  # re-inserted last: the most recent stay
                ended[run_id] = key
                if len(ended) > _MAX_ENDED_KEYS:
                    del ended[next(iter(ended))]
        return fresh

    def _flush_locked(self) -> None:
        """Write what is queued now (and earlier failures) in one transaction.

        The caller holds ``_write_lock``. Batches of ``max_batch_size`` are built in this
        thread while the previous one is inserted by a helper thread, so the Python half
        (JSON, Arrow) and the DuckDB half overlap. Only what was queued at the start is
        taken, so the file's lock is never held longer than that backlog needs.
        """
        budget = len(self._queue)
        if not budget and not self._retry:
            return
        batches = list(self._retry)
        self._retry = []
        try:
            tx = _Transaction(self.path, self._scratch_connection)
        except Exception as exc:
            while budget > 0:  # keep the drained events for the retry; nothing was written
                batch = self._drain(min(budget, self.max_batch_size))
                budget -= self.max_batch_size
                if batch is not None:
                    batches.append(batch)
            self._failed(batches, exc)
            return
        inflight: Future[None] | None = None
        try:
            for batch in batches:
                tx.insert(batch)
            while budget > 0:
                batch = self._drain(min(budget, self.max_batch_size))
                budget -= self.max_batch_size
                if batch is None:
                    break
                batches.append(batch)
                if inflight is not None:
                    inflight.result()
                inflight = self._helper().submit(tx.insert, batch)
            if inflight is not None:
                inflight.result()
            target = tx.target
            tx.commit()
        except Exception as exc:
            if inflight is not None:
                with suppress(Exception):
                    inflight.result()
            tx.rollback()
            self._failed(batches, exc)
            return
        c = self._counters
        c.events_written += sum(b.event_rows for b in batches)
        c.run_rows_written += sum(b.run_rows for b in batches)
        if target == "file":
            c.flushes_to_file += 1
        else:
            c.flushes_to_segments += 1

    def _helper(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="runtrace-duckdb-insert")
        return self._pool

    def _scratch_connection(self) -> duckdb.DuckDBPyConnection:
        if self._scratch is None:
            self._scratch = duckdb.connect(":memory:")
        return self._scratch

    def _failed(self, batches: list[_Batch], exc: Exception) -> None:
        c = self._counters
        c.failed_attempts += 1
        c.last_error = f"{type(exc).__name__}: {exc}"
        _log.warning(
            "runtrace: writing %d batch(es) to %s failed: %s", len(batches), self.path, exc
        )
        keep: list[_Batch] = []
        give_up: list[_Batch] = []
        for b in batches:
            b.attempts += 1
            (give_up if b.attempts > self.max_retries else keep).append(b)
        self._retry = keep
        self._rescue(give_up)

    def _rescue(self, batches: list[_Batch]) -> None:
        """Batches that cannot be written go to ``<file>.failed/`` as Parquet, counted."""
        for b in batches:
            try:
                directory = Path(f"{self.path}.failed")
                directory.mkdir(parents=True, exist_ok=True)
                stem = f"{time.time_ns():020d}-{os.getpid()}"
                if b.events is not None:
                    pq.write_table(b.events, directory / f"{stem}{EVENTS_SUFFIX}")
                if b.runs is not None:
                    pq.write_table(b.runs, directory / f"{stem}{RUNS_SUFFIX}")
                self._counters.events_rescued += b.event_rows
                _log.error(
                    "runtrace: %d events could not be stored in %s; kept in %s",
                    b.event_rows,
                    self.path,
                    directory,
                )
            except Exception:
                self._counters.events_lost += b.event_rows
                _log.exception("runtrace: %d events lost for %s", b.event_rows, self.path)


_SINKS: weakref.WeakSet[DuckDBSink] = weakref.WeakSet()
_ABANDONED: list[object] = []
"""Objects a forked child inherited from its parent's threads: kept alive, never touched."""


def _before_fork() -> None:
    for sink in list(_SINKS):
        sink._before_fork()


def _after_fork_in_parent() -> None:
    for sink in list(_SINKS):
        sink._after_fork_in_parent()


def _after_fork_in_child() -> None:
    for sink in list(_SINKS):
        sink._after_fork_in_child()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def _shutdown_ref(ref: weakref.ref[DuckDBSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.shutdown()


def _shutdown_at_child_exit(sink: DuckDBSink) -> None:
    """In a multiprocessing child: shut the sink down when the child's work returns."""
    multiprocessing.util.Finalize(None, _shutdown_ref, args=(weakref.ref(sink),), exitpriority=10)


def _records_batch(records: Iterable[RunRecord], *, owner: tuple[str, int] | None) -> _Batch:
    """A batch replacing whole runs: their rows and all their stored events (the last record
    of a run given twice wins)."""
    snapshots: list[RunSnapshot] = []
    run_ids: list[str] = []
    events: list[RunEventRecord] = []
    for record in {r.snapshot.id: r for r in records}.values():
        snap = record.snapshot
        if snap.event_count != len(record.events):
            snap = snap.model_copy(update={"event_count": len(record.events)})
        snapshots.append(snap)
        run_ids.extend([snap.id] * len(record.events))
        events.extend(record.events)
    # Only runs still going belong to a process; ended ones have nothing to recover.
    ongoing = [s for s in snapshots if not s.status.is_terminal]
    ended = [s for s in snapshots if s.status.is_terminal]
    tables = []
    if ended:
        tables.append(runs_table(ended, owner=None))
    if ongoing:
        tables.append(runs_table(ongoing, owner=owner))
    return _Batch(
        events_table(run_ids, events) if events else None,
        pa.concat_tables(tables) if tables else None,
        replaces=[s.id for s in snapshots],
    )


def write_records(
    path: str | os.PathLike[str],
    records: Iterable[RunRecord],
    *,
    lock_timeout: float = 10.0,
    owner: tuple[str, int] | None = None,
) -> int:
    """Write whole runs into the file at ``path`` in one transaction; returns events written.

    A run already stored is replaced whole: its row and all its events (segments included)
    give way to the record's, so writing back what :func:`load_records` read changes nothing.
    Waits (up to ``lock_timeout``) for the write lock instead of writing a segment, so the
    data is in the file itself when it returns.
    """
    path = os.fspath(path)
    batch = _records_batch(records, owner=owner)
    _prepare(path, lock_timeout)
    con = retry_locked(lambda: open_rw(path), path, lock_timeout)
    try:
        _write_in_transaction(con, path, [batch])
    finally:
        con.close()
    return batch.event_rows


# --------------------------------------------------------------------------------------------
# Reading


def compact(path: str | os.PathLike[str], *, lock_timeout: float = 0.0) -> int:
    """Move every segment into the file, if its write lock is free within ``lock_timeout``.

    Returns the number of segment files compacted. Raises :class:`DatabaseLocked` when the lock
    stays taken (a reader has the file open).
    """
    path = os.fspath(path)
    events, runs = list_segments(path)
    if not events and not runs:
        return 0
    con = retry_locked(lambda: open_rw(path), path, lock_timeout)
    try:
        ensure_schema(con, path)
        with transaction(con):
            files = compact_segments(con, path)
    finally:
        con.close()
    delete_files(files)
    return len(files)


def connect(
    path: str | os.PathLike[str] = "runtrace.duckdb", *, lock_timeout: float = 10.0
) -> duckdb.DuckDBPyConnection:
    """A read-only view of everything recorded, including by processes still recording.

    Returns an in-memory DuckDB connection with the file attached read-only as ``store`` and
    views ``runs``, ``run_events`` and ``runtrace_meta`` that union the file with the segment
    files of live writers, so they show everything up to one flush interval ago. While this
    connection is open, writers cannot write the file itself and keep writing segments;
    close it when done so they can be compacted. If no reader holds the file, segments left
    by earlier writers are compacted first.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatabaseNotFound(f"no runtrace store at {path}")
    # Someone else reads or writes it: the views below still show the segments.
    with suppress(DatabaseError):
        compact(path, lock_timeout=0.0)
    con = duckdb.connect(":memory:")
    try:
        retry_locked(
            lambda: con.execute("ATTACH ? AS store (READ_ONLY)", [path]), path, lock_timeout
        )
        version = read_schema_version(con, "store")
        check_version(version, path)
        if version is None or version < SCHEMA_VERSION:
            raise DatabaseError(
                f"{path} is not an up-to-date runtrace store (schema version {version}); "
                "open it once with DuckDBSink or write_records to create or migrate it"
            )
        _create_views(con, path)
    except duckdb.Error as exc:
        con.close()
        translated = translate_open_error(exc, path)
        if translated is exc:
            raise DatabaseError(f"cannot read {path}: {exc}") from exc
        raise translated from exc
    except BaseException:
        con.close()
        raise
    return con


def _create_views(con: duckdb.DuckDBPyConnection, path: str) -> None:
    try:
        directory = ensure_segment_dir(path)
    except OSError:
        directory = segment_dir(path)
    run_cols = ", ".join(name for name, _ in RUN_COLUMNS)
    event_cols = ", ".join(name for name, _ in EVENT_COLUMNS)
    con.execute("CREATE VIEW runtrace_meta AS SELECT * FROM store.main.runtrace_meta")
    if not (directory / f"_empty{EVENTS_SUFFIX}").exists():
        con.execute(f"CREATE VIEW runs AS SELECT {run_cols} FROM store.main.runs")
        con.execute(f"CREATE VIEW run_events AS SELECT {event_cols} FROM store.main.run_events")
        return
    con.execute("SET VARIABLE runtrace_events_glob = ?", [str(directory / f"*{EVENTS_SUFFIX}")])
    con.execute("SET VARIABLE runtrace_runs_glob = ?", [str(directory / f"*{RUNS_SUFFIX}")])
    not_compacted = (
        f"parse_filename(filename) NOT IN (SELECT name FROM store.main.{SEGMENTS_TABLE})"
    )
    seg_runs = (
        "SELECT * FROM read_parquet(getvariable('runtrace_runs_glob'), filename = true) "
        f"WHERE {not_compacted} "
        "QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY filename DESC) = 1"
    )
    run_select = runs_select_sql("seg").removeprefix("SELECT ").removesuffix(" FROM seg")
    con.execute(
        f"CREATE VIEW runs AS "
        f"WITH seg AS ({seg_runs}) "
        f"SELECT {run_cols} FROM store.main.runs WHERE run_id NOT IN (SELECT run_id FROM seg) "
        f"UNION ALL SELECT {run_select} FROM seg"
    )
    event_select = event_cols.replace("event,", "event::JSON AS event,")
    con.execute(
        f"CREATE VIEW run_events AS "
        f"SELECT {event_cols} FROM store.main.run_events "
        f"UNION ALL SELECT {event_select} "
        "FROM read_parquet(getvariable('runtrace_events_glob'), filename = true) "
        f"WHERE {not_compacted}"
    )


@contextmanager
def _reading(
    path: str | os.PathLike[str], lock_timeout: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, lock_timeout=lock_timeout)
    try:
        yield con
    finally:
        con.close()


def _snapshot_from_row(row: dict[str, Any]) -> RunSnapshot:
    attrs = row["attributes"]
    if row.get("overflow"):
        row.update({k: int(v) for k, v in pydantic_core.from_json(row["overflow"]).items()})
    return RunSnapshot(
        id=row["run_id"],
        session_id=row["session_id"],
        status=RunStatus(row["status"]),
        prompt=row["prompt"] or "",
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        result_text=row["result_text"],
        error=row["error"],
        event_count=row["event_count"] or 0,
        agent_name=row["agent_name"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        ended_at_ms=row["ended_at_ms"],
        input_tokens=row["input_tokens"] or 0,
        output_tokens=row["output_tokens"] or 0,
        attributes=pydantic_core.from_json(attrs) if attrs else {},
    )


def load_records(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    session_id: str | None = None,
    status: RunStatus | str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    run_ids: Sequence[str] | None = None,
    lock_timeout: float = 10.0,
) -> list[RunRecord]:
    """Runs with all their events, ready for :meth:`RunStore.replace_records`, oldest first.

    Filters: ``session_id``; ``status``; runs created at or after ``since_ms`` and before
    ``until_ms``; ``run_ids`` (ids not stored are skipped; the order stays oldest first). With
    :func:`list_run_ids`, ``run_ids`` reads a big file a batch of runs at a time. Reads through
    :func:`connect`, so live writers' segments are included.
    """
    where = ["1 = 1"]
    params: list[Any] = []
    if run_ids is not None:
        where.append("list_contains(?::VARCHAR[], run_id)")
        params.append(list(run_ids))
    if session_id is not None:
        where.append("session_id = ?")
        params.append(session_id)
    if status is not None:
        where.append("status = ?")
        params.append(RunStatus(status).value)
    if since_ms is not None:
        where.append("created_at_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        where.append("created_at_ms < ?")
        params.append(until_ms)
    run_sql = RUNS_AS_TEXT + " FROM runs WHERE " + " AND ".join(where)
    with _reading(path, lock_timeout) as con:
        con.execute(f"CREATE TEMP TABLE _rt_sel AS {run_sql}", params)
        run_rows = con.sql("SELECT * FROM _rt_sel ORDER BY created_at_ms, run_id").to_arrow_table()
        events = con.sql(
            "SELECT e.run_id, e.sequence, e.timestamp_ms, e.type, e.event::VARCHAR AS event "
            "FROM run_events e SEMI JOIN _rt_sel s ON e.run_id = s.run_id "
            "ORDER BY e.run_id, e.sequence"
        ).to_arrow_table()
        snapshots = [_snapshot_from_row(r) for r in run_rows.to_pylist()]
        with gc_paused():
            by_run = build_event_records(events)
            out: list[RunRecord] = []
            for snap in snapshots:
                evs = by_run.get(snap.id, [])
                if snap.event_count != len(evs):
                    snap = snap.model_copy(update={"event_count": len(evs)})
                out.append(RunRecord.model_construct(snapshot=snap, events=evs))
    return out


def list_run_ids(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    since_ms: int | None = None,
    lock_timeout: float = 10.0,
) -> list[str]:
    """The ids of the stored runs, oldest first (:func:`load_records`' order), without events.

    ``since_ms`` keeps runs created at or after it. Cheap even for a big file, so a reader can
    hand slices of it to ``load_records(path, run_ids=...)`` instead of loading every event.
    """
    with _reading(path, lock_timeout) as con:
        rows = con.execute(
            "SELECT run_id FROM runs WHERE ($1::BIGINT IS NULL OR created_at_ms >= $1) "
            "ORDER BY created_at_ms, run_id",
            [since_ms],
        ).fetchall()
    return [run_id for (run_id,) in rows]


# --------------------------------------------------------------------------------------------
# Recovery and export


def recover_interrupted(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    *,
    error: str = INTERRUPTED_ERROR,
    lock_timeout: float = 10.0,
) -> list[RunSnapshot]:
    """Mark failed the unfinished runs whose owning process on this host has exited.

    Runs owned by a live process, by another host, or by no process (imported) are left
    alone, as are terminal runs (cancelled ones included). The end time of a recovered run
    is its last update. Returns the recovered snapshots. Segments are compacted first so
    that the dead process's last flushes count.
    """
    path = os.fspath(path)
    con = retry_locked(lambda: open_rw(path), path, lock_timeout)
    try:
        ensure_schema(con, path)
        with transaction(con):
            files = compact_segments(con, path)
            owners = con.execute(
                "SELECT DISTINCT owner_pid FROM runs WHERE list_contains(?, status) "
                "AND owner_host = ? AND owner_pid IS NOT NULL",
                [list(_NON_TERMINAL), HOST],
            ).fetchall()
            dead = [pid for (pid,) in owners if not pid_alive(pid)]
            recovered: list[RunSnapshot] = []
            if dead:
                ids = [
                    rid
                    for (rid,) in con.execute(
                        "SELECT run_id FROM runs WHERE list_contains(?, status) "
                        "AND owner_host = ? AND list_contains(?, owner_pid)",
                        [list(_NON_TERMINAL), HOST, dead],
                    ).fetchall()
                ]
                con.execute(
                    "UPDATE runs SET status = 'failed', error = ?, "
                    "ended_at_ms = updated_at_ms, duration_ms = updated_at_ms - created_at_ms "
                    "WHERE list_contains(?, run_id)",
                    [error, ids],
                )
                rows = con.sql(
                    RUNS_AS_TEXT + " FROM runs "
                    "WHERE list_contains(?, run_id) ORDER BY created_at_ms",
                    params=[ids],
                ).to_arrow_table()
                recovered = [_snapshot_from_row(r) for r in rows.to_pylist()]
    finally:
        con.close()
    delete_files(files)
    return recovered


def export_parquet(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, lock_timeout: float = 10.0
) -> dict[str, int]:
    """Write ``runs`` and ``run_events`` as Parquet under ``out_dir``, hive-partitioned by day.

    Layout: ``out_dir/runs/day=YYYY-MM-DD/*.parquet`` (day the run was created, UTC) and
    ``out_dir/run_events/day=YYYY-MM-DD/*.parquet`` (day of the event). File names carry the
    host and a unique token, so many machines can export into one bucket without clobbering.
    Returns the row count per table.
    """
    out = Path(out_dir)
    token = f"{HOST}-{os.getpid()}-{time.time_ns()}"
    counts: dict[str, int] = {}
    queries = {
        "runs": RUNS_AS_TEXT + ", strftime(epoch_ms(created_at_ms), '%Y-%m-%d') AS day FROM runs",
        "run_events": "SELECT * REPLACE (event::VARCHAR AS event), "
        "strftime(epoch_ms(timestamp_ms), '%Y-%m-%d') AS day FROM run_events",
    }
    with _reading(path, lock_timeout) as con:
        for table, sql in queries.items():
            reader = con.sql(sql).to_arrow_reader(100_000)
            count = 0

            def counted(r: pa.RecordBatchReader = reader) -> Iterator[pa.RecordBatch]:
                nonlocal count
                for b in r:
                    count += b.num_rows
                    yield b

            pads.write_dataset(
                counted(),
                out / table,
                schema=reader.schema,
                format="parquet",
                partitioning=pads.partitioning(pa.schema([("day", pa.string())]), flavor="hive"),
                basename_template=f"{token}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
            )
            counts[table] = count
    return counts
