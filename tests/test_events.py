"""Agent event models: typed core events, open-ended generic events, strict validation."""

from __future__ import annotations

import json
import re

import pytest
from event_samples import CORE_EVENTS, ONE_OF_EACH, VARIANTS
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from runtrace import events
from runtrace.events import (
    AgentEnd,
    AgentStart,
    GenericEvent,
    ToolEnd,
    VerificationStart,
    core_event_types,
    parse_event,
)

SAMPLES = CORE_EVENTS + VARIANTS


def test_every_core_type_has_a_sample() -> None:
    assert {s["type"] for s in SAMPLES} == core_event_types()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s["type"])
def test_core_event_parses_to_its_own_class_and_round_trips(sample: dict) -> None:
    event = parse_event(sample)
    assert not isinstance(event, GenericEvent)
    assert event.type == sample["type"]
    wire = event.model_dump(mode="json")
    for key, value in sample.items():
        if isinstance(value, dict) and key in ("usage", "verification_summary", "meta"):
            assert {k: wire[key][k] for k in value} == value
        else:
            assert wire[key] == value
    assert parse_event(wire) == event
    assert parse_event(json.dumps(wire)) == event
    assert parse_event(event.model_dump_json().encode()) == event


def test_parse_event_accepts_json_text_bytes_and_models() -> None:
    text = '{"type": "agent_start", "prompt": "p"}'
    from_text = parse_event(text)
    assert isinstance(from_text, AgentStart)
    assert parse_event(text.encode()) == from_text
    assert parse_event(from_text) is from_text


def test_unknown_type_is_kept_verbatim_as_a_generic_event() -> None:
    raw = {
        "type": "budget_threshold_hit",
        "resource": "tokens",
        "consumed": 1.5e3,
        "limit": 2000,
        "nested": {"a": [1, None, "x", {"b": True}]},
        "huge": 2**70,
    }
    event = parse_event(raw)
    assert isinstance(event, GenericEvent)
    assert event.model_dump(mode="json") == raw
    assert json.loads(event.model_dump_json()) == raw
    assert parse_event(event.model_dump_json()) == event


def test_core_event_keeps_fields_it_does_not_know() -> None:
    event = parse_event({"type": "agent_start", "prompt": "p", "model": "opus", "n": 3})
    assert isinstance(event, AgentStart)
    assert event.model_dump(mode="json") == {
        "type": "agent_start",
        "prompt": "p",
        "model": "opus",
        "n": 3,
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "agent_end"}, "text"),
        ({"type": "tool_end", "id": "t", "name": "n", "output": "o"}, "exit_code"),
        (
            {"type": "tool_end", "id": "t", "name": "n", "output": "o", "exit_code": "x"},
            "exit_code",
        ),
        ({"type": "turn_start", "turn": "first"}, "turn"),
        ({"type": "confirmation_timeout", "tool_id": "t", "action_taken": "maybe"}, "action_taken"),
        ({"prompt": "no type"}, "type"),
        ({"type": 7}, "type"),
    ],
)
def test_malformed_event_raises_validation_error_naming_the_field(raw: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_event(raw)
    assert field in {str(loc) for err in info.value.errors() for loc in err["loc"]}


def test_parse_event_rejects_non_event_values_clearly() -> None:
    with pytest.raises(TypeError, match="must be a dict"):
        parse_event(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        parse_event("not json")


def test_events_are_immutable() -> None:
    event = parse_event({"type": "error", "message": "m"})
    with pytest.raises(ValidationError):
        event.message = "changed"  # type: ignore[misc]


def test_events_can_be_built_from_classes_with_their_type_filled_in() -> None:
    assert ToolEnd(id="1", name="n", output="", exit_code=2).type == "tool_end"
    assert AgentEnd(text="t").usage.total_tokens == 0
    assert VerificationStart().model_dump(mode="json") == {
        "type": "verification_start",
        "description": None,
    }
    assert events.ErrorEvent(message="m").type == "error"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    event_type=st.text(min_size=1, max_size=20).filter(lambda t: t not in core_event_types()),
    fields=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != "type"), json_values, max_size=5
    ),
)
def test_any_unknown_event_round_trips_through_json(event_type: str, fields: dict) -> None:
    raw = {"type": event_type, **fields}
    event = parse_event(raw)
    assert isinstance(event, GenericEvent)
    assert event.model_dump(mode="json") == raw
    assert parse_event(event.model_dump_json()).model_dump(mode="json") == raw


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "custom", "ratio": float("inf")},
        {"type": "custom", "nested": {"deep": [1.0, float("nan")]}},
        {"type": "tool_execution_start", "id": "t", "name": "n", "args": {"x": float("-inf")}},
        {
            "type": "context_compacted",
            "session_id": "s",
            "before_messages": 1,
            "after_messages": 1,
            "percent_before": float("nan"),
        },
    ],
)
def test_non_finite_numbers_are_rejected_since_json_cannot_carry_them(raw: dict) -> None:
    with pytest.raises(ValidationError):
        parse_event(raw)


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"type": "custom", "payload": _Opaque()}, "payload"),
        ({"type": "custom", "nested": {"deep": [1, _Opaque()]}}, "nested.deep[1]"),
        ({"type": "tool_execution_start", "id": "t", "name": "n", "args": {"k": {1: 2}}}, "args.k"),
        (
            {
                "type": "tool_end",
                "id": "t",
                "name": "n",
                "output": "",
                "exit_code": 0,
                "metadata": {"when": object()},
            },
            "metadata.when",
        ),
    ],
)
def test_values_json_cannot_carry_are_refused_naming_where(raw: dict, where: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(where)):
        parse_event(raw)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"type": "text_delta", "text": "\udcff x"}, "text"),
        ({"type": "custom", "nested": {"deep": ["ok", "a\ud800"]}}, "nested.deep[1]"),
        ({"type": "custom", "labels": {"k\udcff": 1}}, "labels (a key)"),
        ({"type": "agent_end", "text": "t", "meta": {"provider": "\udc80"}}, "meta.provider"),
        ({"type": "custom\udcff"}, "type"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_where(raw: dict, where: str) -> None:
    """UTF-8 cannot encode a lone surrogate: the database and OTLP would lose the event later."""
    with pytest.raises(ValidationError, match=re.escape(where) + " holds a lone surrogate"):
        parse_event(raw)


def test_text_beyond_ascii_is_kept_whole() -> None:
    text = "ünïcødé ✓ 🦆 \u0000 \U0010ffff"
    assert parse_event({"type": "text_delta", "text": text}).text == text  # type: ignore[attr-defined]
    assert parse_event({"type": "custom", "k": [text], text: 1}).model_extra == {
        "k": [text],
        text: 1,
    }


def test_integers_too_long_for_decimal_text_are_refused_and_long_ones_kept() -> None:
    kept = parse_event(
        {"type": "tool_end", "id": "t", "name": "n", "output": "", "exit_code": 2**70}
    )
    assert kept.exit_code == 2**70  # type: ignore[attr-defined]
    assert parse_event({"type": "custom", "n": 10**4000}).n == 10**4000  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match=r"deep\[0\] is an integer of \d+ bits"):
        parse_event({"type": "custom", "deep": [10**5000]})


