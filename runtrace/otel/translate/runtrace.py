"""runtrace's own spans, received from another process (OTLP): the same run again.

A run span carries ``runtrace.span.kind = "run"``, its id (``runtrace.run.id``), session and agent,
and its events as span events numbered by ``runtrace.record.sequence`` (read back with
:func:`~runtrace.otel.span_events.event_from_attributes`); its status and ``runtrace.run.status``
say how it ended. runtrace's child spans (``runtrace.span.kind`` ``tool`` / ``subagent``) repeat
what the run's events already say, so they are read as ``other``: never taken for a foreign tool
call or agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

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
from .reading import SpanEvent, SpanReading, base, number, plain_event, text

__all__ = ["read"]

DIALECT = "runtrace"


def read(
    span: ReadableSpan, attributes: Mapping[str, Any] | None = None, *, events: bool = True
) -> SpanReading | None:
    """A runtrace span's reading, or None if runtrace did not write the span.

    ``events=False`` leaves the run's events unread: for a run recorded in this process, whose
    every event its recorder already has (decoding them is most of the cost of a reading).
    """
    a = attributes if attributes is not None else dict(span.attributes or {})
    kind = a.get(SPAN_KIND)
    if kind is None:
        return None
    if kind != KIND_RUN:
        return base(span, DIALECT, "other", a)
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


def _events(span: ReadableSpan) -> tuple[SpanEvent, ...]:
    """The run's events in their order: runtrace's (by sequence), then plain ones (by time)."""
    numbered: list[SpanEvent] = []
    plain: list[SpanEvent] = []
    for event in span.events:
        attributes = event.attributes or {}
        sequence = attributes.get(EVENT_SEQUENCE)
        if isinstance(sequence, int):
            numbered.append(
                SpanEvent(event.timestamp, plain_event(event.name, attributes), sequence)
            )
        elif event.name != n.EXCEPTION_EVENT:
            plain.append(SpanEvent(event.timestamp, plain_event(event.name, attributes)))
    numbered.sort(key=lambda e: e.sequence or 0)
    return (*numbered, *plain)
