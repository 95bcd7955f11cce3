"""SpanReading: what one span says about a run, whatever convention it was written in.

Each dialect turns a span into a reading; the assembler only ever sees readings. The helpers
below are the parts every dialect shares: ids and times, the outcome (error, cancellation) from
status and exception events, sessions, token counts, and a span's own events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode
from pydantic import ValidationError

from ...events import BaseEvent, parse_event
from ..pickup import SPAN_EVENTS_DROPPED, UNPARSED_SPAN_EVENT
from ..span_events import event_from_attributes
from . import names as n

__all__ = ["SPAN_EVENTS_DROPPED", "Role", "SpanEvent", "SpanReading", "Tokens", "opened"]

Role = Literal["agent", "tool", "model", "wrapper", "other"]
"""agent: an agent invocation (a run, or a subagent inside one). tool: one tool call. model: one
model call (a turn). wrapper: a workflow or chain that may hold an agent. other: anything else."""

_CANCEL_REASONS = {
    "CancelledError": "asyncio task cancelled",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "GeneratorExit": "generator closed",
    "Cancelled": "cancelled",
    "RunCancelled": "cancelled",
}
"""Exception classes (by their last dotted name) that mean a cancellation, not a failure; the
reasons are the ones :class:`~runtrace.otel.api.RunHandle` gives its own runs."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts a span reports: one call's, or a run's total (``aggregate``)."""

    input: int = 0
    output: int = 0
    cache_read: int | None = None
    cache_write: int | None = None
    aggregate: bool = False

    def usage(self) -> dict[str, int]:
        """As a runtrace ``TokenUsage`` dict."""
        usage = {
            "prompt_tokens": self.input,
            "completion_tokens": self.output,
            "total_tokens": self.input + self.output,
        }
        if self.cache_read is not None:
            usage["cache_read_tokens"] = self.cache_read
        if self.cache_write is not None:
            usage["cache_write_tokens"] = self.cache_write
        return usage


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """An event the span carries for its run, at ``at_ns``; ``sequence`` if runtrace numbered it.

    ``model``: the event as the store keeps it, validated once when the span was read (a dict
    only for one that did not validate even as a generic event: the store says why)."""

    at_ns: int
    model: BaseEvent | dict[str, Any]
    sequence: int | None = None

    @property
    def event(self) -> dict[str, Any]:
        """The event as a dict."""
        model = self.model
        return model if isinstance(model, dict) else model.model_dump()


@dataclass(slots=True)
class SpanReading:
    """What a span is and says, read by one dialect. Content fields are None unless the span
    carries them; ``error`` / ``cancelled`` are None unless the span signals them.

    A value: nothing changes a reading once made (a span's later reading replaces it). Not a
    frozen dataclass only because every span is read once or twice, and a frozen one's
    ``__init__`` (an ``object.__setattr__`` call per field) cost 5 µs of each reading's 6."""

    dialect: str
    role: Role
    trace_id: int
    span_id: int
    parent_id: int | None
    parent_remote: bool
    name: str
    start_ns: int | None
    end_ns: int | None
    status: StatusCode
    agent_name: str | None = None
    description: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    prompt: str | None = None
    result: str | None = None
    """An agent's (or wrapper's) final answer. Not read on a model span: no event carries a
    single call's answer, and decoding its messages was a tenth of the translator's time."""
    model: str | None = None
    tokens: Tokens | None = None
    tool_name: str | None = None
    call_id: str | None = None
    arguments: str | None = None
    tool_result: str | None = None
    error: str | None = None
    error_type: str | None = None
    cancelled: str | None = None
    """Why the span says it was cancelled (CancelledError / KeyboardInterrupt exception event,
    ``error.type`` cancelled, a framework's own attribute)."""
    deferred: str | None = None
    """A tool call the framework deferred (e.g. pydantic-ai's ``CallDeferred``): not a failure."""
    may_wrap: bool = False
    """An agent span that may only wrap other agents (OpenInference nests AGENT in AGENT)."""
    outcome: str | None = None
    """The run status the span records itself (runtrace's own run spans)."""
    events: tuple[SpanEvent, ...] = ()
    missing_events: int = 0
    """Events the run had that the span no longer carries (the span's event limit)."""
    light: bool = False
    """Read at the span's start for its role alone (:func:`opened`): nothing else is read yet.
    An open tool, model or other span decides nothing by its content; its end reads it whole."""


def base(
    span: ReadableSpan,
    dialect: str,
    role: Role,
    attributes: Mapping[str, Any],
    *,
    failed: str | None = None,
    span_events: Sequence[Event] | None = None,
    **fields: Any,
) -> SpanReading:
    """A reading with the span's ids, times, status and outcome filled in, plus ``fields``.
    ``failed``: an error the span says in its own terms, when its status does not.
    ``span_events``: ``span.events`` if the caller has them (the SDK copies them per call)."""
    context = span.context
    parent = span.parent
    events = span.events if span_events is None else span_events
    error, error_type, cancelled = outcome(span, attributes, events)
    fields.setdefault("error", error if error is not None or cancelled is not None else failed)
    fields.setdefault("error_type", error_type)
    fields.setdefault("cancelled", cancelled)
    if "session_id" not in fields:
        fields["session_id"] = session(attributes)
    return SpanReading(
        dialect=dialect,
        role=role,
        trace_id=context.trace_id if context is not None else 0,
        span_id=context.span_id if context is not None else 0,
        parent_id=parent.span_id if parent is not None and parent.span_id else None,
        parent_remote=bool(parent is not None and parent.is_remote),
        name=span.name,
        start_ns=span.start_time,
        end_ns=span.end_time,
        status=span.status.status_code,
        **fields,
    )


