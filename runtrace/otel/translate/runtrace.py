"""runtrace's own spans, received from another process (OTLP): the same run again.

A run span carries ``runtrace.span.kind = "run"``, its id (``runtrace.run.id``), session and agent,
and its events as span events numbered by ``runtrace.record.sequence`` (read back with
:func:`~runtrace.otel.span_events.event_from_attributes`); its status and ``runtrace.run.status``
say how it ended. runtrace's child spans (``runtrace.span.kind`` ``tool`` / ``subagent``) repeat
what the run's events already say, so they are read as ``other``: never taken for a foreign tool
call or agent.

A *pending* span (``runtrace.span.kind = "pending"``, :mod:`runtrace.otel.announce`) is a child of a
run span that is still open, sent so that a receiver can show the run before its span ends: it
carries the run's start attributes and the events recorded since the previous one.
:func:`read_pending` reads it as the open run it announces; :func:`read` reads it as ``other``, so
a consumer that does not know pending spans ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from ..semconv import (
    EVENT_SEQUENCE,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    KIND_RUN,
    RUN_EVENT_COUNT,
    RUN_ID,
    RUN_PROMPT,
    RUN_RESULT,
    RUN_STATUS,
    SPAN_KIND,
)
from . import names as n
from .reading import Role, SpanEvent, SpanReading, base, number, plain_model, session, text

__all__ = ["KIND_PENDING", "read", "read_pending", "role"]

DIALECT = "runtrace"

KIND_PENDING = "pending"
"""``runtrace.span.kind`` of a span announcing a run that is still open."""


def role(name: str, attributes: Mapping[str, Any]) -> Role | None:
    """What a span is to runtrace (None if runtrace did not write it): a run span is an agent,
    every other runtrace span ``other``."""
    kind = attributes.get(SPAN_KIND)
    if kind is None:
        return None
    return "agent" if kind == KIND_RUN else "other"


def read(
    span: ReadableSpan, attributes: Mapping[str, Any] | None = None, *, events: bool = True
) -> SpanReading | None:
    """A runtrace span's reading, or None if runtrace did not write the span.

    ``events=False`` leaves the run's events unread: for a run recorded in this process, whose
    every event its recorder already has (decoding them is most of the cost of a reading).
    """
    a = attributes if attributes is not None else dict(span.attributes or {})
    found = role(span.name, a)
    if found is None:
        return None
    if found != "agent":
        return base(span, DIALECT, found, a)
    fields: dict[str, Any] = {}
    if events:
        numbered = _events(span)
        recorded = number(a, RUN_EVENT_COUNT)
        fields["events"] = numbered
        fields["missing_events"] = max(0, recorded - len(numbered)) if recorded is not None else 0
    return base(
        span,
        DIALECT,
        "agent",
        a,
        run_id=text(a, RUN_ID),
        session_id=text(a, GEN_AI_CONVERSATION_ID),
        agent_name=text(a, GEN_AI_AGENT_NAME),
        prompt=text(a, RUN_PROMPT),
        result=text(a, RUN_RESULT),
        outcome=text(a, RUN_STATUS),
        **fields,
    )


def read_pending(
    span: ReadableSpan, attributes: Mapping[str, Any] | None = None
) -> SpanReading | None:
    """The open run a pending span announces (None if ``span`` is no pending span, or names no
    run): a reading *of the run span*, as far as it is known while it runs. Its span id is the
    pending span's parent (the run span), its start the run's start (pending spans start when
    their run did), no end, and the events recorded since the previous announcement, numbered.
    """
    a = attributes if attributes is not None else dict(span.attributes or {})
    context, parent = span.context, span.parent
    run_id = text(a, RUN_ID)
    if a.get(SPAN_KIND) != KIND_PENDING or not run_id or context is None or parent is None:
        return None
    return SpanReading(
        dialect=DIALECT,
        role="agent",
        trace_id=context.trace_id,
        span_id=parent.span_id,
        parent_id=None,
        parent_remote=False,
        name=span.name,
        start_ns=span.start_time,
        end_ns=None,
        status=StatusCode.UNSET,
        agent_name=text(a, GEN_AI_AGENT_NAME),
        session_id=session(a),
        run_id=run_id,
        events=tuple(e for e in _events(span) if e.sequence is not None),
    )


def _events(span: ReadableSpan) -> tuple[SpanEvent, ...]:
    """The run's events in their order: runtrace's (by sequence), then plain ones (by time)."""
    numbered: list[SpanEvent] = []
    plain: list[SpanEvent] = []
    for event in span.events:
        attributes = event.attributes or {}
        sequence = attributes.get(EVENT_SEQUENCE)
        if isinstance(sequence, int):
            numbered.append(
                SpanEvent(event.timestamp, plain_model(event.name, attributes), sequence)
            )
        elif event.name != n.EXCEPTION_EVENT:
            plain.append(SpanEvent(event.timestamp, plain_model(event.name, attributes)))
    numbered.sort(key=lambda e: e.sequence or 0)
    return (*numbered, *plain)
