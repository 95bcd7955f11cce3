"""Generic batching: a bounded queue that a background thread drains into an exporter.

The OpenTelemetry SDK keeps its batch processor apart from the exporters it feeds; this is that
piece for runtrace's sinks. The agent's threads only append to a queue. One thread hands the
queue to the exporter in batches every ``schedule_delay`` seconds (sooner once a batch is
waiting), one export at a time. A fork gives the child a fresh queue, locks and thread.
``force_flush`` and ``shutdown`` each keep one deadline for everything they wait on. A full
queue either blocks the producer (back-pressure, up to ``block_timeout``) or hands its oldest
items to a spill callback the exporter supplies; either way it is counted, never silent. It
knows nothing of what it exports: no DuckDB here.

An item may be two queue entries, queued by one ``deque.extend`` (atomic: no other
producer's entries land between them). A sink handed two objects per event queues them as two
entries instead of a tuple: the agent's thread then leaves no new object behind per event for
the cyclic GC to walk again and again while the queue is long.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from .faults import Faults

__all__ = ["BatchExporter", "BatchProcessor", "QueueStats", "WhenFull"]

T = TypeVar("T")

_log = logging.getLogger("runtrace.batch")


class WhenFull(str, Enum):
    """What a full queue does with one more item."""

    BLOCK = "block"
    """The producer waits for room, up to ``block_timeout``; then the item is spilled if a
    spill callback exists, else refused and counted in ``dropped`` (logged)."""
    SPILL = "spill"
    """The oldest batch goes to the spill callback at once; the producer only pays for that."""


class BatchExporter(Protocol[T]):
    """What a :class:`BatchProcessor` drives. Called with the processor's export lock held."""

    def export(self, batches: Iterator[list[T]]) -> None:
        """Write the batches ``batches`` yields: what is queued now, taken off as it goes.

        A batch yielded is the exporter's from then on: what it cannot write it keeps for a
        retry (:meth:`pending`) or accounts for itself. Batches not pulled stay queued.
        """

    def pending(self) -> bool:
        """True while the exporter holds items of its own to write (for a retry, or handed
        over by a spill): exports go on although the queue is empty, and a flush does not
        count as complete until they are written."""

    def stalled(self) -> bool:
        """True while the exporter's writes fail and it holds items for a retry: a flush then
        stops after one export instead of hammering what fails."""

    def close(self, deadline: float) -> None:
        """The last call: retry what is pending until ``deadline`` (``time.monotonic()``),
        account for what is still left, release resources."""

    def after_fork_in_child(self) -> None:
        """In a forked child: forget what belongs to the parent (it writes that itself)."""


@dataclass(frozen=True)
class QueueStats:
    """What the queue did: how full it is, and every time it was full."""

    queued: int
    """Items waiting now."""
    blocked: int
    """Submissions that had to wait for room (``when_full="block"``)."""
    spilled: int
    """Items handed to the spill callback."""
    spill_failures: int
    """Spill calls that raised; their items went back to the head of the queue."""
    dropped: int
    """Items refused after ``block_timeout`` with no spill callback (logged at WARNING)."""
    received_after_shutdown: int