def opened(span: ReadableSpan, dialect: str, role: Role) -> SpanReading:
    """A ``light`` reading of a span that just started: ids, times and role, no content."""
    context = span.context
    parent = span.parent
    return SpanReading(
        dialect=dialect,
        role=role,
        trace_id=context.trace_id if context is not None else 0,
        span_id=context.span_id if context is not None else 0,
        parent_id=parent.span_id if parent is not None and parent.span_id else None,
        parent_remote=bool(parent is not None and parent.is_remote),
        name=span.name,
        start_ns=span.start_time,
        end_ns=span.end_time,
        status=span.status.status_code,
        light=True,
    )


def text(attributes: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` that holds a non-empty value, as a string."""
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value if isinstance(value, str) else str(value)
    return None


def number(attributes: Mapping[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` that holds an integer (booleans are not counts)."""
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    return None


def session(attributes: Mapping[str, Any]) -> str | None:
    """The conversation the span belongs to: ``gen_ai.conversation.id``, ``session.id``, or an
    OpenLLMetry association property; None when it names none (the trace is the session)."""
    return text(attributes, n.CONVERSATION_ID, n.OI_SESSION_ID, *n.TL_SESSION_IDS)


def tokens(
    attributes: Mapping[str, Any],
    input_keys: Sequence[str],
    output_keys: Sequence[str],
    cache_keys: tuple[str, str],
    *,
    aggregate: bool,
) -> Tokens | None:
    """Token counts under the given keys, or None when the span reports none."""
    inp = number(attributes, *input_keys)
    out = number(attributes, *output_keys)
    if inp is None and out is None:
        return None
    return Tokens(
        input=inp or 0,
        output=out or 0,
        cache_read=number(attributes, cache_keys[0]),
        cache_write=number(attributes, cache_keys[1]),
        aggregate=aggregate,
    )


def cancel_reason(exception_type: str) -> str | None:
    """The cancellation an exception class stands for, or None if it is an ordinary error."""
    return _CANCEL_REASONS.get(exception_type.rsplit(".", 1)[-1])


def outcome(
    span: ReadableSpan, attributes: Mapping[str, Any], events: Sequence[Event] | None = None
) -> tuple[str | None, str | None, str | None]:
    """``(error, error_type, cancelled)`` from the span's status, exception events, ``error.type``
    and framework cancellation attributes. A cancellation is never also an error. ``events``:
    ``span.events``, if the caller has them."""
    status = span.status
    if events is None:
        events = span.events
    if (
        not events
        and status.status_code is StatusCode.UNSET
        and n.ERROR_TYPE not in attributes
        and n.STRANDS_CANCELLATION not in attributes
    ):
        return None, None, None  # most spans: nothing says anything went wrong
    cancelled: str | None = None
    failure: tuple[str, str] | None = None
    escaped = False
    for event in events:
        if event.name != n.EXCEPTION_EVENT:
            continue
        attrs = event.attributes or {}
        exc_type = str(attrs.get(n.EXCEPTION_TYPE, ""))
        reason = cancel_reason(exc_type)
        if reason is not None:
            cancelled = reason
            continue
        failure = (exc_type, str(attrs.get(n.EXCEPTION_MESSAGE, "")))
        escaped = escaped or str(attrs.get(n.EXCEPTION_ESCAPED, "")).lower() == "true"
    error_type = text(attributes, n.ERROR_TYPE)
    framework_cancel = text(attributes, n.STRANDS_CANCELLATION)
    if framework_cancel is not None:
        cancelled = cancel_reason(framework_cancel) or f"cancelled ({framework_cancel})"
    description = status.description
    if error_type == n.ERROR_TYPE_CANCELLED:
        cancelled = cancelled or _strip_cancelled(description)
    if cancelled is not None:
        return None, error_type, cancelled
    if status.status_code is not StatusCode.ERROR and not escaped:
        return None, None, None
    if failure is not None:
        short = failure[0].rsplit(".", 1)[-1]
        error = description or (f"{short}: {failure[1]}" if failure[1] else short)
        return error, failure[0], None
    return description or error_type or "span ended with status ERROR", error_type, None


def _strip_cancelled(description: str | None) -> str:
    if not description:
        return "cancelled"
    head, sep, rest = description.partition(": ")
    return rest if sep and head == n.ERROR_TYPE_CANCELLED else description


def plain_event(name: str, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The runtrace event a plain span event (or log record) named ``name`` stands for: a core
    event when its attributes fit, else a generic event keeping them as given."""
    event = plain_model(name, attributes)
    return event if isinstance(event, dict) else event.model_dump()


def plain_model(name: str, attributes: Mapping[str, Any] | None) -> BaseEvent | dict[str, Any]:
    """:func:`plain_event` as the model the store keeps, which takes it as it is (a dict, to be
    validated there, only when even the generic event does not fit)."""
    try:
        return event_from_attributes(name, attributes)
    except ValidationError:
        unparsed = {"type": UNPARSED_SPAN_EVENT, "name": name, "attributes": dict(attributes or {})}
    try:
        return parse_event(unparsed)
    except ValidationError:
        return unparsed


def plain_events(events: Sequence[Event]) -> tuple[SpanEvent, ...]:
    """An agent span's own events, as the processor picks them up from plain run spans: all but
    OpenTelemetry's ``exception`` events (the outcome already says them) and GenAI content events
    (``gen_ai.*``: read as the prompt and result)."""
    return tuple(
        SpanEvent(at_ns=event.timestamp, model=plain_model(event.name, event.attributes))
        for event in events
        if event.name != n.EXCEPTION_EVENT and not event.name.startswith(n.GEN_AI_PREFIX)
    )
