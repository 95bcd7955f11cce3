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

__all__ = [
    "PersistingSink",
    "RunSink",
    "SnapshotReadingSink",
    "SnapshotSource",
    "flush_all",
    "shutdown_all",
]


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


SnapshotSource = Callable[[str], "RunSnapshot | None"]
"""A run's newest snapshot by id, thread-safe (None once the store no longer holds the run):
``RunStore.snapshot``."""


@runtime_checkable
class SnapshotReadingSink(RunSink, Protocol):
    """A sink that reads each run's newest snapshot from the store when it writes, so that the
    agent's thread need not make one per event (most events only move a run's count and time,
    and a sink that writes a batch keeps one snapshot per run of it). ``RunSpanProcessor``
    gives it ``RunStore.snapshot``; ``on_event`` may then be given an earlier snapshot of the
    run: its status current, ``event_count`` and ``updated_at_ms`` possibly behind, never
    ahead. ``on_run`` snapshots stay exact (a run created, cancelled, failed or ended)."""

    def read_snapshots_from(self, source: SnapshotSource) -> None:
        """Take runs' newest snapshots from ``source`` from now on, when writing them."""


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
