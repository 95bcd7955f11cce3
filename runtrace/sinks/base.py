"""The interface every sink implements; the OpenTelemetry edge calls it, never the other way."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..runs import RunEventRecord, RunSnapshot

__all__ = ["RunSink"]


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

    def shutdown(self) -> None:
        """Flush, then release resources; later calls are ignored or counted, never raise."""