@pytest.mark.parametrize(
    "raw",
    [
        *ONE_OF_EACH,
        *VARIANTS,
        {"type": "tool_start", "id": "t", "name": "n", "extra_field": {"k": [1.5, None]}},
        {"type": "custom", "when": 1.25, "ok": True, "none": None, "deep": {"a": [1, "b"]}},
    ],
    ids=lambda raw: raw["type"],
)
def test_a_dict_is_validated_exactly_as_its_class_validates_it(raw: dict) -> None:
    cls = events.event_class(raw["type"]) or GenericEvent
    expected = cls.model_validate(raw)
    got = parse_event(raw)
    assert type(got) is cls
    assert got.__dict__ == expected.__dict__
    assert got.model_extra == expected.model_extra
    assert got.model_fields_set == expected.model_fields_set
    assert got.model_dump_json() == expected.model_dump_json()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "custom", "n": float("inf")}, "n is inf, which JSON cannot represent"),
        ({"type": "custom", "a": {"b": [float("nan")]}}, "a.b[0] is nan, which JSON cannot"),
        ({"type": "custom", "big": 10**5000}, "big is an integer of 16610 bits"),
        ({"type": "custom", "t": "x\udcff"}, "t holds a lone surrogate"),
    ],
)
def test_a_generic_event_names_the_extra_field_it_refuses(raw: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        parse_event(raw)


def test_a_type_that_is_not_a_string_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="type"):
        parse_event({"type": ["agent_start"], "prompt": "p"})


def _nested(depth: int, kind: str) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_nesting_deeper_than_the_limit_is_refused_naming_the_field(kind: str) -> None:
    # pydantic-core refuses to serialise past 255 levels: the DuckDB sink would lose the event.
    parse_event({"type": "custom", "x": _nested(100, kind)})
    for depth in (101, 5_000):  # far past Python's recursion limit too
        with pytest.raises(ValidationError, match=r"x(\.a|\[0\])+ is nested more than 100"):
            parse_event({"type": "custom", "x": _nested(depth, kind)})
    with pytest.raises(ValidationError, match=r"args(\.a)+ is nested more than 100"):
        parse_event(
            {
                "type": "tool_end",
                "id": "1",
                "name": "n",
                "exit_code": 0,
                "output": "",
                "args": _nested(150, "dict"),
            }
        )
