"""The DuckDB sink: runs and events in one local file that any DuckDB client can query.

A :class:`~runtrace.sink.RunSink` made of two parts, as the OpenTelemetry SDK makes a
``BatchSpanProcessor`` of a batch processor and an exporter: the generic
:class:`~runtrace.batch.BatchProcessor` (queue, thread, fork, deadlines, bound) and the
:class:`~runtrace.duckdb.writer.DuckDBWriter`. The agent's threads only append to the queue.
The file's write lock is held only while a batch is written; when another process holds it,
the batch goes to a per-process Parquet segment instead (:mod:`runtrace.duckdb.segments`),
which readers see through :func:`~runtrace.connect`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..batch import BatchProcessor, WhenFull
from ..errors import DatabaseError
from ..faults import Faults
from ..runs import RunEventRecord, RunRecord, RunSnapshot
from ..sink import SnapshotSource
from .batches import BatchBuilder, Entry
from .maintenance import recover_interrupted
from .stats import Counters, SinkStats
from .write import prepare, records_batch, write_batch_now
from .writer import DuckDBWriter

_log = logging.getLogger("runtrace.duckdb")


class DuckDBSink:
    """A :class:`~runtrace.sink.RunSink` that stores runs and events in a DuckDB file.

    ``on_run`` and ``on_event`` only append to a queue. A background thread writes the queue
    every ``flush_interval`` seconds (sooner once ``max_batch_size`` items wait): the latest
    snapshot of each changed run is upserted into ``runs`` and the new events appended to
    ``run_events``, in one transaction. A batch that fails is retried up to ``max_retries``
    times, then written aside to ``<file>.failed/`` as Parquet and counted in :attr:`stats`.

    The queue holds at most ``max_queue_size`` items; each holds a run snapshot (~1 KB), so
    the default bound is ~100 MB at worst, and the writer is woken at a quarter of it. When
    it is full, ``when_full="spill"`` (the default) builds its oldest batch into Arrow from the
    agent's thread, for the next flush to insert; once built batches hold ``max_queue_size``
    events, or while writes fail, a spilled batch goes straight to a segment file instead.
    ``"block"`` makes the agent's thread wait up to ``block_timeout`` seconds for room (then
    spills). Both are counted in :attr:`stats`.

    Opening validates the file: :class:`~runtrace.errors.NotADuckDBFile`,
    :class:`~runtrace.errors.SchemaVersionError` or :class:`~runtrace.errors.DatabaseLocked`
    (another program held it past ``lock_timeout`` seconds). With ``recover=True`` the runs
    that dead processes on this host left unfinished are marked failed
    (:func:`~runtrace.duckdb.recover_interrupted`).

    ``owner=True`` stamps runs that have not ended with this process (``owner_host``,
    ``owner_pid``), so recovery can fail them once it is gone. ``owner=False`` writes them with
    no owner: for a process that stores other processes' runs (an OTLP receiver), whose
    restart must not fail runs that are still going elsewhere.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "runtrace.duckdb",
        *,
        flush_interval: float = 1.0,
        max_batch_size: int = 25_000,
        max_queue_size: int = 100_000,
        when_full: WhenFull | str = WhenFull.SPILL,
        block_timeout: float = 10.0,
        lock_timeout: float = 10.0,
        max_retries: int = 5,
        recover: bool = True,
        owner: bool = True,
        raise_errors: bool | None = None,
    ) -> None:
        if not isinstance(owner, bool):
            raise TypeError(f"owner must be True or False, not {owner!r}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, not {flush_interval!r}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, not {max_batch_size!r}")
        self.path = os.fspath(path)
        self.flush_interval = flush_interval
        self.max_batch_size = max_batch_size
        self.lock_timeout = lock_timeout
        self.max_retries = max_retries
        prepare(self.path, lock_timeout)
        if recover:
            try:
                recover_interrupted(self.path, lock_timeout=0.0)
            except DatabaseError as exc:  # locked by readers: the next writer recovers
                _log.info("recovery of %s deferred: %s", self.path, exc)
        faults = Faults("runtrace.duckdb", raise_errors)
        self._builder = BatchBuilder(self.path, Counters(), owned=owner)
        self._writer = DuckDBWriter(
            self.path,
            self._builder,
            max_retries=max_retries,
            lock_timeout=lock_timeout,
            faults=faults,
            max_built_events=max_queue_size,
        )
        self._batch: BatchProcessor[Entry] = BatchProcessor(
            self._writer,
            name=f"runtrace-duckdb:{Path(self.path).name}",
            schedule_delay=flush_interval,
            max_export_batch_size=max_batch_size,
            max_queue_size=max_queue_size,
            when_full=when_full,
            block_timeout=block_timeout,
            spill=self._writer.spill,
            fork_timeout=lock_timeout + 1.0,
            faults=faults,
            width=2,  # a snapshot and a record (or None): no tuple per event
        )
        self._writer.closing = lambda: self._batch.closed
        self._submit = self._batch.submit_pair
        self.on_event = self._batch.submit_pair

    # -- RunSink ---------------------------------------------------------------------------

    def on_run(self, snapshot: RunSnapshot) -> None:
        """Queue the run's new snapshot; blocks only when the queue is full and set to."""
        self._submit(snapshot, None)

    on_event: Callable[[RunSnapshot, RunEventRecord], None]
    """Queue the event and the run's snapshot after it; blocks only as :meth:`on_run`.

    The queue's own ``submit_pair``, so the agent pays one Python call per event."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Write everything queued so far; True if it all reached the file or a segment."""
        return self._batch.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Write what is pending, compact this process's segments if possible, release all;
        within ``timeout_millis`` in all (what is still failing then is set aside, counted).

        Runs at interpreter exit too; calling it again does nothing.
        """
        self._batch.shutdown(timeout_millis)

    def read_snapshots_from(self, source: SnapshotSource) -> None:
        """Read runs' newest snapshots from ``source`` when writing (a
        :class:`~runtrace.sink.SnapshotReadingSink`; ``RunSpanProcessor`` hands it the
        store's): the agent's thread then makes no snapshot per counted event, and the queue
        holds one run snapshot object for many events instead of one each."""
        self._builder.source = source

    def add_persisted_listener(self, listener: Callable[[list[str]], None]) -> None:
        """Call ``listener(run_ids)`` once the final snapshot of those ended runs is stored
        (committed to the file, in a segment file or set aside in ``<file>.failed/``; or
        written whole by :meth:`write_records`), from the thread that stored it.

        For a store's retention: a finished run may leave memory once it is persisted, never
        before (a batch that failed is still only in this sink). A listener that raises is
        reported by the sink's fault policy and never stops the writer.
        """
        self._writer.persisted_listeners.append(listener)

    # -- Bulk ------------------------------------------------------------------------------

    def write_records(self, records: Iterable[RunRecord]) -> int:
        """Write whole runs already in memory, now, in one transaction; returns events written.

        A run already stored is replaced whole (its row and all its events). Runs that have
        not ended are owned by this process, as if it had recorded them. Like
        :func:`~runtrace.duckdb.write_records`, it waits up to ``lock_timeout`` for the file's
        write lock (replacing needs the file itself, not a segment):
        :class:`~runtrace.errors.DatabaseLocked` past that.
        """
        batch = records_batch(records, owner=self._builder.owner)
        with self._batch.exclusive():  # after everything queued before it
            write_batch_now(self.path, batch, self.lock_timeout)
            self._writer.counters.events_written += batch.event_rows
            self._writer.counters.run_rows_written += batch.run_rows
        self._writer.tell_persisted([batch])
        return batch.event_rows

    @property
    def stats(self) -> SinkStats:
        """A snapshot of the sink's counters."""
        c = self._writer.counters
        queue = self._batch.stats
        queued = self._batch.queued()
        queued_events = sum(1 for r in queued[1::2] if r is not None)
        return SinkStats(
            events_received=c.events_received + queued_events,
            runs_received=c.runs_received,
            events_written=c.events_written + c.events_spilled,
            run_rows_written=c.run_rows_written + c.run_rows_spilled,
            flushes_to_file=c.flushes_to_file,
            flushes_to_segments=c.flushes_to_segments + self._writer.spills,
            failed_attempts=c.failed_attempts,
            events_rescued=c.events_rescued,
            events_lost=c.events_lost,
            received_after_shutdown=queue.received_after_shutdown,
            pending=len(queued) // 2 + self._writer.pending_events(),
            last_error=c.last_error,
            run_rows_lost=c.run_rows_lost,
            events_spilled=c.events_spilled,
            blocked=queue.blocked,
            spill_failures=queue.spill_failures,
            database_replaced=c.database_replaced,
        )

    def __enter__(self) -> DuckDBSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