class BatchProcessor(Generic[T]):
    """Queue, background thread, fork handling, deadlines and a bound, for one exporter.

    ``max_queue_size`` bounds the queue; producers racing each other may pass it by one item
    each (checking it costs no lock). ``spill`` (a callable taking a list of items) is
    required with ``when_full="spill"`` and used after a timed-out wait with ``"block"``.
    Shuts down at interpreter exit and when a ``multiprocessing`` child's work returns.

    With ``width=2`` an item is two entries, queued with :meth:`submit_pair`; sizes count
    items, and the exporter and the spill callback get flat lists of whole items.
    """

    def __init__(
        self,
        exporter: BatchExporter[T],
        *,
        name: str,
        schedule_delay: float = 1.0,
        max_export_batch_size: int = 100_000,
        max_queue_size: int = 1_000_000,
        when_full: WhenFull | str = WhenFull.BLOCK,
        block_timeout: float = 10.0,
        spill: Callable[[list[T]], None] | None = None,
        fork_timeout: float = 10.0,
        faults: Faults | None = None,
        width: int = 1,
    ) -> None:
        if schedule_delay <= 0:
            raise ValueError(f"schedule_delay must be positive, not {schedule_delay!r}")
        if max_export_batch_size < 1:
            raise ValueError(
                f"max_export_batch_size must be at least 1, not {max_export_batch_size!r}"
            )
        if max_queue_size < 1:
            raise ValueError(f"max_queue_size must be at least 1, not {max_queue_size!r}")
        if block_timeout < 0:
            raise ValueError(f"block_timeout must not be negative, not {block_timeout!r}")
        if width not in (1, 2):
            raise ValueError(f"width must be 1 or 2, not {width!r}")
        try:
            self.when_full = WhenFull(when_full)
        except ValueError:
            choices = ", ".join(repr(w.value) for w in WhenFull)
            raise ValueError(f"when_full must be one of {choices}, not {when_full!r}") from None
        if self.when_full is WhenFull.SPILL and spill is None:
            raise ValueError('when_full="spill" needs a spill callback')
        self.exporter = exporter
        self.name = name
        self.schedule_delay = schedule_delay
        self.max_export_batch_size = max_export_batch_size
        self.max_queue_size = max_queue_size
        self.block_timeout = block_timeout
        self.fork_timeout = fork_timeout
        self._spill = spill
        self.width = width
        self._admit = max_queue_size * width  # in entries, as the hot path counts them
        self._wake_at = (max_export_batch_size - 1) * width
        self._faults = faults if faults is not None else Faults("runtrace.batch")
        self._closed = False
        self._thread_error: Exception | None = None
        self._reset()
        atexit.register(self.shutdown)
        _PROCESSORS.add(self)
        # A multiprocessing child exits with os._exit (no atexit): shut down there too.
        multiprocessing.util.register_after_fork(self, _shutdown_at_child_exit)

    def _reset(self) -> None:
        """Fresh queue, locks, counters and thread: at start, and in a forked child."""
        self._queue: deque[T] = deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()  # one export at a time
        self._take_lock = threading.Lock()  # taking items off the queue: exports and spills
        self._spill_lock = threading.Lock()
        self._room = threading.Condition(threading.Lock())
        self._waiting = 0
        self._fork_held = False
        self._blocked = self._spilled = self._spill_failures = self._dropped = 0
        self._after_shutdown = 0
        if not self._closed:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()

    # -- producers -------------------------------------------------------------------------

    def submit(self, item: T) -> None:
        """Queue ``item`` (``width`` 1); blocks (or spills) only when the queue is full.

        The agent's hot path: one length check (``_admit`` is 0 once shut down), no lock. The
        writer is woken once per backlog: ``Event.set`` takes a lock and notifies, and a
        producer outrunning a busy writer would pay that on every item (a flood of 1M
        events: half of the sink's time).
        """
        queue = self._queue
        n = len(queue)
        if n < self._admit:
            queue.append(item)
            if n >= self._wake_at and not self._wake.is_set():
                self._wake.set()
            return
        if self._closed:
            self._after_shutdown += 1
            return
        self._when_full((item,))

    def submit_pair(self, first: T, second: T) -> None:
        """Queue one item of two entries (``width`` 2) together; as :meth:`submit` otherwise."""
        queue = self._queue
        n = len(queue)
        if n < self._admit:
            queue.extend((first, second))  # atomic: one C call that runs no Python code
            if n >= self._wake_at and not self._wake.is_set():
                self._wake.set()
            return
        if self._closed:
            self._after_shutdown += 1
            return
        self._when_full((first, second))

    def _when_full(self, entries: tuple[T, ...]) -> None:
        self._wake.set()
        if self.when_full is WhenFull.BLOCK:
            with self._room:
                self._waiting += 1
                self._blocked += 1
                try:
                    admitted = self._room.wait_for(
                        lambda: self._closed or len(self._queue) < self._admit,
                        self.block_timeout,
                    )
                finally:
                    self._waiting -= 1
            if self._closed:
                self._after_shutdown += 1
                return
            if admitted:
                self._queue.extend(entries)
                return
            if self._spill is None:
                self._dropped += 1
                _log.warning(
                    "runtrace: %s: queue full (%d items) for %.3g s; an item was dropped "
                    "(%d so far)",
                    self.name,
                    self.max_queue_size,
                    self.block_timeout,
                    self._dropped,
                )
                return
        try:
            self._spill_oldest()
        finally:  # queued even when the fault policy re-raises a failed spill
            self._queue.extend(entries)

    def _spill_oldest(self) -> None:
        with self._spill_lock:
            if len(self._queue) < self._admit:
                return  # another producer spilled meanwhile
            items = self._take(self.max_export_batch_size)
        if not items or self._spill is None:
            return
        try:
            self._spill(items)
        except Exception:
            with self._take_lock:  # back at the head, in order: never lost
                self._queue.extendleft(reversed(items))
            with self._room:
                self._spill_failures += 1
            self._faults.report(f"{self.name}: spilling {len(items) // self.width} items")
            return
        with self._room:
            self._spilled += len(items) // self.width

    def _take(self, limit: int) -> list[T]:
        """Up to ``limit`` items off the head of the queue, as a flat list of entries."""
        with self._take_lock:
            n = min(len(self._queue), limit * self.width)
            popleft = self._queue.popleft
            items = [popleft() for _ in range(n)]
        if self._waiting:
            with self._room:
                self._room.notify_all()
        return items

    # -- exporting -------------------------------------------------------------------------

    def _batches(self) -> Iterator[list[T]]:
        """What is queued now, in batches: later items wait for the next export, so one
        export never takes longer than the backlog it started with."""
        budget = len(self._queue) // self.width
        while budget > 0:
            batch = self._take(min(budget, self.max_export_batch_size))
            if not batch:
                return
            budget -= len(batch) // self.width
            yield batch

    def _export(self) -> None:
        """One export of what is queued (and of what the exporter keeps for a retry)."""
        if not self._queue and not self.exporter.pending():
            return
        with self._faults.guard(f"{self.name}: export"):
            self.exporter.export(self._batches())

    def _work(self) -> None:
        while not self._closed:
            self._wake.wait(self.schedule_delay)
            self._wake.clear()
            if self._closed:
                break
            with self._export_lock:
                try:
                    self._export()
                except Exception as exc:  # the fault policy re-raised (tests): keep the
                    self._thread_error = exc  # thread alive, raise it in the next caller

    def _raise_thread_error(self) -> None:
        error, self._thread_error = self._thread_error, None
        if error is not None:
            raise error

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued so far; True if it all went out within the timeout."""
        deadline = time.monotonic() + timeout_millis / 1000
        if not self._export_lock.acquire(timeout=max(timeout_millis / 1000, 0)):
            return False
        try:
            self._raise_thread_error()
            while True:
                self._export()
                # A stalled exporter is failing: this flush cannot complete, and exporting
                # again at once would only hammer what fails.
                if not self._queue and not self.exporter.pending():
                    break
                if self.exporter.stalled() or time.monotonic() >= deadline:
                    break
        finally:
            self._export_lock.release()
        return not self._queue and not self.exporter.pending()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the export lock, after exporting what is queued: for a write that must come
        after everything submitted before it (a bulk write)."""
        with self._export_lock:
            self._export()
            yield

    def shutdown(self, timeout_millis: int = 30_000) -> bool:
        """Stop the thread, export what is left, close the exporter; all within one deadline.

        True if nothing is left over. Runs at interpreter exit too; later calls do nothing.
        """
        if self._closed:
            return not self._queue and not self.exporter.pending()
        deadline = time.monotonic() + timeout_millis / 1000
        self._closed = True
        self._admit = 0
        atexit.unregister(self.shutdown)
        self._wake.set()
        with self._room:
            self._room.notify_all()
        self._thread.join(max(deadline - time.monotonic(), 0))
        if not self._export_lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            _log.warning(
                "runtrace: %s: shutdown timed out behind an export; %d items still queued",
                self.name,
                len(self._queue) // self.width,
            )
            return False
        try:
            self._raise_thread_error()
            self._export()
            while self._queue and time.monotonic() < deadline:  # late racing submissions
                self._export()
            self.exporter.close(deadline)
        finally:
            self._export_lock.release()
        return not self._queue and not self.exporter.pending()

    # -- state -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def worker_alive(self) -> bool:
        """Whether the background thread runs (in this process)."""
        return self._thread.is_alive()

    def queued(self) -> list[T]:
        """A copy of the items waiting now (flat: ``width`` entries an item)."""
        return list(self._queue)

    @property
    def stats(self) -> QueueStats:
        return QueueStats(
            queued=len(self._queue) // self.width,
            blocked=self._blocked,
            spilled=self._spilled,
            spill_failures=self._spill_failures,
            dropped=self._dropped,
            received_after_shutdown=self._after_shutdown,
        )

    # -- fork ------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        # Never fork in the middle of an export: the child would inherit half of it (for
        # DuckDB, an open instance that believes it holds the file's lock).
        if not self._closed:
            self._fork_held = self._export_lock.acquire(timeout=self.fork_timeout)

    def _after_fork_in_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._export_lock.release()

    def _after_fork_in_child(self) -> None:
        """The child is a new producer and writer: what was queued belongs to the parent."""
        self._thread_error = None
        self.exporter.after_fork_in_child()
        self._reset()


_PROCESSORS: weakref.WeakSet[BatchProcessor[Any]] = weakref.WeakSet()
"""Every live processor, for the fork handlers (element type: any item type)."""


def _before_fork() -> None:
    for processor in list(_PROCESSORS):
        processor._before_fork()


def _after_fork_in_parent() -> None:
    for processor in list(_PROCESSORS):
        processor._after_fork_in_parent()


def _after_fork_in_child() -> None:
    for processor in list(_PROCESSORS):
        processor._after_fork_in_child()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def _shutdown_ref(ref: weakref.ref[BatchProcessor[Any]]) -> None:
    processor = ref()
    if processor is not None:
        processor.shutdown()


def _shutdown_at_child_exit(processor: BatchProcessor[Any]) -> None:
    """In a multiprocessing child: shut the processor down when the child's work returns."""
    multiprocessing.util.Finalize(
        None, _shutdown_ref, args=(weakref.ref(processor),), exitpriority=10
    )
