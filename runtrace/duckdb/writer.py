"""The DuckDB writer: the exporter a :class:`~runtrace.batch.BatchProcessor` drives for the sink.

One export is one transaction: earlier failed batches first, then what is queued, in batches
built in this thread while a helper thread inserts the previous one (the Python half, JSON and
Arrow, overlaps the DuckDB half, which releases the GIL). It goes into the file when its lock is
free at once, else into a segment. A failed export changes nothing stored and is retried at the
next one; after ``max_retries`` (and at close) a batch is set aside as Parquet in
``<file>.failed/``. A full queue's oldest items are built into a batch at once, in the agent's
thread (Arrow holds an event in a fraction of the memory of its Python objects), and handed to
the next export; past a bound of built events, or while writes fail, a built batch goes
straight to a segment instead. Everything is counted.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ..faults import Faults
from .batches import BatchBuilder, Entry, Newest, merge_newest
from .database import new_connection
from .rows import Batch
from .segments import EVENTS_SUFFIX, RUNS_SUFFIX, compact
from .stats import Counters
from .write import Transaction, prepare, write_to_segment

_log = logging.getLogger("runtrace.duckdb")

_ABANDONED: list[object] = []
"""Objects a forked child inherited from its parent's threads: kept alive, never touched."""


class DuckDBWriter:
    """Writes the sink's batches into one DuckDB file (a :class:`~runtrace.batch.BatchExporter`)."""

    def __init__(
        self,
        path: str,
        builder: BatchBuilder,
        *,
        max_retries: int,
        lock_timeout: float,
        faults: Faults | None = None,
        max_built_events: int = 100_000,
    ) -> None:
        self.path = path
        self.builder = builder
        self.counters: Counters = builder.counters
        self.max_retries = max_retries
        self.lock_timeout = lock_timeout
        self.retry: list[Batch] = []
        self.spills = 0
        self._pool: ThreadPoolExecutor | None = None
        self._scratch: duckdb.DuckDBPyConnection | None = None
        self._spill_lock = threading.Lock()
        self._spill_scratch: duckdb.DuckDBPyConnection | None = None
        self._spill_retry: list[Batch] = []
        self.max_built_events = max_built_events
        self._built: list[Batch] = []
        """Spilled batches handed to the next export instead of a segment (at most
        ``max_built_events`` events): a segment would be written, read back and inserted."""
        self._built_events = 0
        self.persisted_listeners: list[Callable[[list[str]], None]] = []
        self.faults = faults if faults is not None else Faults("runtrace.duckdb")
        self.failing: str | None = None
        """The error the file's writes fail with now (logged once); None while they work."""
        self.identity = self._noticed = _identity(path)
        self.closing: Callable[[], bool] = lambda: False
        """Whether the processor is shutting down: then what is queued is taken all the same,
        to be stored, set aside or counted before the end."""

    # -- BatchExporter ---------------------------------------------------------------------

    def pending(self) -> bool:
        return bool(self.retry or self._spill_retry or self._built)

    def stalled(self) -> bool:
        return bool(self.retry or self._spill_retry)  # kept only after a failed write

    def export(self, batches: Iterator[list[Entry]]) -> None:
        """Write earlier failures and ``batches`` in one transaction, file or segment: the
        events batch by batch, then each changed run's newest snapshot once."""
        with self._spill_lock:  # spills built for this export, or not written, go first
            self.retry.extend(self._built)
            self.retry.extend(self._spill_retry)
            self._built, self._built_events, self._spill_retry = [], 0, []
        # Writes failed last time (a full disk): the retries alone first, and the queue stays
        # queued until they are stored, so its bound keeps holding memory down.
        stuck = self.failing is not None and self.retry and not self.closing()
        if stuck and not self._write(list(self.retry), iter(())):
            return
        self._write([], batches)

    def _write(self, done: list[Batch], batches: Iterator[list[Entry]]) -> bool:
        """One transaction of ``done`` (batches taken before), the retries, and ``batches``;
        True when it was stored.

        The first batch (and, when it is the only one, its runs rows) is built before the
        file is opened: a flush holds the file's lock, which readers and other writers wait
        for, only to insert and commit. Later batches are built while the previous inserts.
        """
        done = done or list(self.retry)
        self.retry = []
        newest: Newest = {}
        rest: Iterator[list[Entry]] = iter(())
        runs: Batch | None = None
        first = next(batches, None)
        second = None
        if first is not None:
            done.append(self._events(first, newest))
            second = next(batches, None)
        if second is None:
            runs = self.builder.runs(newest)
        else:
            rest = itertools.chain([second], batches)
        try:
            self._check_identity()
            tx = Transaction(self.path, self._scratch_connection)
        except Exception as exc:  # keep what was taken for the retry; nothing was written
            done.extend(self._events(entries, newest) for entries in rest)
            done.append(runs if runs is not None else self.builder.runs(newest))
            self._failed(done, exc)
            return False
        inflight: Future[None] | None = None
        try:
            for batch in done:
                tx.insert(batch)
            for entries in rest:
                batch = self._events(entries, newest)
                done.append(batch)
                if inflight is not None:
                    inflight.result()
                inflight = self._insert_soon(tx, batch)
            if runs is None:
                runs = self.builder.runs(newest)
            if inflight is not None:
                inflight.result()
                inflight = None
            tx.insert(runs)
            to_file = tx.to_file
            tx.commit()
        except Exception as exc:
            if inflight is not None:
                with suppress(Exception):
                    inflight.result()
            tx.rollback()
            # the runs rows of the events taken so far go with them
            done.append(runs if runs is not None else self.builder.runs(newest))
            self._failed(done, exc)  # batches not taken yet stay queued
            return False
        done.append(runs)
        c = self.counters
        c.events_written += sum(b.event_rows for b in done)
        c.run_rows_written += sum(b.run_rows for b in done)
        if to_file:
            c.flushes_to_file += 1
            self.identity = _identity(self.path)
        else:
            c.flushes_to_segments += 1
        if self.failing is not None:
            _log.warning(
                "runtrace: %s is written again (it failed with: %s)", self.path, self.failing
            )
            self.failing = None
        self.tell_persisted(done)
        return True

    def spill(self, items: list[Entry]) -> None:
        """Build ``items`` (a full queue's oldest) into a batch, in the caller's thread, and hand
        it to the next export; or write it straight to a segment, when the built batches waiting
        would hold more than ``max_built_events`` events or the file's writes fail.

        Building frees the items' Python objects, the bulk of the queue's memory; handing the
        batch on spares writing a segment, reading it back and inserting it (a flood of 1M
        events: ~25% of the sink's time). A segment needs no file lock and waits for none. A
        segment that cannot be written (disk full) leaves the batch to the next export's
        retries, as a failed flush would.
        """
        batch = self.builder.build(items)
        with self._spill_lock:
            waiting = self._built_events + batch.event_rows
            if self.failing is None and waiting <= self.max_built_events:
                self._built.append(batch)
                self._built_events = waiting
                return
            try:
                if self._spill_scratch is None:
                    self._spill_scratch = new_connection()
                write_to_segment(self.path, [batch], self._spill_scratch)
            except Exception as exc:
                self._spill_retry.append(batch)
                error = f"spilling: {type(exc).__name__}: {exc}"
                self.counters.last_error = error
                if self.failing is None:  # once per outage, as failed flushes
                    self.failing = error
                    _log.error(
                        "runtrace: spilling %d events of %s failed, they are kept and retried "
                        "at each flush (see stats): %s",
                        batch.event_rows,
                        self.path,
                        exc,
                    )
                else:
                    _log.debug("runtrace: spilling to %s failed again: %s", self.path, exc)
                return
            self.spills += 1
            self.counters.events_spilled += batch.event_rows
            self.counters.run_rows_spilled += batch.run_rows
        self.tell_persisted([batch])

    def close(self, deadline: float) -> None:
        """Retry what failed (up to ``lock_timeout``, within ``deadline``), set the rest aside,
        release the helpers, and compact this process's segments if the file is free."""
        until = min(deadline, time.monotonic() + self.lock_timeout)
        while self.retry and time.monotonic() < until:
            time.sleep(0.05)
            self.export(iter(()))
        self.retry = self._rescue(self.retry, last=True)
        if self._pool is not None:
            self._pool.shutdown()
        for con in (self._scratch, self._spill_scratch):
            if con is not None:
                con.close()
        left = max(deadline - time.monotonic(), 0.0)
        try:
            compact(self.path, lock_timeout=min(self.lock_timeout, 2.0, left))
        except Exception as exc:  # closing never raises; the next writer compacts
            _log.info("segments of %s left for the next writer: %s", self.path, exc)

    def after_fork_in_child(self) -> None:
        """The child writes only what it records: the parent's retries and helpers stay the
        parent's (its helper thread and scratch connection are kept, never used here)."""
        _ABANDONED.extend(
            o for o in (self._pool, self._scratch, self._spill_scratch) if o is not None
        )
        self._pool = None
        self._scratch = None
        self._spill_scratch = None
        self._spill_lock = threading.Lock()
        self._spill_retry = []
        self._built, self._built_events = [], 0
        self.retry = []
        self.spills = 0
        self.failing = None
        self.counters.reset()
        self.builder.after_fork_in_child()

    # -- helpers ---------------------------------------------------------------------------

    def tell_persisted(self, batches: list[Batch]) -> None:
        """Tell the listeners which ended runs now have their final snapshot stored."""
        if not self.persisted_listeners:
            return
        ended = [run_id for b in batches if b.ended for run_id in b.ended]
        if not ended:
            return
        for listener in self.persisted_listeners:
            self.faults.call("a persisted-runs listener", listener, ended)

    def _events(self, entries: list[Entry], newest: Newest) -> Batch:
        """The events batch of ``entries``; their runs' newest snapshots merged into ``newest``."""
        batch, latest = self.builder.events(entries)
        merge_newest(newest, latest)
        return batch

    def pending_events(self) -> int:
        """Events in batches waiting for a retry."""
        return sum(b.event_rows for b in (*self.retry, *self._spill_retry, *self._built))

    def _insert_soon(self, tx: Transaction, batch: Batch) -> Future[None] | None:
        """``tx.insert(batch)`` in the helper thread; here and now once the interpreter is
        exiting (``concurrent.futures`` then refuses new work, before ``atexit`` runs the
        sink's shutdown)."""
        try:
            return self._helper().submit(tx.insert, batch)
        except RuntimeError:
            tx.insert(batch)
            return None

    def _helper(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="runtrace-duckdb-insert")
        return self._pool

    def _scratch_connection(self) -> duckdb.DuckDBPyConnection:
        if self._scratch is None:
            self._scratch = new_connection()
        return self._scratch

    def _check_identity(self) -> None:
        """Notice a file deleted or replaced since the last write into it: log it, count it,
        and give the new file the schema, so writing goes on (what the old file held went
        with it; everything since is written to the new one)."""
        now = _identity(self.path)
        if now == self.identity:
            return
        if now != self._noticed:  # once per change, however long preparing it fails
            self._noticed = now
            self.counters.database_replaced += 1
            _log.error(
                "runtrace: %s was %s under the sink; writing on into a new database there "
                "(what the old file held is not in it)",
                self.path,
                "deleted" if now is None else "replaced by another file",
            )
        prepare(self.path, 0.0)  # a file that is not a database raises: kept for a retry
        self.identity = self._noticed = _identity(self.path)

    def _failed(self, batches: list[Batch], exc: Exception) -> None:
        c = self.counters
        c.failed_attempts += 1
        error = f"{type(exc).__name__}: {exc}"
        c.last_error = error
        if self.failing is None:  # once per outage, not once per batch or attempt
            _log.error(
                "runtrace: writing to %s failed, the events are kept and retried at each "
                "flush (see stats): %s",
                self.path,
                error,
            )
        else:
            _log.debug("runtrace: writing to %s failed again: %s", self.path, error)
        self.failing = error
        keep: list[Batch] = []
        give_up: list[Batch] = []
        for b in batches:
            if b.events is None and b.runs is None:
                continue
            b.attempts += 1
            (give_up if b.attempts > self.max_retries else keep).append(b)
        self.retry = keep + self._rescue(give_up)

    def _rescue(self, batches: list[Batch], *, last: bool = False) -> list[Batch]:
        """Batches that cannot be written go to ``<file>.failed/`` as Parquet, counted; they
        are stored there, so their ended runs are reported as persisted. A batch that cannot
        be set aside either is returned to be kept for a retry, or, at the ``last`` chance
        (closing), counted as lost and logged."""
        kept: list[Batch] = []
        rescued: list[Batch] = []
        for b in batches:
            try:
                directory = Path(f"{self.path}.failed")
                directory.mkdir(parents=True, exist_ok=True)
                stem = f"{time.time_ns():020d}-{os.getpid()}"
                if b.events is not None:
                    pq.write_table(b.events, directory / f"{stem}{EVENTS_SUFFIX}")
                if b.runs is not None:
                    pq.write_table(b.runs, directory / f"{stem}{RUNS_SUFFIX}")
                self.counters.events_rescued += b.event_rows
                rescued.append(b)
                _log.error(
                    "runtrace: %d events could not be stored in %s; kept in %s",
                    b.event_rows,
                    self.path,
                    directory,
                )
            except Exception as exc:
                if not last:
                    kept.append(b)
                    _log.debug("runtrace: setting a batch aside failed too: %s", exc)
                    continue
                self.counters.events_lost += b.event_rows
                _log.exception("runtrace: %d events lost for %s", b.event_rows, self.path)
        self.tell_persisted(rescued)
        return kept


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
