"""Parsed OTLP export requests -> OpenTelemetry SDK ``ReadableSpan``s and ``LogItem``s, checked
one span (or log record) at a time.

A malformed span (missing or zero ids, absurd times, end before start, over a limit) is rejected
alone with its reason, for the response's ``partial_success``; the rest of the request goes on.
Resources and scopes are decoded once and shared by their spans. This is the receiver's hot path:
Python's protobuf runtime charges for every field read, so each is read once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from .ingest import LogItem
from .settings import Limits
from .values import Rejected, otel_attributes, plain, plain_attributes, value_size, with_dropped

__all__ = ["EARLIEST_NS", "Decoded", "decode_logs", "decode_spans"]

T = TypeVar("T")

EARLIEST_NS = 946_684_800 * 10**9
"""2000-01-01: a timestamp before it is taken for a missing or broken clock."""

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_KINDS = {
    0: SpanKind.INTERNAL,  # unspecified: the SDK has no such kind
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NO_STATE = TraceState()
_UNSET = Status(StatusCode.UNSET)
_OK = Status(StatusCode.OK)
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


@dataclass
class Decoded(Generic[T]):
    """What a request held: the items that passed, and how many were rejected for what."""

    items: list[T] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def message(self, noun: str) -> str:
        """A ``partial_success`` error message: counts and reasons, never content."""
        if not self.reasons:
            return ""
        parts = "; ".join(f"{n} {reason}" for reason, n in self.reasons.most_common())
        return f"rejected {self.rejected} {noun}: {parts}"


def decode_spans(
    request: ExportTraceServiceRequest, limits: Limits, *, now_ns: int | None = None
) -> Decoded[ReadableSpan]:
    """Every span of ``request`` as a ``ReadableSpan``; malformed ones rejected and counted."""
    latest = (time.time_ns() if now_ns is None else now_ns) + int(limits.max_future_s * 1e9)
    out: Decoded[ReadableSpan] = Decoded()
    for resource_spans in request.resource_spans:
        try:
            attributes, _ = otel_attributes(resource_spans.resource.attributes, limits)
            resource = Resource(attributes, resource_spans.schema_url or None)
        except Rejected as rejected:
            n = sum(len(s.spans) for s in resource_spans.scope_spans)
            out.reasons[f"spans of a resource {rejected.reason}"] += n
            continue
        for scope_spans in resource_spans.scope_spans:
            pb_scope = scope_spans.scope
            try:
                scope_attributes, _ = otel_attributes(pb_scope.attributes, limits)
            except Rejected as rejected:
                out.reasons[f"spans of a scope {rejected.reason}"] += len(scope_spans.spans)
                continue
            scope = InstrumentationScope(
                pb_scope.name,
                pb_scope.version or None,
                scope_spans.schema_url or None,
                scope_attributes,
            )
            for pb in scope_spans.spans:
                try:
                    out.items.append(_span(pb, resource, scope, limits, latest))
                except Rejected as rejected:
                    out.reasons[f"spans {rejected.reason}"] += 1
    return out


def _check_time(ns: int, what: str, latest: int) -> None:
    if ns == 0:
        raise Rejected(f"without {what}")
    if not EARLIEST_NS <= ns <= latest:
        raise Rejected(f"with {what} before 2000 or too far in the future")


def _trace_state(header: str) -> TraceState:
    if not header:
        return _NO_STATE
    state = TraceState.from_header([header])
    if not state:
        raise Rejected("with an invalid W3C trace_state")
    return state


def _span(
    pb: PbSpan, resource: Resource, scope: InstrumentationScope, limits: Limits, latest: int
) -> ReadableSpan:
    trace_id = pb.trace_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        raise Rejected("with trace_id missing, zero or not 16 bytes")
    span_id = pb.span_id
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        raise Rejected("with span_id missing, zero or not 8 bytes")
    start, end = pb.start_time_unix_nano, pb.end_time_unix_nano
    if not EARLIEST_NS <= start <= end <= latest:
        _check_time(start, "start_time_unix_nano", latest)
        _check_time(end, "end_time_unix_nano", latest)
    if end < start:
        raise Rejected("with end_time_unix_nano before start_time_unix_nano")
    kind = _KINDS.get(pb.kind)
    if kind is None:
        raise Rejected("with an unknown kind")
    status = pb.status
    code = _STATUS.get(status.code)
    if code is None:
        raise Rejected("with an unknown status code")
    tid = int.from_bytes(trace_id, "big")
    flags = pb.flags
    context = SpanContext(
        tid,
        int.from_bytes(span_id, "big"),
        is_remote=False,
        # it reached an exporter, so it was sampled (most SDKs leave these flag bits 0)
        trace_flags=_SAMPLED if (flags & 0xFF) in (0, 1) else TraceFlags((flags & 0xFF) | 1),
        trace_state=_trace_state(pb.trace_state),
    )
    parent = None
    parent_id = pb.parent_span_id
    if parent_id and parent_id != _ZERO_SPAN:
        if len(parent_id) != 8:
            raise Rejected("with a parent_span_id not 8 bytes")
        parent = SpanContext(
            tid,
            int.from_bytes(parent_id, "big"),
            is_remote=bool(flags & _HAS_IS_REMOTE and flags & _IS_REMOTE),
            trace_flags=_SAMPLED,
        )
    attributes, dropped = otel_attributes(pb.attributes, limits)
    dropped += pb.dropped_attributes_count
    events: list[Event] = []
    for pb_event in pb.events:
        at = pb_event.time_unix_nano
        if not EARLIEST_NS <= at <= latest:
            _check_time(at, "an event time_unix_nano", latest)
        event_attributes, event_dropped = otel_attributes(pb_event.attributes, limits)
        event_dropped += pb_event.dropped_attributes_count
        if event_dropped:
            event_attributes = with_dropped(event_attributes, event_dropped)
        events.append(Event(pb_event.name, event_attributes, at))
    links = [_link(pb_link, limits) for pb_link in pb.links] if pb.links else []
    return ReadableSpan(
        name=pb.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=with_dropped(attributes, dropped) if dropped else attributes,
        events=_dropped_list(events, pb.dropped_events_count),
        links=_dropped_list(links, pb.dropped_links_count),
        kind=kind,
        status=_UNSET if code is StatusCode.UNSET else _status(code, status.message),
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )


def _status(code: StatusCode, message: str) -> Status:
    if code is StatusCode.UNSET:
        return _UNSET
    if code is StatusCode.OK:
        return _OK
    return Status(code, message or None)


def _link(pb: PbSpan.Link, limits: Limits) -> Link:
    if len(pb.trace_id) != 16 or pb.trace_id == _ZERO_TRACE:
        raise Rejected("with a link whose trace_id is missing, zero or not 16 bytes")
    if len(pb.span_id) != 8 or pb.span_id == _ZERO_SPAN:
        raise Rejected("with a link whose span_id is missing, zero or not 8 bytes")
    attributes, empty = otel_attributes(pb.attributes, limits)
    context = SpanContext(
        int.from_bytes(pb.trace_id, "big"),
        int.from_bytes(pb.span_id, "big"),
        is_remote=bool(pb.flags & _HAS_IS_REMOTE and pb.flags & _IS_REMOTE),
        trace_flags=TraceFlags(pb.flags & 0xFF),
        trace_state=_trace_state(pb.trace_state),
    )
    return Link(context, with_dropped(attributes, pb.dropped_attributes_count + empty))


def _dropped_list(items: list[T], dropped: int) -> Sequence[T]:
    if not dropped:
        return items
    bounded: BoundedList[T] = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


def decode_logs(
    request: ExportLogsServiceRequest, limits: Limits, *, now_ns: int | None = None
) -> Decoded[LogItem]:
    """Every log record of ``request`` as a ``LogItem``; malformed ones rejected and counted."""
    latest = (time.time_ns() if now_ns is None else now_ns) + int(limits.max_future_s * 1e9)
    out: Decoded[LogItem] = Decoded()
    for resource_logs in request.resource_logs:
        try:
            resource = MappingProxyType(plain_attributes(resource_logs.resource.attributes, limits))
        except Rejected as rejected:
            n = sum(len(s.log_records) for s in resource_logs.scope_logs)
            out.reasons[f"log records of a resource {rejected.reason}"] += n
            continue
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            for record in scope_logs.log_records:
                try:
                    trace_id = _optional_id(record.trace_id, 16, "trace_id")
                    span_id = _optional_id(record.span_id, 8, "span_id")
                    at_ns = record.time_unix_nano or record.observed_time_unix_nano
                    _check_time(at_ns, "time_unix_nano or observed_time_unix_nano", latest)
                    attributes = plain_attributes(record.attributes, limits)
                    body = None
                    if record.HasField("body"):
                        if value_size(record.body) > limits.max_value_length:
                            raise Rejected(f"with a body longer than {limits.max_value_length}")
                        body = plain(record.body)
                except Rejected as rejected:
                    out.reasons[f"log records {rejected.reason}"] += 1
                    continue
                name = record.event_name or attributes.get("event.name", "")
                out.items.append(
                    LogItem(
                        trace_id=trace_id,
                        span_id=span_id,
                        event_name=name if isinstance(name, str) else "",
                        attributes=attributes,
                        body=body,
                        at_ns=at_ns,
                        resource_attributes=resource,
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        scope_name=scope.name,
                        scope_version=scope.version,
                        dropped_attributes=record.dropped_attributes_count,
                    )
                )
    return out


def _optional_id(raw: bytes, length: int, what: str) -> int:
    if not raw:
        return 0
    if len(raw) != length:
        raise Rejected(f"with a {what} not {length} bytes")
    return int.from_bytes(raw, "big")
