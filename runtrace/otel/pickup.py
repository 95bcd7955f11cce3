"""Plain span events picked up at a run span's end: events that agent code added with the plain
OpenTelemetry API (``span.add_event``) instead of through runtrace, so the store has them too.

Nothing is dropped: an event whose attributes do not fit its type is kept as an
``otel_span_event``, and plain events the span itself dropped (its event limit) before the pickup
are counted in a ``span_events_dropped`` event and logged once per run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from pydantic import ValidationError

from ..events import BaseEvent, GenericEvent
from . import semconv as sc
from .live import LiveRun
from .span_events import event_from_attributes

__all__ = ["SPAN_EVENTS_DROPPED", "UNPARSED_SPAN_EVENT", "RecordAt", "pickup"]

log = logging.getLogger("runtrace.otel")

UNPARSED_SPAN_EVENT: Final = "otel_span_event"
"""Type of the generic event that keeps a plain span event whose attributes do not fit its
event type (``name`` and ``attributes`` as given): nothing is dropped, and it reloads cleanly."""

SPAN_EVENTS_DROPPED: Final = "span_events_dropped"
"""Type of the generic event (``count``: how many) that says a run lost plain span events: the
span dropped them (its event limit) before runtrace could pick them up at its end."""

RecordAt = Callable[[LiveRun, BaseEvent, "int | None"], object]
"""How a picked-up event is recorded: (run, event, epoch ns or None for now), in the store and
the sinks but not again on the span."""


def pickup(live: LiveRun, span: ReadableSpan, record: RecordAt) -> None:
    """Record the span events of ``span`` added with the plain OpenTelemetry API (no sequence).

    ``exception`` events are OpenTelemetry's own; their message is already the error. Events
    are remembered by identity, so a second pickup (after a cancel) records only new ones.
    Plain events the span dropped before the pickup (the SDK keeps 128 per span by default,
    evicting the oldest) are lost: their number is recorded as a ``span_events_dropped`` event
    and logged once per run. ``span`` is an SDK span, open or ended.
    """
    events: Sequence[Event] = span.events
    dropped = span.dropped_events
    picked = live.picked
    if len(events) + dropped == len(live.span_added) + len(picked):
        return  # every event the span ever had is runtrace's own or was picked up before
    runtrace_present = picked_present = 0
    new: list[Event] = []
    for span_event in events:
        attributes = span_event.attributes
        if attributes and sc.EVENT_SEQUENCE in attributes:
            runtrace_present += 1
        elif span_event in picked:
            picked_present += 1
        elif span_event.name != sc.EXCEPTION_EVENT:
            new.append(span_event)
    if dropped:
        # Dropped ones that the store has anyway: runtrace's own, and plain ones picked up
        # before (after a cancel). The rest never reached the store.
        kept = len(live.span_added) - runtrace_present + len(picked) - picked_present
        lost = dropped - kept - live.drops_reported
        if lost > 0:
            _report_lost(live, lost, dropped, events[0].timestamp if events else None, record)
    for span_event in new:
        picked.add(span_event)
        attributes = span_event.attributes
        try:
            model = event_from_attributes(span_event.name, attributes)
        except ValidationError:
            model = GenericEvent(
                type=UNPARSED_SPAN_EVENT,
                name=span_event.name,
                attributes=dict(attributes or {}),
            )
        record(live, model, span_event.timestamp)


def _report_lost(
    live: LiveRun, lost: int, dropped: int, at_ns: int | None, record: RecordAt
) -> None:
    if not live.drops_reported:
        log.warning(
            "runtrace: run %s lost %d plain span event(s): its span dropped them before "
            "runtrace could pick them up (span event limit; %d dropped in all). Raise "
            "SpanLimits(max_events=...) or record through Runtrace / record_event, which "
            "keep every event.",
            live.run_id,
            lost,
            dropped,
        )
    live.drops_reported += lost
    record(live, GenericEvent(type=SPAN_EVENTS_DROPPED, count=lost), at_ns)
