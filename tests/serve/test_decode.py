"""Decoding OTLP into SDK objects: what is carried over (ids, times, dropped counts, remote
parents, links, trace state, shared resources), and each reason a span or log record is
rejected."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from serve.helpers import NOW_NS, TRACE_ID, any_value, attributes, pb_span, traces_request

from runtrace.serve import Limits, decode_logs, decode_spans

LIMITS = Limits()


def _one(span: Span, limits: Limits = LIMITS) -> ReadableSpan:
    decoded = decode_spans(traces_request(span), limits)
    assert decoded.rejected == 0, decoded.reasons
    [out] = decoded.items
    return out


def _reason(span: Span, limits: Limits = LIMITS) -> str:
    decoded = decode_spans(traces_request(span), limits)
    assert decoded.items == []
    [reason] = decoded.reasons
    return reason


def test_an_empty_attribute_value_counts_as_dropped_like_the_sdk_drops_none() -> None:
    span = _one(pb_span(attributes=attributes({"ok": 1, "none": None}), dropped_attributes_count=2))
    assert dict(span.attributes) == {"ok": 1}
    assert span.dropped_attributes == 3


def test_ids_times_kind_status_events_links_and_dropped_counts_are_carried_over() -> None:
    link = Span.Link(trace_id=TRACE_ID, span_id=(9).to_bytes(8, "big"), flags=0x301)
    link.attributes.extend(attributes({"why": "x"}))
    event = Span.Event(time_unix_nano=NOW_NS - 1_500_000, name="e", dropped_attributes_count=1)
    event.attributes.extend(attributes({"k": "v"}))
    pb = pb_span(
        5,
        parent_span_id=(4).to_bytes(8, "big"),
        flags=0x300,
        kind=Span.SPAN_KIND_CLIENT,
        status=Status(code=Status.STATUS_CODE_ERROR, message="bad"),
        events=[event],
        links=[link],
        trace_state="vendor=1",
        dropped_events_count=4,
        dropped_links_count=5,
    )
    span = _one(pb)
    assert span.context.trace_id == int.from_bytes(TRACE_ID, "big")
    assert span.context.span_id == 5
    assert span.context.trace_state.to_header() == "vendor=1"
    assert span.parent.span_id == 4 and span.parent.is_remote
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "bad"
    [ev] = span.events
    assert (ev.name, ev.timestamp, dict(ev.attributes)) == ("e", NOW_NS - 1_500_000, {"k": "v"})
    assert ev.dropped_attributes == 1
    [ln] = span.links
    assert ln.context.span_id == 9 and ln.context.is_remote and dict(ln.attributes) == {"why": "x"}
    assert (span.dropped_events, span.dropped_links) == (4, 5)


def test_a_status_message_is_kept_only_for_errors_and_unspecified_kind_is_internal() -> None:
    span = _one(pb_span(status=Status(code=Status.STATUS_CODE_OK, message="ignored")))
    assert span.status.status_code is StatusCode.OK
    assert span.status.description is None
    assert span.kind is SpanKind.INTERNAL
    assert span.parent is None


@pytest.mark.parametrize(
    "span, reason",
    [
        (pb_span(trace_id=b""), "trace_id missing"),
        (pb_span(trace_id=bytes(16)), "trace_id missing, zero"),
        (pb_span(trace_id=b"\x01" * 8), "not 16 bytes"),
        (pb_span(span_id=b""), "span_id missing"),
        (pb_span(span_id=0), "span_id missing, zero"),
        (pb_span(start=0), "without start_time_unix_nano"),
        (pb_span(end=0), "without end_time_unix_nano"),
        (pb_span(start=123), "start_time_unix_nano before 2000"),
        (pb_span(end=NOW_NS + 10**18), "too far in the future"),
        (pb_span(start=NOW_NS, end=NOW_NS - 1), "end_time_unix_nano before start_time"),
        (pb_span(kind=9), "unknown kind"),
        (pb_span(status=Status(code=7)), "unknown status code"),
        (pb_span(parent_span_id=b"\x01\x02"), "parent_span_id not 8 bytes"),
        (pb_span(trace_state="not a tracestate!"), "invalid W3C trace_state"),
        (pb_span(events=[Span.Event(time_unix_nano=5, name="e")]), "an event time_unix_nano"),
        (pb_span(links=[Span.Link(trace_id=TRACE_ID, span_id=b"")]), "a link whose span_id"),
    ],
)
def test_a_malformed_span_is_rejected_with_its_reason(span: Span, reason: str) -> None:
    assert reason in _reason(span)


def test_over_the_limits_a_span_is_rejected_not_truncated() -> None:
    limits = Limits(max_attributes=2, max_value_length=10)
    assert "more than 2 attributes" in _reason(
        pb_span(attributes=attributes({"a": 1, "b": 2, "c": 3})), limits
    )
    assert "longer than 10" in _reason(pb_span(attributes=attributes({"a": "x" * 11})), limits)
    assert "longer than 10" in _reason(pb_span(attributes=attributes({"a": ["x"] * 6})), limits)
    assert "longer than 10" in _reason(
        pb_span(attributes=attributes({"m": {"k": "x" * 9}})), limits
    )
    event = Span.Event(time_unix_nano=NOW_NS - 1_500_000, name="e")
    event.attributes.extend(attributes({"a": 1, "b": 2, "c": 3}))
    assert "more than 2 attributes" in _reason(pb_span(events=[event]), limits)
    _one(pb_span(attributes=attributes({"a": "x" * 10, "b": ["x"] * 5})), limits)


def test_a_resource_over_the_limits_rejects_its_spans_and_only_them() -> None:
    request = traces_request(pb_span(1), pb_span(2), resource={"a": 1, "b": 2, "c": 3})
    request.resource_spans.add().scope_spans.add().spans.append(pb_span(3))
    decoded = decode_spans(request, Limits(max_attributes=2))
    assert [s.context.span_id for s in decoded.items] == [3]
    assert decoded.reasons == {"spans of a resource with more than 2 attributes": 2}
    assert decoded.message("spans") == (
        "rejected 2 spans: 2 spans of a resource with more than 2 attributes"
    )


def test_resources_and_scopes_are_shared_by_their_spans() -> None:
    decoded = decode_spans(
        traces_request(pb_span(1), pb_span(2), resource={"service.name": "a"}), LIMITS
    )
    first, second = decoded.items
    assert first.resource is second.resource
    assert first.resource.attributes["service.name"] == "a"
    assert first.instrumentation_scope is second.instrumentation_scope


def _logs_request(
    *records: LogRecord, resource: dict[str, object] | None = None
) -> ExportLogsServiceRequest:
    scope_logs = ScopeLogs(log_records=list(records))
    scope_logs.scope.name = "lib"
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=PbResource(attributes=attributes(resource or {})),
                scope_logs=[scope_logs],
            )
        ]
    )


def test_log_records_become_log_items_with_plain_values() -> None:
    record = LogRecord(
        time_unix_nano=NOW_NS,
        trace_id=TRACE_ID,
        span_id=(3).to_bytes(8, "big"),
        event_name="gen_ai.choice",
        severity_number=9,
        severity_text="INFO",
        body=any_value({"role": "assistant", "parts": [{"content": "hi"}], "raw": b"\x00"}),
        attributes=attributes({"event.name": "other", "n": 1}),
        dropped_attributes_count=2,
    )
    plain = LogRecord(
        observed_time_unix_nano=NOW_NS - 5, attributes=attributes({"event.name": "x"})
    )
    decoded = decode_logs(_logs_request(record, plain, resource={"service.name": "svc"}), LIMITS)
    assert decoded.rejected == 0
    first, second = decoded.items
    assert first.event_name == "gen_ai.choice"  # the field wins over the attribute
    assert first.trace_id == int.from_bytes(TRACE_ID, "big") and first.span_id == 3
    assert first.body == {"role": "assistant", "parts": [{"content": "hi"}], "raw": b"\x00"}
    assert dict(first.attributes) == {"event.name": "other", "n": 1}
    assert (first.severity_number, first.severity_text, first.scope_name) == (9, "INFO", "lib")
    assert first.dropped_attributes == 2 and first.resource_attributes == {"service.name": "svc"}
    assert second.event_name == "x" and second.at_ns == NOW_NS - 5
    assert (second.trace_id, second.span_id, second.body) == (0, 0, None)


@pytest.mark.parametrize(
    "record, reason",
    [
        (LogRecord(), "without time_unix_nano or observed_time_unix_nano"),
        (LogRecord(time_unix_nano=42), "before 2000"),
        (LogRecord(time_unix_nano=NOW_NS, trace_id=b"\x01"), "trace_id not 16 bytes"),
        (LogRecord(time_unix_nano=NOW_NS, span_id=b"\x01"), "span_id not 8 bytes"),
        (LogRecord(time_unix_nano=NOW_NS, body=any_value("x" * 11)), "body longer than 10"),
    ],
)
def test_a_malformed_log_record_is_rejected_with_its_reason(record: LogRecord, reason: str) -> None:
    decoded = decode_logs(_logs_request(record), Limits(max_value_length=10))
    assert decoded.items == []
    [got] = decoded.reasons
    assert reason in got
