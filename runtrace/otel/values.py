"""What a span attribute can hold, and the one rule for integers that OTLP cannot carry.

OTLP encodes an integer attribute as a signed 64-bit ``int_value``. A larger Python int is
accepted by the SDK but makes the exporter fail to encode it, and the exporter then drops the
whole batch it was in (other runs' spans included). So every attribute runtrace builds (events,
run spans, child spans, replay) passes its integers through :func:`attribute_int`: an integer
outside int64 becomes its decimal digits as a string, losslessly; on span events the key is also
listed in ``runtrace.record.json``, since the digits are JSON for the same integer. The store and
the database keep the integer itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "AttributeValue",
    "attribute_int",
    "fits_int64",
    "span_attributes",
]

AttributeValue = str | bool | int | float | tuple[str, ...] | tuple[int, ...] | tuple[float, ...]
"""What an OpenTelemetry attribute can hold (sequences are homogeneous)."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def fits_int64(value: int) -> bool:
    """Whether OTLP can carry ``value`` as an ``int_value``."""
    return INT64_MIN <= value <= INT64_MAX


def attribute_int(value: int) -> int | str:
    """``value`` itself when it fits int64, else its decimal digits (lossless)."""
    return value if INT64_MIN <= value <= INT64_MAX else str(value)


def _scalar_ok(value: object) -> bool:
    return isinstance(value, (str, bool, float)) or (
        isinstance(value, int) and INT64_MIN <= value <= INT64_MAX
    )


def span_attributes(values: Mapping[str, object]) -> dict[str, AttributeValue]:
    """The attribute values of ``values`` that can go on a span, ready for OTLP.

    ``None`` is left out; an integer beyond int64 becomes its decimal string, and a list or tuple
    holding one becomes a tuple of strings (a sequence must be homogeneous). Other values (dicts,
    objects) are left out: the store keeps them, the span cannot.
    """
    out: dict[str, AttributeValue] = {}
    for key, value in values.items():
        if value is None:
            continue
        if _scalar_ok(value):
            out[key] = value  # type: ignore[assignment]  # str | bool | int | float
        elif isinstance(value, int):
            out[key] = str(value)
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, (str, int, float)) for v in value
        ):
            if all(_scalar_ok(v) for v in value):
                out[key] = tuple(value)
            else:
                out[key] = tuple(str(v) for v in value)
    return out
