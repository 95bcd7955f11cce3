"""Child spans of a run: ``execute_tool {name}`` for tool calls, ``invoke_agent {agent}`` for
subagents (runtrace's own child spans, never runs themselves).

:func:`child_span_start` / :func:`child_span_end` say which events open and close them (pure);
:func:`plan_child_spans` pairs them over a finished run's records, for replay;
:func:`on_child_event` and :func:`close_children` open and close the spans of a live run, by the
same rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ..events import BaseEvent
from ..runs import RunEventRecord
from . import semconv as sc
from .live import ChildKey, LiveRun
from .settings import SpanSettings, default_settings, truncate
from .span_events import json_default
from .values import INT64_MAX, AttributeValue, attribute_int

__all__ = [
    "CHILD_EVENT_TYPES",
    "ChildSpan",
    "ChildSpanEnd",
    "ChildSpanStart",
    "child_span_end",
    "child_span_start",
    "close_children",
    "on_child_event",
    "plan_child_spans",
]

CHILD_EVENT_TYPES = frozenset(
    {"tool_start", "tool_execution_start", "tool_end", "subagent_start", "subagent_end"}
)
"""The event types that may open or close a child span."""

_MS = 1_000_000  # ns per ms


@dataclass(frozen=True)
class ChildSpanStart:
    """An event opens a child span: ``key`` pairs it with the event that closes it."""

    key: ChildKey
    name: str
    attributes: dict[str, AttributeValue]
    start_ms: int | None = None
    """Start time the event itself reports (subagents), else the event's own time."""


@dataclass(frozen=True)
class ChildSpanEnd:
    """An event closes the child span ``key`` with ``status`` and extra attributes."""

    key: ChildKey
    status: Status
    attributes: dict[str, AttributeValue]
    end_ms: int | None = None


def _event_ms(value: Any) -> int | None:
    """A time an event reports (``started_ms``, ``finished_ms``) if a span can start or end then;
    None (use the event's own time) for 0, a non-int, or one beyond OTLP's nanosecond range."""
    if type(value) is int and 0 < value <= INT64_MAX // _MS:
        return value
    return None


def child_span_start(
    event: BaseEvent, run_id: str, settings: SpanSettings | None = None
) -> ChildSpanStart | None:
    """The child span ``event`` opens, if any: ``tool_start`` / ``tool_execution_start`` open
    ``execute_tool {name}``; ``subagent_start`` opens ``invoke_agent {agent}``.

    A ``tool_execution_start`` whose tool call is already open is not a new span; the caller keeps
    the open keys and skips a start whose key is open.
    """
    event_type = event.type
    if event_type in ("tool_start", "tool_execution_start"):
        name = str(getattr(event, "name", ""))
        call_id = str(getattr(event, "id", ""))
        return ChildSpanStart(
            key=(sc.KIND_TOOL, call_id),
            name=f"{sc.OP_EXECUTE_TOOL} {name}",
            attributes={
                sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.GEN_AI_TOOL_NAME: name,
                sc.GEN_AI_TOOL_CALL_ID: call_id,
                sc.RUN_ID: run_id,
                sc.SPAN_KIND: sc.KIND_TOOL,
            },
        )
    if event_type == "subagent_start":
        settings = settings or default_settings()
        agent = str(getattr(event, "agent", ""))
        task_id = str(getattr(event, "task_id", ""))
        attrs: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: agent,
            sc.GEN_AI_CONVERSATION_ID: str(getattr(event, "session_id", "")),
            sc.RUN_ID: run_id,
            sc.SPAN_KIND: sc.KIND_SUBAGENT,
            sc.SUBAGENT_TASK_ID: task_id,
            sc.SUBAGENT_PARENT_SESSION_ID: str(getattr(event, "parent_session_id", "")),
        }
        description = getattr(event, "description", None)
        if description:
            attrs[sc.GEN_AI_AGENT_DESCRIPTION] = truncate(description, settings.max_value_length)
        return ChildSpanStart(
            key=(sc.KIND_SUBAGENT, task_id),
            name=f"{sc.OP_INVOKE_AGENT} {agent}" if agent else sc.OP_INVOKE_AGENT,
            attributes=attrs,
            start_ms=_event_ms(getattr(event, "started_ms", None)),
        )
    return None


