"""OTLP export request bodies -> protobuf messages: the wire format, or OTLP/JSON.

OTLP/JSON is protobuf's JSON mapping with one exception: trace and span ids are hex, where the
mapping writes bytes in base64. The ids are rewritten before ``json_format`` reads the document;
everything else (lowerCamelCase keys, int64 as strings, enums as integers, unknown fields) is
``json_format``'s.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..errors import RuntraceError

__all__ = ["RequestDecodeError", "parse_logs", "parse_traces"]


class RequestDecodeError(RuntraceError, ValueError):
    """The request body is not an OTLP export request of the kind its endpoint takes."""


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
