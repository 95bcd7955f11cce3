"""The core's outgoing interface: what the OpenTelemetry edge hands runs to, and edges implement.

``otel/`` calls sinks; ``duckdb/`` implements one; neither imports the other. Flushing and
shutting down many sinks share one deadline, as the OpenTelemetry SDK's multi-span processor does:
a slow first sink leaves less time to the others instead of multiplying the wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .faults import Faults
from .runs import RunEventRecord, RunSnapshot

__all__ = ["RunSink", "flush_all", "shutdown_all"]


@runtime_checkable
class RunSink(Protocol):
    """Receives runs as they change. Calls come from the agent's threads: they must not block.

    A sink queues what it is given and writes it elsewhere (a background thread, a batch), the
    way OpenTelemetry's ``BatchSpanProcessor`` does; ``force_flush`` and ``shutdown`` write what
    is pending. A sink never drops silently: what it cannot write, it counts and reports.
    """

    def on_run(self, snapshot: RunSnapshot) -> None:
        """A run was created, or changed without an event (cancelled, failed, ended)."""

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        """``record`` was appended to the run; ``snapshot`` is the run right after it."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Write everything pending; True if it all went out within the timeout."""

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Flush (within the timeout), then release resources; later calls do nothing."""


def flush_all(sinks: Iterable[RunSink], timeout_millis: int, faults: Faults) -> bool:
    """Flush every sink within one shared deadline; True if all of them flushed in time."""
    deadline = time.monotonic() + timeout_millis / 1000
    ok = True
    for sink in sinks:
        left = max(0, int((deadline - time.monotonic()) * 1000))
        flushed = faults.call("flushing a sink", sink.force_flush, left)
        ok = flushed is True and ok
    return ok


def shutdown_all(sinks: Iterable[RunSink], timeout_millis: int, faults: Faults) -> None:
    """Shut every sink down within one shared deadline."""
    deadline = time.monotonic() + timeout_millis / 1000
    for sink in sinks:
        left = max(0, int((deadline - time.monotonic()) * 1000))
        faults.call("shutting down a sink", sink.shutdown, left)
