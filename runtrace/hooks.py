"""Hooks into a run's life, and the cancellation token the agent checks.

Hooks are the reference's ``HookExecutor``: they observe runs (start, every event, cancellation,
end) without being sinks. ``RunHooks`` is a base class whose methods do nothing, as the
OpenTelemetry SDK's ``SpanProcessor`` is: subclass it and override what you need. A hook that
raises is reported by the fault policy and never breaks the run.
"""

from __future__ import annotations

import threading

from .errors import RunCancelled
from .events import BaseEvent
from .runs import RunSnapshot

__all__ = ["CancellationToken", "RunHooks"]


class RunHooks:
    """Callbacks on a run's life; every method is a no-op until overridden.

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
        # The flag is the reason; a threading.Event (a Condition and two locks) is made only
        # for a thread that waits: every run has a token, few runs are ever waited on.
        self._event: threading.Event | None = None
        self._lock = threading.Lock()
        self._reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._reason is not None

    @property
    def reason(self) -> str | None:
        """Why the run was cancelled, once it was."""
        return self._reason

    def cancel(self, reason: str) -> bool:
        """Set the flag; False if it was already set (the first caller wins, its reason kept)."""
        with self._lock:
            if self._reason is not None:
                return False
            self._reason = reason
            event = self._event
        if event is not None:
            event.set()
        return True

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~runtrace.errors.RunCancelled` if the run was cancelled."""
        reason = self._reason
        if reason is not None:
            raise RunCancelled(self.run_id, reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; True if cancelled."""
        with self._lock:
            if self._reason is not None:
                return True
            event = self._event
            if event is None:
                event = self._event = threading.Event()
        return event.wait(timeout)
