"""Hooks into a run's life, and the cancellation token.

Hooks are the reference's ``HookExecutor``: they observe runs (start, every event, cancellation,
end) without being sinks. Every method is optional; a hook that raises is logged and never breaks
the run (under pytest it is re-raised, so bugs show in tests).
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from ..errors import RunCancelled
from ..events import BaseEvent
from ..runs import RunSnapshot

__all__ = ["CancellationToken", "RunHooks"]

HOOK_METHODS = ("on_run_start", "on_event", "on_run_cancelled", "on_run_end")


@runtime_checkable
class RunHooks(Protocol):
    """What a hook may implement; all methods are optional (implement only those you need).

    Calls come from the agent's thread, synchronously: keep them short.
    """

    def on_run_start(self, snapshot: RunSnapshot) -> None:
        """A run was created (status ``created``)."""

    def on_event(self, event: BaseEvent, run_id: str, session_id: str) -> None:
        """``event`` was recorded on the run (the reference's ``record_agent_event``)."""

    def on_run_cancelled(self, run_id: str, session_id: str, reason: str) -> None:
        """The run was cancelled (the reference's ``record_run_cancelled``); called once per run."""

    def on_run_end(self, snapshot: RunSnapshot) -> None:
        """The run's span ended; ``snapshot`` is final (``ended_at_ms`` set)."""


class CancellationToken:
    """The run's cancellation flag, which the agent checks between steps (cooperative).

    Thread-safe; ``wait`` lets a worker thread block until cancellation.
    """

    __slots__ = ("_event", "_lock", "_reason", "run_id")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        """Why the run was cancelled, once it was."""
        return self._reason

    def cancel(self, reason: str) -> bool:
        """Set the flag; False if it was already set (the first caller wins, its reason kept)."""
        with self._lock:
            if self._event.is_set():
                return False
            self._reason = reason
            self._event.set()
        return True

    def raise_if_cancelled(self) -> None:
        """Raise :class:`RunCancelled` if the run was cancelled."""
        if self._event.is_set():
            raise RunCancelled(self.run_id, self._reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; True if cancelled."""
        return self._event.wait(timeout)