def child_span_end(event: BaseEvent, settings: SpanSettings | None = None) -> ChildSpanEnd | None:
    """The child span ``event`` closes, if any: ``tool_end`` and ``subagent_end``."""
    event_type = event.type
    if event_type == "tool_end":
        settings = settings or default_settings()
        exit_code = getattr(event, "exit_code", 0)
        error_kind = getattr(event, "error_kind", None)
        attrs: dict[str, AttributeValue] = {sc.TOOL_EXIT_CODE: attribute_int(exit_code)}
        if settings.capture_content:
            args = getattr(event, "args", None)
            if args is not None:
                text = args if isinstance(args, str) else json.dumps(args, default=json_default)
                attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = truncate(text, settings.max_value_length)
            attrs[sc.GEN_AI_TOOL_CALL_RESULT] = truncate(
                str(getattr(event, "output", "")), settings.max_value_length
            )
        if error_kind or exit_code != 0:
            attrs[sc.ERROR_TYPE] = error_kind or sc.ERROR_TYPE_TOOL
            status = Status(StatusCode.ERROR, error_kind or f"exit code {exit_code}")
        else:
            status = Status(StatusCode.OK)
        key = (sc.KIND_TOOL, str(getattr(event, "id", "")))
        return ChildSpanEnd(key=key, status=status, attributes=attrs)
    if event_type == "subagent_end":
        success = bool(getattr(event, "success", False))
        attrs = {sc.SUBAGENT_SUCCESS: success}
        if success:
            status = Status(StatusCode.OK)
        else:
            attrs[sc.ERROR_TYPE] = sc.ERROR_TYPE_SUBAGENT
            status = Status(StatusCode.ERROR, "subagent failed")
        return ChildSpanEnd(
            key=(sc.KIND_SUBAGENT, str(getattr(event, "task_id", ""))),
            status=status,
            attributes=attrs,
            end_ms=_event_ms(getattr(event, "finished_ms", None)),
        )
    return None


@dataclass(frozen=True)
class ChildSpan:
    """A child span of a finished run, for replay: times in ms since the epoch."""

    name: str
    start_ms: int
    end_ms: int
    attributes: dict[str, AttributeValue]
    status: Status
    finished: bool
    """False if the run ended before the closing event arrived (the span ends with the run)."""


def plan_child_spans(
    records: Iterable[RunEventRecord],
    run_id: str,
    *,
    run_end_ms: int,
    settings: SpanSettings | None = None,
) -> list[ChildSpan]:
    """Pair the opening and closing events of a run's records into child spans, in start order.

    The same rules the live processor follows, for replaying a stored run. Spans still open at
    the end of the run end at ``run_end_ms`` with status UNSET and ``finished = False``.
    """
    open_spans: dict[ChildKey, tuple[ChildSpanStart, int]] = {}
    done: list[ChildSpan] = []

    def add(opened: ChildSpanStart, opened_ms: int, end: ChildSpanEnd | None, at_ms: int) -> None:
        start_ms = opened.start_ms or opened_ms
        if end is None:  # still open when the run ended
            attributes, status = dict(opened.attributes), Status(StatusCode.UNSET)
            end_ms = max(at_ms, start_ms)
        else:
            attributes, status = {**opened.attributes, **end.attributes}, end.status
            end_ms = end.end_ms or at_ms
        done.append(ChildSpan(opened.name, start_ms, end_ms, attributes, status, end is not None))

    for record in records:
        event = record.event
        if event.type not in CHILD_EVENT_TYPES:
            continue
        start = child_span_start(event, run_id, settings)
        if start is not None:
            if start.key not in open_spans:
                open_spans[start.key] = (start, record.timestamp_ms)
            continue
        end = child_span_end(event, settings)
        if end is not None and end.key in open_spans:
            add(*open_spans.pop(end.key), end, record.timestamp_ms)
    for opened, opened_ms in open_spans.values():
        add(opened, opened_ms, None, run_end_ms)
    done.sort(key=lambda span: span.start_ms)  # stable: ties keep the order they ended in
    return done


# --- live runs -----------------------------------------------------------------------------------


def _start_time(span: trace.Span) -> int:
    start: int | None = getattr(span, "start_time", None)  # SDK spans have one, API spans not
    return start or 0


