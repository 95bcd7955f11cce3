"""Calling every hook and sink on a run change, through the one fault policy.

A hook is a :class:`~runtrace.hooks.RunHooks`; only the methods it overrides are called, so the
no-op base costs nothing on the hot path (a processor with no ``on_event`` hook does no work per
event for hooks). Each call that raises is reported by :class:`~runtrace.faults.Faults` and the
others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, ParamSpec

from ..events import BaseEvent
from ..faults import Faults
from ..hooks import RunHooks
from ..runs import RunEventRecord, RunSnapshot
from ..sink import RunSink

__all__ = ["Fanout", "RunFanout"]

P = ParamSpec("P")


class Fanout(Generic[P]):
    """The same call made on several callables; ``what`` names a failure in the log."""

    __slots__ = ("_calls", "_faults", "_what")

    def __init__(self, calls: Iterable[Callable[P, object]], what: str, faults: Faults) -> None:
        self._calls = tuple(calls)
        self._what = what
        self._faults = faults

    def __bool__(self) -> bool:
        return bool(self._calls)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for call in self._calls:
            try:
                call(*args, **kwargs)
            except Exception:
                self._faults.report(self._what)


def _overridden(hooks: Iterable[RunHooks], name: str) -> list[Callable[..., object]]:
    """The bound ``name`` methods of the hooks whose class overrides ``RunHooks.name``."""
    base = getattr(RunHooks, name)
    return [getattr(hook, name) for hook in hooks if getattr(type(hook), name, base) is not base]


class RunFanout:
    """Every callback of a processor's sinks and hooks, one :class:`Fanout` per kind of call.

    Sinks hear of a change before hooks do, so a hook that reads the database after
    ``on_run_end`` sees what the sink was given.
    """

    __slots__ = (
        "on_event",
        "on_run",
        "on_run_cancelled",
        "on_run_end",
        "on_run_start",
        "sink_on_event",
    )

    def __init__(self, sinks: Iterable[RunSink], hooks: Iterable[RunHooks], faults: Faults):
        sinks, hooks = tuple(sinks), tuple(hooks)
        self.on_run: Fanout[[RunSnapshot]] = Fanout(
            (sink.on_run for sink in sinks), "a sink's on_run", faults
        )
        self.sink_on_event: Fanout[[RunSnapshot, RunEventRecord]] = Fanout(
            (sink.on_event for sink in sinks), "a sink's on_event", faults
        )
        self.on_run_start: Fanout[[RunSnapshot]] = Fanout(
            _overridden(hooks, "on_run_start"), "a hook's on_run_start", faults
        )
        self.on_event: Fanout[[BaseEvent, str, str]] = Fanout(
            _overridden(hooks, "on_event"), "a hook's on_event", faults
        )
        self.on_run_cancelled: Fanout[[str, str, str]] = Fanout(
            _overridden(hooks, "on_run_cancelled"), "a hook's on_run_cancelled", faults
        )
        self.on_run_end: Fanout[[RunSnapshot]] = Fanout(
            _overridden(hooks, "on_run_end"), "a hook's on_run_end", faults
        )
