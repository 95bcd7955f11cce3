"""Clean span events appended to SDK spans export exactly what ``Span.add_event`` would."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN

from runtrace import SpanSettings
from runtrace.events import parse_event
from runtrace.otel.sdk_span import add_clean_event, clean_event_limit
from runtrace.otel.span_events import event_attributes
from tests.event_samples import ONE_OF_EACH, VARIANTS

T0 = 1_700_000_000_000_000_000


def _exported(limits: SpanLimits | None, clean: bool, events: list[dict[str, Any]]) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("run", start_time=T0)
    assert isinstance(span, Span)
    limit = clean_event_limit(span)
    for i, raw in enumerate(events):
        model = parse_event(raw)
        attributes = event_attributes(model, SpanSettings(capture_content=True), sequence=i)
        if clean:
            add_clean_event(span, model.type, attributes, T0 + i, limit)
        else:
            span.add_event(model.type, attributes, T0 + i)
    span.end(T0 + 10**9)
    (exported,) = exporter.get_finished_spans()
    return exported


def _events(span: ReadableSpan) -> list[tuple[str, dict[str, Any], int, int]]:
    return [
        (e.name, dict(e.attributes or {}), e.timestamp, e.dropped_attributes) for e in span.events
    ]


@pytest.mark.parametrize(
    "limits",
    [None, SpanLimits(max_event_attributes=2), SpanLimits(max_attribute_length=3)],
    ids=["default limits", "two attributes per event", "three characters per value"],
)
def test_clean_events_export_as_add_event_does(limits: SpanLimits | None) -> None:
    events = ONE_OF_EACH + VARIANTS
    clean = _exported(limits, True, events)
    public = _exported(limits, False, events)
    assert _events(clean) == _events(public)
    assert clean.dropped_events == public.dropped_events
    # What an OTLP exporter sends is the same bytes, apart from the span's own ids and times.
    assert [e.SerializeToString() for e in _encoded_events(clean)] == [
        e.SerializeToString() for e in _encoded_events(public)
    ]


def _encoded_events(span: ReadableSpan) -> list[Any]:
    request = encode_spans([span])
    return list(request.resource_spans[0].scope_spans[0].spans[0].events)


def test_events_beyond_the_attribute_limit_take_the_sdk_path() -> None:
    exported = _exported(SpanLimits(max_event_attributes=1), True, [ONE_OF_EACH[7]])
    (event,) = exported.events
    assert len(event.attributes or {}) == 1
    assert event.dropped_attributes > 0


def test_the_direct_path_is_taken_only_on_plain_sdk_spans_with_no_value_limit() -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("run")
    assert clean_event_limit(span) == SpanLimits().max_event_attributes
    limited = TracerProvider(span_limits=SpanLimits(max_attribute_length=10))
    assert clean_event_limit(limited.get_tracer("t").start_span("run")) == 0
    assert clean_event_limit(INVALID_SPAN) == 0

    class Recording(Span):
        def add_event(self, name: str, attributes: Any = None, timestamp: Any = None) -> None:
            super().add_event(name, attributes, timestamp)

    assert clean_event_limit(Recording.__new__(Recording)) == 0


def test_an_ended_span_refuses_a_clean_event_as_it_refuses_add_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    span = TracerProvider().get_tracer("t").start_span("run")
    assert isinstance(span, Span)
    limit = clean_event_limit(span)
    span.end()
    with caplog.at_level(logging.WARNING):
        add_clean_event(span, "text_delta", {"runtrace.record.sequence": 0}, T0, limit)
    assert span.events == ()
    assert caplog.records, "the SDK's warning about an ended span"


def test_a_clean_event_cannot_be_changed_through_the_span() -> None:
    span = TracerProvider().get_tracer("t").start_span("run")
    assert isinstance(span, Span)
    attributes: dict[str, Any] = {"runtrace.record.sequence": 0}
    add_clean_event(span, "text_delta", attributes, T0, clean_event_limit(span))
    (event,) = span.events
    with pytest.raises(TypeError):
        event.attributes["x"] = 1  # type: ignore[index]
