"""StoreTarget: an assembler's runs applied to a RunStore."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...events import BaseEvent
from ...runs import RunEventRecord, RunSnapshot
from ...store import RunStore

__all__ = ["StoreTarget"]

OnChange = Callable[[RunSnapshot, "RunEventRecord | None"], None]
"""Called after every change: the new snapshot, and the stored record for an event (None when
the run was created or finished). The processor hangs its sinks and hooks here."""


class StoreTarget:
    """A :class:`~runtrace.otel.translate.RunTarget` over ``store``.

    A run finishes cancelled (``mark_cancelled`` with the reason, then ``finish``), failed
    (``finish`` with the error) or completed, by the store's own status rules.
    """

    __slots__ = ("_on_change", "_on_event", "store")

    def __init__(
        self, store: RunStore, on_change: OnChange | None = None, *, events: bool = True
    ) -> None:
        """``events``: whether ``on_change`` wants each event too (a sink or hook takes it);
        without, an event's record and the run's snapshot after it are not made."""
        self.store = store
        self._on_change = on_change
        self._on_event = on_change if events else None

    def create_run(
        self,
        run_id: str,
        session_id: str,
        prompt: str,
        agent_name: str | None,
        trace_id: str,
        span_id: str,
        attributes: Mapping[str, Any],
        at_ms: int,
    ) -> None:
        snapshot = self.store.create_run(
            session_id,
            prompt,
            run_id=run_id,
            agent_name=agent_name,
            trace_id=trace_id,
            span_id=span_id,
            attributes=attributes,
            created_at_ms=at_ms,
        )
        if self._on_change is not None:
            self._on_change(snapshot, None)

    def record(self, run_id: str, event: dict[str, Any] | BaseEvent, at_ms: int) -> None:
        if self._on_event is None:
            self.store.append(run_id, event, at_ms)
            return
        snapshot, record = self.store.record(run_id, event, at_ms=at_ms)
        self._on_event(snapshot, record)

    def finish(self, run_id: str, *, error: str | None, cancelled: str | None, at_ms: int) -> None:
        if cancelled is not None:
            self.store.mark_cancelled(run_id, reason=cancelled, at_ms=at_ms)
        snapshot = self.store.finish(run_id, error=error, at_ms=at_ms)
        if self._on_change is not None:
            self._on_change(snapshot, None)
