"""RunTarget: where an assembler's runs go, in a module of its own so that the engine and the
assembler both depend on it and not on each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ...events import BaseEvent

__all__ = ["RunTarget"]


class RunTarget(Protocol):
    """Where assembled runs go (:class:`~runtrace.otel.translate.StoreTarget` for a RunStore).

    ``create_run`` raises ``ValueError`` if ``run_id`` exists; ``record`` raises
    :class:`~runtrace.errors.RunNotFound` for a run that is gone (counted as lost).
    """

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
    ) -> None: ...

    def record(self, run_id: str, event: dict[str, Any] | BaseEvent, at_ms: int) -> None: ...

    def finish(
        self, run_id: str, *, error: str | None, cancelled: str | None, at_ms: int
    ) -> None: ...
