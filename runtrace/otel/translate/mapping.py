"""What a reading becomes on its run: runtrace event dicts, each with the time it happened.

Tool spans become ``tool_start`` (at their start) and ``tool_end`` (at their end; an error is a
non-zero exit code with the message, a cancellation exit code 130); model spans ``turn_start`` /
``turn_end`` with the call's usage (and an ``error`` when the call raised); a nested agent becomes
``subagent_start`` / ``subagent_end`` on the run around it. Every dict validates against
:mod:`runtrace.events`.
"""

from __future__ import annotations

from typing import Any

from ...events import BaseEvent
from .content import json_value
from .reading import SpanReading

__all__ = [
    "CANCELLED_EXIT_CODE",
    "agent_end",
    "agent_start",
    "child_events",
    "subagent_end",
    "subagent_start",
]

Timed = tuple[int, "dict[str, Any] | BaseEvent"]
"""An event (a dict, or a model already validated) and when it happened (epoch ns)."""

CANCELLED_EXIT_CODE = 130
"""A tool call that was cancelled ends with the shell's code for an interrupt (128 + SIGINT)."""


def _start(reading: SpanReading) -> int:
    return reading.start_ns or reading.end_ns or 0


def _end(reading: SpanReading) -> int:
    return reading.end_ns or reading.start_ns or 0


def child_events(reading: SpanReading, turn: int) -> list[Timed]:
    """The events of a tool or model span (``turn``: the number a model call gets); none for
    other spans."""
    if reading.role == "tool":
        return _tool(reading)
    if reading.role == "model":
        return _turn(reading, turn)
    return []


def _tool(r: SpanReading) -> list[Timed]:
    call_id = r.call_id or format(r.span_id, "016x")
    name = r.tool_name or r.name
    end: dict[str, Any] = {
        "type": "tool_end",
        "id": call_id,
        "name": name,
        "args": json_value(r.arguments),
        "output": r.tool_result or "",
        "exit_code": 0,
    }
    if r.deferred is not None:
        end["metadata"] = {"deferred": r.deferred}
    elif r.cancelled is not None:
        end.update(exit_code=CANCELLED_EXIT_CODE, error_kind="cancelled")
        end["output"] = r.tool_result or r.cancelled
    elif r.error is not None:
        end.update(exit_code=1, error_kind=r.error_type or "tool_error")
        end["output"] = r.tool_result or r.error
    return [
        (_start(r), {"type": "tool_start", "id": call_id, "name": name}),
        (_end(r), end),
    ]


def _turn(r: SpanReading, turn: int) -> list[Timed]:
    end: dict[str, Any] = {"type": "turn_end", "turn": turn}
    if r.tokens is not None:
        end["usage"] = r.tokens.usage()
    if r.model is not None:
        end["model"] = r.model
    events: list[Timed] = [(_start(r), {"type": "turn_start", "turn": turn}), (_end(r), end)]
    if r.error is not None:
        events.append((_end(r), {"type": "error", "message": r.error}))
    return events


def subagent_start(
    inner: SpanReading, task_id: str, session_id: str, parent_session_id: str
) -> dict[str, Any]:
    """The outer run's ``subagent_start`` for the nested run ``task_id`` (its start time)."""
    start = _start(inner)
    return {
        "type": "subagent_start",
        "task_id": task_id,
        "session_id": session_id,
        "parent_session_id": parent_session_id,
        "agent": inner.agent_name or "",
        "description": inner.description or "",
        "started_ms": start // 1_000_000,
    }


def subagent_end(
    inner: SpanReading, task_id: str, session_id: str, output: str, success: bool
) -> dict[str, Any]:
    """The outer run's ``subagent_end`` once the nested run ``task_id`` ended."""
    return {
        "type": "subagent_end",
        "task_id": task_id,
        "session_id": session_id,
        "agent": inner.agent_name or "",
        "output": output,
        "success": success,
        "finished_ms": _end(inner) // 1_000_000,
    }


def agent_start(prompt: str | None) -> dict[str, Any]:
    """The event that starts a run taken from spans (the run starts executing)."""
    return {"type": "agent_start", "prompt": prompt or ""}


def run_id(reading: SpanReading) -> str:
    """The run id of an agent span: the one it names, else one made of its trace and span ids,
    so the same span makes the same run in-process and when received over OTLP."""
    return reading.run_id or f"run-{reading.trace_id:032x}-{reading.span_id:016x}"


def agent_end(reading: SpanReading) -> dict[str, Any]:
    """The event that completes a run, with the run's own usage when its span reports a total
    (it replaces the sum of the turns: tokens count once)."""
    event: dict[str, Any] = {"type": "agent_end", "text": reading.result or ""}
    if reading.tokens is not None and reading.tokens.aggregate:
        event["usage"] = reading.tokens.usage()
    return event
