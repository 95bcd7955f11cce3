"""The core's outgoing interface: what the OpenTelemetry edge hands runs to, and edges implement.

``otel/`` calls sinks; ``duckdb/`` implements one; neither imports the other. Flushing and
shutting down many sinks share one deadline, as the OpenTelemetry SDK's multi-span processor does:
a slow first sink leaves less time to the others instead of multiplying the wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from .faults import Faults
from .runs import RunEventRecord, RunSnapshot

__all__ = ["PersistingSink", "RunSink", "flush_all", "shutdown_all"]


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


@runtime_checkable
class PersistingSink(RunSink, Protocol):
    """A sink that stores runs durably, and says when: the store's retention waits for it
    (:meth:`runtrace.store.RunStore.persistence_listener`), so a finished run leaves memory only
    once it is persisted."""

    def add_persisted_listener(self, listener: Callable[[list[str]], None]) -> None:
        """Call ``listener(run_ids)`` once the final snapshots of those ended runs are stored."""


def _within(left_ms: int, what: str, faults: Faults, call: Callable[[int], object]) -> object:
    """``call(left_ms)`` in a helper thread, waited for ``left_ms`` at most: a sink that ignores
    its timeout (a hung disk, a dead backend) cannot hold the caller past the deadline. Returns
    what the call returned, or None if it raised or was still running."""
    result: list[object] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            result.append(call(left_ms))
        except Exception as error:  # reported in the caller's thread, by the one policy
            errors.append(error)

    worker = threading.Thread(target=run, name=f"runtrace-{what}", daemon=True)
    worker.start()
    worker.join(left_ms / 1000)
    if worker.is_alive():
        faults.log.warning("runtrace: %s did not return within its deadline", what)
        return None
    if errors:
        try:
            raise errors[0]
        except Exception:
            faults.report(what)
        return None
    return result[0] if result else None


def _left_ms(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def flush_all(sinks: Iterable[RunSink], timeout_millis: int, faults: Faults) -> bool:
    """Flush every sink within one shared deadline; True if all of them flushed in time."""
    deadline = time.monotonic() + timeout_millis / 1000
    ok = True
    for sink in sinks:
        flushed = _within(_left_ms(deadline), "flushing a sink", faults, sink.force_flush)
        ok = flushed is True and ok
    return ok


def shutdown_all(sinks: Iterable[RunSink], timeout_millis: int, faults: Faults) -> None:
    """Shut every sink down within one shared deadline."""
    deadline = time.monotonic() + timeout_millis / 1000
    for sink in sinks:
        _within(_left_ms(deadline), "shutting down a sink", faults, sink.shutdown)
