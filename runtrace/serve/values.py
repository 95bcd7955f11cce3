"""OTLP values (``AnyValue``) -> OpenTelemetry attribute values or plain Python, within the
limits; and ``Rejected``, which says why a span or log record cannot be taken.

OpenTelemetry attributes hold strings, booleans, integers, doubles and homogeneous arrays of them.
Anything else becomes a JSON string, losslessly: a map is a JSON object, an array a JSON array,
bytes ``{"bytesValue": "<base64>"}`` and a non-finite double ``{"doubleValue": "NaN"}`` (or
``"Infinity"``, ``"-Infinity"``), as OTLP/JSON spells them.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.util.types import AttributeValue

from .settings import Limits

__all__: list[str] = []  # internal to runtrace.serve

_SIMPLE = frozenset({"string_value", "bool_value", "int_value", "double_value"})
_SCALARS = frozenset({"int_value", "bool_value", "double_value"})


class Rejected(Exception):
    """One span or log record is malformed; ``reason`` says why, without its content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def value_size(value: AnyValue) -> int:
    """A value's length for ``Limits.max_value_length``."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return len(value.string_value)
    if kind == "bytes_value":
        return len(value.bytes_value)
    if kind == "array_value":
        return sum(value_size(v) + 1 for v in value.array_value.values)
    if kind == "kvlist_value":
        return sum(len(kv.key) + value_size(kv.value) + 1 for kv in value.kvlist_value.values)
    return 1


def plain(value: AnyValue) -> Any:
    """An AnyValue as plain Python: str, bool, int, float, bytes, None, list or dict."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
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
            raise Rejected(f"with an attribute value longer than {limit}")
        return text
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind is None:
        return None
    if value_size(value) > limit:
        raise Rejected(f"with an attribute value longer than {limit}")
    if kind == "array_value":
        values = value.array_value.values
        kinds = {v.WhichOneof("value") for v in values}
        if len(kinds) <= 1 and kinds <= _SIMPLE:
            return tuple(getattr(v, v.WhichOneof("value") or "string_value") for v in values)
    return json.dumps(_jsonable(plain(value)), ensure_ascii=False, separators=(",", ":"))


def otel_attributes(
    kvs: Sequence[KeyValue], limits: Limits
) -> tuple[dict[str, AttributeValue], int]:
    """Attributes as a dict, and how many had an empty value (counted as dropped, as the SDK
    drops a None attribute). The hot path of decoding: strings and ints inline."""
    if len(kvs) > limits.max_attributes:
        raise Rejected(f"with more than {limits.max_attributes} attributes")
    out: dict[str, AttributeValue] = {}
    empty = 0
    limit = limits.max_value_length
    for kv in kvs:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            if len(text) > limit:
                raise Rejected(f"with an attribute value longer than {limit}")
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


def plain_attributes(kvs: Sequence[KeyValue], limits: Limits) -> dict[str, Any]:
    if len(kvs) > limits.max_attributes:
        raise Rejected(f"with more than {limits.max_attributes} attributes")
    out: dict[str, Any] = {}
    for kv in kvs:
        if value_size(kv.value) > limits.max_value_length:
            raise Rejected(f"with an attribute value longer than {limits.max_value_length}")
        out[kv.key] = plain(kv.value)
    return out


def with_dropped(attributes: dict[str, AttributeValue], dropped: int) -> Any:
    """The attributes, carrying the sender's dropped count the way the SDK keeps it."""
    if not dropped:
        return attributes
    bounded = BoundedAttributes(attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded
