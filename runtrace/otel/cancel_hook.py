"""The built-in hook that ends a cancelled run's span at once, with the cancelled status."""

from __future__ import annotations

from typing import Protocol

from ..hooks import RunHooks

__all__ = ["CancelSpanHook", "EndsRuns"]


class EndsRuns(Protocol):
    """What the hook drives: the processor's :meth:`~RunSpanProcessor.end_run`."""

    def end_run(self, run_id: str, end_ns: int | None = None) -> None: ...


class CancelSpanHook(RunHooks):
    """Ends a cancelled run's span as soon as the run is cancelled, not when its code unwinds.

    The processor installs it after the user's hooks (``cancel_ends_span=True``, the default).
    Spans that runtrace started are ended; spans started by plain OpenTelemetry code get the
    status and attributes, and are ended by their owner as usual (ending them here would make the
    owner's ``end()`` warn).
    """

    __slots__ = ("_processor",)

    def __init__(self, processor: EndsRuns) -> None:
        self._processor = processor

    def on_run_cancelled(self, run_id: str, session_id: str, reason: str) -> None:
        self._processor.end_run(run_id)
