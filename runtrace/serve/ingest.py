"""What the receiver hands decoded telemetry to: the ``Ingest`` protocol, and ``BufferedIngest``,
a bounded queue with a worker thread in front of any span processor.

The bound is the back-pressure: a request whose spans do not fit is refused whole
(``QueueFull``), the server answers 429 / RESOURCE_EXHAUSTED, and the exporter retries later.
Refusing whole requests is what keeps a retry from storing anything twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from ..errors import RuntraceError
from ..faults import Faults

__all__ = [
    "BufferedIngest",
    "Ingest",
    "IngestClosed",
    "IngestRejected",
    "LogItem",
    "QueueFull",
    "ReportsFlushLag",
    "ReportsOpenRuns",
]

log = logging.getLogger("runtrace.serve")


class QueueFull(RuntraceError):
    """The ingest cannot take this batch now; nothing of it was taken. Retry later."""


class IngestClosed(RuntraceError):
    """The ingest is shutting down and takes nothing more; nothing of the batch was taken."""


class IngestRejected(RuntraceError):
    """The ingest will never take this batch (e.g. it does not handle log records); the sender
    is told so in ``partial_success`` and should not retry."""


@dataclass(frozen=True, slots=True)
class LogItem:
    """One OTLP log record, decoded. Values are plain Python (str, bool, int, float, bytes, None,
    lists, dicts), as the SDK's logs API has them.

    ``event_name`` is the record's ``event_name`` field, else its ``event.name`` attribute, else
    ``""``. ``at_ns`` is ``time_unix_nano``, else ``observed_time_unix_nano``. ``trace_id`` and
    ``span_id`` are 0 when the record is tied to no span. ``dropped_attributes``: as the sender
    counted them.
    """

    trace_id: int
    span_id: int
    event_name: str
    attributes: Mapping[str, Any]
    body: Any
    at_ns: int
    resource_attributes: Mapping[str, Any]
    severity_number: int = 0
    severity_text: str = ""
    scope_name: str = ""
    scope_version: str = ""
    dropped_attributes: int = 0


class Ingest(Protocol):
    """Takes decoded spans and log records from the receiver's request threads.

    ``spans`` and ``logs`` must not block for long: raise ``QueueFull`` (whole batch refused,
    retryable), ``IngestClosed`` (shutting down, retryable elsewhere) or ``IngestRejected``
    (never acceptable). ``queue_depth``/``capacity`` are items waiting / the most that may wait.
    ``shutdown`` processes what is queued within its timeout; what it cannot, it logs as lost.
    """

    def spans(self, spans: Sequence[ReadableSpan]) -> None: ...

    def logs(self, records: Sequence[LogItem]) -> None: ...

    def force_flush(self, timeout_millis: int = 30_000) -> bool: ...

    def shutdown(self, timeout_millis: int = 30_000) -> None: ...

    def queue_depth(self) -> int: ...

    def capacity(self) -> int: ...


@runtime_checkable
class ReportsOpenRuns(Protocol):
    """An ingest that knows how many runs are open; the server then shows it in its counters."""

    def runs_open(self) -> int: ...


@runtime_checkable
class ReportsFlushLag(Protocol):
    """An ingest that knows how long its oldest waiting item has waited, in milliseconds."""

    def flush_lag_ms(self) -> float: ...


_Batch = tuple[bool, Sequence[Any], float]  # (is_spans, items, monotonic time queued)


class BufferedIngest:
    """A bounded queue in front of ``processor`` (``on_end`` for every span, in arrival order)
    and ``on_logs`` (every batch of log records), worked by one background thread.

    ``capacity`` counts spans plus log records waiting. A batch is taken only whole: when it does
    not fit, ``QueueFull``. A batch larger than ``capacity`` is taken when the queue is empty, so
    it is never refused forever. Without ``on_logs`` log records are refused (``IngestRejected``).
    A failing processor costs only the span it failed on (logged, counted in ``faults``).

    On the worker thread, so never concurrently with the processor: ``on_batch_end`` after each
    request's spans or log records (a translator settles what the request left open there), and
    ``periodic`` every ``period_s`` seconds (housekeeping that must not wait for traffic).
    """

    def __init__(
        self,
        processor: SpanProcessor,
        *,
        on_logs: Callable[[Sequence[LogItem]], None] | None = None,
        on_batch_end: Callable[[], object] | None = None,
        periodic: Callable[[], object] | None = None,
        period_s: float = 60.0,
        capacity: int = 65_536,
        raise_errors: bool | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if not isinstance(period_s, int | float) or not 0 < period_s < float("inf"):
            raise ValueError(f"period_s must be a positive number of seconds, got {period_s!r}")
        self._processor = processor
        self._on_logs = on_logs
        self._on_batch_end = on_batch_end
        self._periodic = periodic
        self._period_s = float(period_s)
        self._capacity = capacity
        self.faults = Faults("runtrace.serve", raise_errors)
        self._queue: deque[_Batch] = deque()
        self._depth = 0  # items queued or being processed
        self._closed = False
        self._stop = False
        self._lost = 0
        self._current: float | None = None  # queue time of the batch being processed
        self._error: Exception | None = None  # a fault re-raised in the worker, for the caller
        self._cond = threading.Condition()
        self._worker = threading.Thread(target=self._work, name="runtrace-ingest", daemon=True)
        self._worker.start()

    def spans(self, spans: Sequence[ReadableSpan]) -> None:
        self._put(True, spans)

    def logs(self, records: Sequence[LogItem]) -> None:
        if self._on_logs is None:
            raise IngestRejected("this server does not ingest log records")
        self._put(False, records)

    def _put(self, is_spans: bool, items: Sequence[Any]) -> None:
        if not items:
            return
        with self._cond:
            if self._closed:
                raise IngestClosed("the ingest is shutting down")
            if self._depth and self._depth + len(items) > self._capacity:
                raise QueueFull(
                    f"queue holds {self._depth} of {self._capacity}; {len(items)} more do not fit"
                )
            self._queue.append((is_spans, items, time.monotonic()))
            self._depth += len(items)
            self._cond.notify_all()

    def queue_depth(self) -> int:
        with self._cond:
            return self._depth

    def capacity(self) -> int:
        return self._capacity

    def flush_lag_ms(self) -> float:
        """How long the oldest batch not yet processed has waited (0 when idle)."""
        with self._cond:
            oldest = self._queue[0][2] if self._queue else self._current
        return 0.0 if oldest is None else (time.monotonic() - oldest) * 1000

    @property
    def lost(self) -> int:
        """Items still queued when ``shutdown`` gave up on them (each logged)."""
        return self._lost

    def _work(self) -> None:
        due = time.monotonic() + self._period_s
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    if self._periodic is None:
                        self._cond.wait()
                        continue
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if not self._queue:
                    if self._stop:
                        return  # stopped, and shutdown took what was left
                    batch = None  # the periodic call is due
                else:
                    batch = self._queue.popleft()
                    self._current = batch[2]
            if self._periodic is not None and time.monotonic() >= due:
                self._guarded("a periodic call of the ingest", _call, self._periodic)
                due = time.monotonic() + self._period_s
            if batch is None:
                continue
            is_spans, items, _ = batch
            try:
                if is_spans:
                    for span in items:
                        self._guarded("a span processor's on_end", self._processor.on_end, span)
                elif self._on_logs is not None:
                    self._guarded("ingesting log records", self._on_logs, items)
                if self._on_batch_end is not None:
                    self._guarded("ending a batch", _call, self._on_batch_end)
            finally:
                with self._cond:
                    self._depth -= len(items)
                    self._current = None
                    self._cond.notify_all()

    def _guarded(self, what: str, fn: Callable[[Any], object], item: Any) -> None:
        try:
            self.faults.call(what, fn, item)
        except Exception as error:  # faults re-raised it (tests): go on, surface it to the caller
            self._error = self._error or error

    def _wait_idle(self, deadline: float | None) -> bool:
        with self._cond:
            while self._depth:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything queued went through the processor, then flush the processor;
        True if both finished within the timeout."""
        deadline = time.monotonic() + timeout_millis / 1000
        idle = self._wait_idle(deadline)
        self._raise_worker_error()
        if not idle:
            return False
        left = max(0, int((deadline - time.monotonic()) * 1000))
        return (
            self.faults.call("flushing the span processor", self._processor.force_flush, left)
            is True
        )

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Take nothing more, process what is queued (within the timeout), shut the processor
        down. Items that did not make it in time are logged as lost and counted in ``lost``."""
        with self._cond:
            if self._stop:
                return
            self._closed = True
        drained = self._wait_idle(time.monotonic() + timeout_millis / 1000)
        with self._cond:
            self._stop = True
            left = sum(len(items) for _, items, _ in self._queue)
            self._queue.clear()
            self._depth -= left
            self._lost += left
            self._cond.notify_all()
        if not drained and left:
            log.error("runtrace serve: shutdown timed out; %d queued spans/log records lost", left)
        self._worker.join(timeout_millis / 1000)
        self.faults.call("shutting the span processor down", self._processor.shutdown)
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        """Under pytest (or ``raise_errors``) a processor's fault is re-raised here, in the
        caller's thread, rather than killing the worker."""
        error, self._error = self._error, None
        if error is not None:
            raise error


def _call(fn: Callable[[], object]) -> None:
    fn()