_OK = Status(StatusCode.OK)
_TOOL_SPAN_NAMES: dict[str, str] = {}  # tool name -> span name, bounded below


def _tool_span_name(name: str) -> str:
    span_name = _TOOL_SPAN_NAMES.get(name)
    if span_name is None:
        span_name = f"{sc.OP_EXECUTE_TOOL} {name}"
        if len(_TOOL_SPAN_NAMES) < 1024:
            _TOOL_SPAN_NAMES[name] = span_name
    return span_name


def on_child_event(
    tracer: trace.Tracer, live: LiveRun, event: BaseEvent, ns: int, settings: SpanSettings
) -> None:
    """Open or close the child span ``event`` stands for on the live run, at ``ns``.

    Tool calls, the common case, take a path of their own with the same result as
    :func:`child_span_start` / :func:`child_span_end`: no intermediate objects, one attribute
    set at the end (the SDK cleans a mapping of attributes value by value)."""
    event_type = event.type
    if event_type == "tool_start" or event_type == "tool_execution_start":
        name = getattr(event, "name", "")
        call_id = getattr(event, "id", "")
        if type(name) is not str:
            name = str(name)
        if type(call_id) is not str:
            call_id = str(call_id)
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: name,
            sc.GEN_AI_TOOL_CALL_ID: call_id,
            sc.RUN_ID: live.run_id,
            sc.SPAN_KIND: sc.KIND_TOOL,
        }
        _open_child(tracer, live, (sc.KIND_TOOL, call_id), _tool_span_name(name), attributes, ns)
        return
    if event_type == "tool_end" and not settings.capture_content:
        exit_code = getattr(event, "exit_code", 0)
        if exit_code == 0 and not getattr(event, "error_kind", None):
            call_id = getattr(event, "id", "")
            key = (sc.KIND_TOOL, call_id if type(call_id) is str else str(call_id))
            with live.lock:
                span = live.children.pop(key, None)
            if span is not None:
                span.set_attribute(sc.TOOL_EXIT_CODE, attribute_int(exit_code))
                span.set_status(_OK)
                span.end(ns)
            return
    start = child_span_start(event, live.run_id, settings)
    if start is not None:
        start_ns = start.start_ms * _MS if start.start_ms else ns
        _open_child(tracer, live, start.key, start.name, start.attributes, start_ns)
        return
    end = child_span_end(event, settings)
    if end is not None:
        with live.lock:
            span = live.children.pop(end.key, None)
        if span is not None:
            span.set_attributes(end.attributes)
            span.set_status(end.status)
            span.end(end.end_ms * _MS if end.end_ms else ns)


def _open_child(
    tracer: trace.Tracer,
    live: LiveRun,
    key: ChildKey,
    name: str,
    attributes: dict[str, AttributeValue],
    start_ns: int,
) -> None:
    with live.lock:
        if key in live.children:
            return
        live.children[key] = None  # reserved: a second start of the same call is skipped
    # Started outside the lock: start_span calls the sampler and every span processor, any
    # of which may cancel or end the run (which closes the children under the lock).
    context = live.context
    if context is None:
        context = live.context = trace.set_span_in_context(live.span)
    try:
        child = tracer.start_span(name, context=context, attributes=attributes, start_time=start_ns)
    except BaseException:
        with live.lock:
            if key in live.children and live.children[key] is None:
                del live.children[key]
        raise
    with live.lock:
        # Still reserved and the run still open: keep it. Otherwise the run was settled (its
        # children closed) or the call ended while the span was starting.
        keep = not live.settled and key in live.children and live.children[key] is None
        if keep:
            live.children[key] = child
    if not keep:
        if live.settled:
            child.set_attribute(sc.SPAN_UNFINISHED, True)
        child.end(max(time.time_ns(), _start_time(child)))


def close_children(live: LiveRun, end_ns: int) -> None:
    """Child spans still open when the run ends end with it, marked unfinished."""
    with live.lock:
        children = [child for child in live.children.values() if child is not None]
        live.children.clear()  # a child still starting sees the run settled, and ends itself
    for child in children:
        child.set_attribute(sc.SPAN_UNFINISHED, True)
        child.end(max(end_ns, _start_time(child) or end_ns))
