"""OTLP export requests (protobuf, or OTLP/JSON) -> OpenTelemetry SDK ``ReadableSpan``s and
``LogItem``s, checked one span at a time.

A malformed span (missing or zero ids, absurd times, end before start, over a limit) is rejected
alone with its reason, for the response's ``partial_success``; the rest of the request goes on.
Values OpenTelemetry attributes cannot hold (maps, byte strings, mixed or nested arrays) become
JSON strings, losslessly: a map is a JSON object, an array a JSON array, bytes
``{"bytesValue": "<base64>"}`` and a non-finite double ``{"doubleValue": "NaN"}`` (or
``"Infinity"``, ``"-Infinity"``), as OTLP/JSON spells them.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import AttributeValue

from ..errors import RuntraceError
from .ingest import LogItem
from .settings import Limits

__all__ = [
    "Decoded",
    "RequestDecodeError",
    "decode_logs",
    "decode_spans",
    "parse_logs",
    "parse_traces",
]

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
_SIMPLE = frozenset({"string_value", "bool_value", "int_value", "double_value"})
_SCALARS = frozenset({"int_value", "bool_value", "double_value"})
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NO_STATE = TraceState()
_UNSET = Status(StatusCode.UNSET)
_OK = Status(StatusCode.OK)
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


class RequestDecodeError(RuntraceError, ValueError):
    """The request body is not an OTLP export request of the kind its endpoint takes."""


class _Rejected(Exception):
    """One span or log record is malformed; ``reason`` says why, without its content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


# -- parsing ---------------------------------------------------------------------------------


def parse_traces(body: bytes, *, as_json: bool) -> ExportTraceServiceRequest:
    """Parse an ``ExportTraceServiceRequest`` from protobuf bytes or OTLP/JSON."""
    request = ExportTraceServiceRequest()
    if as_json:
        document = _json_document(body)
        for resource in _list(document, "resourceSpans", "resource_spans"):
            for scope in _list(resource, "scopeSpans", "scope_spans"):
                for span in _list(scope, "spans"):
                    _hex_ids(span, ("traceId", "trace_id", "spanId", "span_id"))
                    _hex_ids(span, ("parentSpanId", "parent_span_id"))
                    for link in _list(span, "links"):
                        _hex_ids(link, ("traceId", "trace_id", "spanId", "span_id"))
        return _parse_dict(document, request)
    return _parse_binary(body, request)


def parse_logs(body: bytes, *, as_json: bool) -> ExportLogsServiceRequest:
    """Parse an ``ExportLogsServiceRequest`` from protobuf bytes or OTLP/JSON."""
    request = ExportLogsServiceRequest()
    if as_json:
        document = _json_document(body)
        for resource in _list(document, "resourceLogs", "resource_logs"):
            for scope in _list(resource, "scopeLogs", "scope_logs"):
                for record in _list(scope, "logRecords", "log_records"):
                    _hex_ids(record, ("traceId", "trace_id", "spanId", "span_id"))
        return _parse_dict(document, request)
    return _parse_binary(body, request)


_Message = TypeVar("_Message", ExportTraceServiceRequest, ExportLogsServiceRequest)


def _parse_binary(body: bytes, request: _Message) -> _Message:
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as error:
        raise RequestDecodeError(f"body is not a protobuf {_name(request)}: {error}") from None
    return request


def _parse_dict(document: dict[str, Any], request: _Message) -> _Message:
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as error:
        raise RequestDecodeError(f"body is not an OTLP/JSON {_name(request)}: {error}") from None
    return request


def _name(request: ExportTraceServiceRequest | ExportLogsServiceRequest) -> str:
    return str(request.DESCRIPTOR.name)


