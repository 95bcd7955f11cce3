"""Writing batches: into the file in one transaction, or into a segment when the file is busy.

Both writers use this: the sink's background writer (:class:`Transaction`, which falls back to
a segment instead of waiting for the write lock) and the bulk :func:`write_records`, which
waits for the lock because it replaces whole runs in the file itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

import duckdb
import pyarrow as pa

from ..runs import RunEventRecord, RunRecord, RunSnapshot
from .database import is_lock_conflict, new_connection, open_rw, retry_locked
from .rows import Batch, Owner, events_table, latest_runs, runs_table
from .schema import (
    attach_read_only,
    ensure_schema,
    events_select_sql,
    require_current,
    runs_select_sql,
    runs_upsert_sql,
)
from .segments import (
    compact_segments,
    compacting_transaction,
    delete_files,
    ensure_segment_dir,
    write_segment,
)


def prepare(path: str, lock_timeout: float) -> None:
    """Validate (and create or migrate) the file before any batch is accepted.

    Raises the :class:`~runtrace.errors.DatabaseError` subclass that explains a bad file.
    While other processes read the file (a shared lock), the schema is checked read-only
    instead. The segment directory is created only once the file is known good, so a failed
    open leaves nothing behind.
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
    con = new_connection()
    try:
        attach_read_only(con, path)
        require_current(
            con,
            path,
            "{path} needs its schema created or migrated, which needs the write lock "
            "that another program holds",
        )
    finally:
        con.close()


def insert(con: duckdb.DuckDBPyConnection, batch: Batch) -> None:
    """Write ``batch`` on ``con`` (inside the caller's transaction)."""
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
        con.register("_rt_events_batch", as_json(batch.events))
        try:
            con.execute("INSERT INTO run_events " + events_select_sql("_rt_events_batch"))
        finally:
            con.unregister("_rt_events_batch")


_JSON = pa.json_(pa.string())


def as_json(events: pa.Table) -> pa.Table:
    """``events`` with its ``event`` column typed as Arrow's JSON extension (zero-copy), which
    DuckDB takes as JSON without parsing every document again: pydantic made them."""
    i = events.schema.get_field_index("event")
    column = events.column(i)
    if column.type == _JSON:
        return events
    chunks = [pa.ExtensionArray.from_storage(_JSON, chunk) for chunk in column.chunks]
    return events.set_column(i, pa.field("event", _JSON), pa.chunked_array(chunks, _JSON))


def write_to_segment(path: str, batches: list[Batch], scratch: duckdb.DuckDBPyConnection) -> None:
    """Write ``batches`` as one segment (each run's last row only), for when the file is busy."""
    events = [b.events for b in batches if b.event_rows]
    runs = [b.runs for b in batches if b.runs is not None and b.run_rows]
    write_segment(
        path,
        pa.concat_tables(events) if events else None,
        latest_runs(pa.concat_tables(runs)) if runs else None,
        scratch,
    )


class Transaction:
    """One flush: into the file when its write lock is free at once, else into a segment.

    ``insert`` may run in a helper thread (DuckDB releases the GIL) while the next batch is
    built; calls never overlap. Nothing is visible to readers before ``commit``, and a
    failure before it leaves the file and the segments as they were.
    """

    def __init__(self, path: str, scratch: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self.path = path
        self._scratch = scratch
        self._compacted: list[Path] = []
        self._pending: list[Batch] = []
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
    def to_file(self) -> bool:
        """True when this flush goes into the file, False when into a segment."""
        return self._con is not None

    def insert(self, batch: Batch) -> None:
        if self._con is None:
            self._pending.append(batch)
        else:
            insert(self._con, batch)

    def commit(self) -> None:
        if self._con is None:
            write_to_segment(self.path, self._pending, self._scratch())
            return
        con, self._con = self._con, None
        try:
            con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            con.close()
            raise
        try:  # while the write lock is held: a reader attached now would list them, then fail
            delete_files(self._compacted)
        finally:
            con.close()

    def rollback(self) -> None:
        self._pending = []
        if self._con is not None:
            con, self._con = self._con, None
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            with suppress(duckdb.Error):
                con.close()


def records_batch(records: Iterable[RunRecord], *, owner: Owner | None) -> Batch:
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
    return Batch(
        events_table(run_ids, events) if events else None,
        pa.concat_tables(tables) if tables else None,
        replaces=[s.id for s in snapshots],
        ended=[s.id for s in ended] or None,
    )


def write_batch_now(path: str, batch: Batch, lock_timeout: float) -> None:
    """Write ``batch`` into the file itself, waiting up to ``lock_timeout`` for its lock
    (:class:`~runtrace.errors.DatabaseLocked` past that); segments are compacted with it."""
    with compacting_transaction(path, lock_timeout) as (con, _):
        insert(con, batch)


def write_records(
    path: str | os.PathLike[str],
    records: Iterable[RunRecord],
    *,
    lock_timeout: float = 10.0,
    owner: Owner | None = None,
) -> int:
    """Write whole runs into the file at ``path`` in one transaction; returns events written.

    A run already stored is replaced whole: its row and all its events (segments included)
    give way to the record's, so writing back what
    :func:`~runtrace.duckdb.load_records` read changes nothing. Waits (up to
    ``lock_timeout``) for the write lock instead of writing a segment, so the data is in the
    file itself when it returns. ``owner`` (host, pid) owns the runs that have not ended.
    """
    path = os.fspath(path)
    batch = records_batch(records, owner=owner)
    prepare(path, lock_timeout)
    write_batch_now(path, batch, lock_timeout)
    return batch.event_rows
