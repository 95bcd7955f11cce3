"""OTLP values -> OpenTelemetry attribute values: scalars and homogeneous arrays as they are,
everything else as lossless JSON; the limits on value length and attribute count."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from serve.helpers import any_value, attributes

from runtrace.serve import Limits
from runtrace.serve.values import Rejected, otel_attributes, plain, plain_attributes

LIMITS = Limits()


def test_every_attribute_kind_becomes_an_otel_value_and_maps_bytes_become_lossless_json() -> None:
    values = {
        "s": "text",
        "b": True,
        "i": -(2**63),
        "d": 0.5,
        "strings": ["a", "b"],
        "ints": [1, 2],
        "empty": [],
        "mixed": [1, "a", None],
        "nested": [[1], [2]],
        "map": {"k": "v", "n": 1, "x": 1.0, "inner": {"b": b"\x00\xff"}},
        "raw": b"\x01\x02",
        "nan": [float("nan"), "NaN"],
    }
    got, empty = otel_attributes(attributes(values), LIMITS)
    assert empty == 0
    assert got["s"] == "text" and got["b"] is True and got["i"] == -(2**63) and got["d"] == 0.5
    assert got["strings"] == ("a", "b") and got["ints"] == (1, 2) and got["empty"] == ()
    assert json.loads(got["mixed"]) == [1, "a", None]
    assert json.loads(got["nested"]) == [[1], [2]]
    assert json.loads(got["map"]) == {
        "k": "v",
        "n": 1,
        "x": 1.0,
        "inner": {"b": {"bytesValue": base64.b64encode(b"\x00\xff").decode()}},
    }
    assert got["map"].count("1.0") == 1  # a double stays a double
    assert json.loads(got["raw"]) == {"bytesValue": "AQI="}
    assert json.loads(got["nan"]) == [{"doubleValue": "NaN"}, "NaN"]


def test_an_empty_value_is_counted_not_kept() -> None:
    got, empty = otel_attributes(attributes({"ok": 1, "none": None}), LIMITS)
    assert got == {"ok": 1} and empty == 1


@pytest.mark.parametrize(
    "value, fits",
    [
        ("x" * 10, True),
        ("x" * 11, False),
        (b"\x00" * 11, False),
        (["x"] * 5, True),  # 5 characters plus one per element
        (["x"] * 6, False),
        ({"k": "x" * 7}, True),  # key, value, one for the pair
        ({"k": "x" * 9}, False),
    ],
)
def test_a_value_over_the_length_limit_is_rejected(value: Any, fits: bool) -> None:
    limits = Limits(max_value_length=10)
    if fits:
        otel_attributes(attributes({"a": value}), limits)
        plain_attributes(attributes({"a": value}), limits)
        return
    for convert in (otel_attributes, plain_attributes):
        with pytest.raises(Rejected, match="attribute value longer than 10"):
            convert(attributes({"a": value}), limits)


def test_more_attributes_than_the_limit_are_rejected() -> None:
    limits = Limits(max_attributes=2)
    for convert in (otel_attributes, plain_attributes):
        with pytest.raises(Rejected, match="more than 2 attributes"):
            convert(attributes({"a": 1, "b": 2, "c": 3}), limits)


def test_plain_values_keep_maps_lists_and_bytes_as_python_has_them() -> None:
    value = {"role": "user", "parts": [{"n": 1, "x": 0.5, "ok": True}], "raw": b"\x01", "no": None}
    assert plain(any_value(value)) == value