def _json_document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise RequestDecodeError(f"body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestDecodeError("body is not a JSON object")
    return document


def _list(parent: Mapping[str, Any], *keys: str) -> Iterable[dict[str, Any]]:
    for key in keys:
        value = parent.get(key)
        if isinstance(value, list):
            yield from (item for item in value if isinstance(item, dict))


def _hex_ids(obj: dict[str, Any], keys: Sequence[str]) -> None:
    """OTLP/JSON writes trace and span ids in hex where protobuf's JSON mapping expects base64:
    rewrite them so ``json_format`` reads the right bytes."""
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RequestDecodeError(f"{key} must be a hex string")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise RequestDecodeError(f"{key} is not hex") from None
        obj[key] = base64.b64encode(raw).decode("ascii")


# -- values ----------------------------------------------------------------------------------


def _size(value: AnyValue) -> int:
    """A value's length for ``Limits.max_value_length``."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return len(value.string_value)
    if kind == "bytes_value":
        return len(value.bytes_value)
    if kind == "array_value":
        return sum(_size(v) + 1 for v in value.array_value.values)
    if kind == "kvlist_value":
        return sum(len(kv.key) + _size(kv.value) + 1 for kv in value.kvlist_value.values)
    return 1


def _plain(value: AnyValue) -> Any:
    """An AnyValue as plain Python: str, bool, int, float, bytes, None, list or dict."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {"doubleValue": text}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _attribute_value(value: AnyValue, limit: int) -> AttributeValue | None:
    """An AnyValue as an OpenTelemetry attribute value; None for an empty value."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if len(text) > limit:
            raise _Rejected(f"with an attribute value longer than {limit}")
        return text
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind is None:
        return None
    if _size(value) > limit:
        raise _Rejected(f"with an attribute value longer than {limit}")
    if kind == "array_value":
        values = value.array_value.values
        kinds = {v.WhichOneof("value") for v in values}
        if len(kinds) <= 1 and kinds <= _SIMPLE:
            return tuple(getattr(v, v.WhichOneof("value") or "string_value") for v in values)
    return json.dumps(_jsonable(_plain(value)), ensure_ascii=False, separators=(",", ":"))


def _attributes(kvs: Sequence[KeyValue], limits: Limits) -> tuple[dict[str, AttributeValue], int]:
    """Attributes as a dict, and how many had an empty value (counted as dropped, as the SDK
    drops a None attribute). The hot path of decoding: strings and ints inline."""
    if len(kvs) > limits.max_attributes:
        raise _Rejected(f"with more than {limits.max_attributes} attributes")
    out: dict[str, AttributeValue] = {}
    empty = 0
    limit = limits.max_value_length
    for kv in kvs:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            if len(text) > limit:
                raise _Rejected(f"with an attribute value longer than {limit}")
            out[kv.key] = text
        elif kind in _SCALARS:
            out[kv.key] = getattr(value, kind)
        else:
            converted = _attribute_value(value, limit)
            if converted is None:
                empty += 1
            else:
                out[kv.key] = converted
    return out, empty


def _plain_attributes(kvs: Sequence[KeyValue], limits: Limits) -> dict[str, Any]:
    if len(kvs) > limits.max_attributes:
        raise _Rejected(f"with more than {limits.max_attributes} attributes")
    out: dict[str, Any] = {}
    for kv in kvs:
        if _size(kv.value) > limits.max_value_length:
            raise _Rejected(f"with an attribute value longer than {limits.max_value_length}")
        out[kv.key] = _plain(kv.value)
    return out


def _bounded(attributes: dict[str, AttributeValue], dropped: int) -> Any:
    """The attributes, carrying the sender's dropped count the way the SDK keeps it."""
    if not dropped:
        return attributes
    bounded = BoundedAttributes(attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded


# -- spans -----------------------------------------------------------------------------------


def decode_spans(
    request: ExportTraceServiceRequest, limits: Limits, *, now_ns: int | None = None
) -> Decoded[ReadableSpan]:
    """Every span of ``request`` as a ``ReadableSpan``; malformed ones rejected and counted."""
    latest = (time.time_ns() if now_ns is None else now_ns) + int(limits.max_future_s * 1e9)
    out: Decoded[ReadableSpan] = Decoded()
    for resource_spans in request.resource_spans:
        try:
            attributes, _ = _attributes(resource_spans.resource.attributes, limits)
            resource = Resource(attributes, resource_spans.schema_url or None)
        except _Rejected as rejected:
            n = sum(len(s.spans) for s in resource_spans.scope_spans)
            out.reasons[f"spans of a resource {rejected.reason}"] += n
            continue
        for scope_spans in resource_spans.scope_spans:
            pb_scope = scope_spans.scope
            try:
                scope_attributes, _ = _attributes(pb_scope.attributes, limits)
            except _Rejected as rejected:
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
                except _Rejected as rejected:
                    out.reasons[f"spans {rejected.reason}"] += 1
    return out


def _check_time(ns: int, what: str, latest: int) -> None:
    if ns == 0:
        raise _Rejected(f"without {what}")
    if not EARLIEST_NS <= ns <= latest:
        raise _Rejected(f"with {what} before 2000 or too far in the future")


def _trace_state(header: str) -> TraceState:
    if not header:
        return _NO_STATE
    state = TraceState.from_header([header])
    if not state:
        raise _Rejected("with an invalid W3C trace_state")
    return state


def _span(
    pb: PbSpan, resource: Resource, scope: InstrumentationScope, limits: Limits, latest: int
) -> ReadableSpan:
    trace_id = pb.trace_id
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        raise _Rejected("with trace_id missing, zero or not 16 bytes")
    span_id = pb.span_id
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        raise _Rejected("with span_id missing, zero or not 8 bytes")
    start, end = pb.start_time_unix_nano, pb.end_time_unix_nano
    if not EARLIEST_NS <= start <= end <= latest:
        _check_time(start, "start_time_unix_nano", latest)
        _check_time(end, "end_time_unix_nano", latest)
    if end < start:
        raise _Rejected("with end_time_unix_nano before start_time_unix_nano")
    kind = _KINDS.get(pb.kind)
    if kind is None:
        raise _Rejected("with an unknown kind")
    status = pb.status
    code = _STATUS.get(status.code)
    if code is None:
        raise _Rejected("with an unknown status code")
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
            raise _Rejected("with a parent_span_id not 8 bytes")
        parent = SpanContext(
            tid,
            int.from_bytes(parent_id, "big"),
            is_remote=bool(flags & _HAS_IS_REMOTE and flags & _IS_REMOTE),
            trace_flags=_SAMPLED,
        )
    attributes, dropped = _attributes(pb.attributes, limits)
    dropped += pb.dropped_attributes_count
    events: list[Event] = []
    for pb_event in pb.events:
        at = pb_event.time_unix_nano
        if not EARLIEST_NS <= at <= latest:
            _check_time(at, "an event time_unix_nano", latest)
        event_attributes, event_dropped = _attributes(pb_event.attributes, limits)
        event_dropped += pb_event.dropped_attributes_count
        if event_dropped:
            event_attributes = _bounded(event_attributes, event_dropped)
        events.append(Event(pb_event.name, event_attributes, at))
    links = [_link(pb_link, limits) for pb_link in pb.links] if pb.links else []
    return ReadableSpan(
        name=pb.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=_bounded(attributes, dropped) if dropped else attributes,
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
        raise _Rejected("with a link whose trace_id is missing, zero or not 16 bytes")
    if len(pb.span_id) != 8 or pb.span_id == _ZERO_SPAN:
        raise _Rejected("with a link whose span_id is missing, zero or not 8 bytes")
    attributes, empty = _attributes(pb.attributes, limits)
    context = SpanContext(
        int.from_bytes(pb.trace_id, "big"),
        int.from_bytes(pb.span_id, "big"),
        is_remote=bool(pb.flags & _HAS_IS_REMOTE and pb.flags & _IS_REMOTE),
        trace_flags=TraceFlags(pb.flags & 0xFF),
        trace_state=_trace_state(pb.trace_state),
    )
    return Link(context, _bounded(attributes, pb.dropped_attributes_count + empty))


def _dropped_list(items: list[T], dropped: int) -> Sequence[T]:
    if not dropped:
        return items
    bounded: BoundedList[T] = BoundedList.from_seq(None, items)
    bounded.dropped = dropped
    return bounded


# -- logs ------------------------------------------------------------------------------------


def decode_logs(
    request: ExportLogsServiceRequest, limits: Limits, *, now_ns: int | None = None
) -> Decoded[LogItem]:
    """Every log record of ``request`` as a ``LogItem``; malformed ones rejected and counted."""
    latest = (time.time_ns() if now_ns is None else now_ns) + int(limits.max_future_s * 1e9)
    out: Decoded[LogItem] = Decoded()
    for resource_logs in request.resource_logs:
        try:
            resource = MappingProxyType(
                _plain_attributes(resource_logs.resource.attributes, limits)
            )
        except _Rejected as rejected:
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
                    attributes = _plain_attributes(record.attributes, limits)
                    body = None
                    if record.HasField("body"):
                        if _size(record.body) > limits.max_value_length:
                            raise _Rejected(f"with a body longer than {limits.max_value_length}")
                        body = _plain(record.body)
                except _Rejected as rejected:
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
        raise _Rejected(f"with a {what} not {length} bytes")
    return int.from_bytes(raw, "big")
