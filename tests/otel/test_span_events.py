"""Events <-> span-event attributes (runtrace.otel.span_events): GenAI names, content left off
without capture, truncation, JSON for what is not flat, and the way back."""

from __future__ import annotations

from typing import Any

import pytest
from event_samples import ONE_OF_EACH
from hypothesis import given, settings
from hypothesis import strategies as st
from otel.helpers import Setup

from runtrace import SpanSettings
from runtrace.events import (
    AgentEnd,
    BaseEvent,
    LlmResponseMeta,
    TokenUsage,
    VerificationSummary,
    parse_event,
)
from runtrace.otel import event_attributes, event_from_attributes
from runtrace.otel.semconv import EVENT_JSON, EVENT_OMITTED, EVENT_SEQUENCE, EVENT_TRUNCATED

CAPTURE = SpanSettings(capture_content=True)
NO_CAPTURE = SpanSettings(capture_content=False)


@pytest.mark.parametrize("raw", ONE_OF_EACH, ids=lambda raw: raw["type"])
def test_every_event_survives_the_round_trip_with_capture_on(raw: dict[str, Any]) -> None:
    event = parse_event(raw)
    attrs = event_attributes(event, CAPTURE, sequence=3)
    assert attrs[EVENT_SEQUENCE] == 3
    assert event_from_attributes(event.type, attrs) == event


@pytest.mark.parametrize("raw", ONE_OF_EACH, ids=lambda raw: raw["type"])
def test_without_capture_every_event_still_parses_back(raw: dict[str, Any]) -> None:
    event = parse_event(raw)
    back = event_from_attributes(event.type, event_attributes(event, NO_CAPTURE))
    assert back.type == event.type
    for name in ("id", "name", "tool_id", "turn", "exit_code", "task_id", "message"):
        assert getattr(back, name, None) == getattr(event, name, None)


def test_attribute_values_are_valid_opentelemetry_values() -> None:
    scalar = (str, bool, int, float)
    for raw in ONE_OF_EACH:
        for value in event_attributes(parse_event(raw), CAPTURE).values():
            if isinstance(value, tuple):
                assert len({type(v) for v in value}) <= 1
                assert all(isinstance(v, scalar) for v in value)
            else:
                assert isinstance(value, scalar)


def test_tool_events_use_genai_names() -> None:
    event = parse_event(ONE_OF_EACH[11])  # tool_end
    attrs = event_attributes(event, CAPTURE)
    assert attrs["gen_ai.tool.call.id"] == "t1"
    assert attrs["gen_ai.tool.name"] == "bash"
    assert attrs["error.type"] == "timeout"
    assert attrs["gen_ai.tool.call.arguments"] == '{"cmd":"ls"}'
    assert attrs["gen_ai.tool.call.result"] == "file"
    assert attrs["runtrace.event.exit_code"] == 1
    assert set(attrs[EVENT_JSON]) == {"gen_ai.tool.call.arguments", "runtrace.event.metadata"}


def test_usage_and_model_meta_use_genai_names() -> None:
    attrs = event_attributes(parse_event(ONE_OF_EACH[1]), NO_CAPTURE)
    assert attrs["gen_ai.usage.input_tokens"] == 10
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2
    assert attrs["runtrace.event.usage.total_tokens"] == 15
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "m"
    assert attrs["runtrace.event.verification_summary.failed_subjects"] == ("a", "b")


def test_error_event_message_is_error_message_not_content() -> None:
    attrs = event_attributes(parse_event({"type": "error", "message": "boom"}), NO_CAPTURE)
    assert attrs == {"error.message": "boom"}


def test_content_is_omitted_by_default_and_listed() -> None:
    event = parse_event(ONE_OF_EACH[11])  # tool_end with args, output, metadata
    attrs = event_attributes(event, NO_CAPTURE)
    assert set(attrs[EVENT_OMITTED]) == {"args", "output", "metadata"}
    assert "gen_ai.tool.call.arguments" not in attrs
    assert "gen_ai.tool.call.result" not in attrs
    back = event_from_attributes("tool_end", attrs)
    assert back.output == ""  # type: ignore[attr-defined]
    assert back.args is None  # type: ignore[attr-defined]


def test_a_numbered_event_lists_only_content_its_type_may_lack() -> None:
    tool_end = parse_event(ONE_OF_EACH[11])  # args, output, metadata
    attrs = event_attributes(tool_end, NO_CAPTURE, sequence=4)
    assert set(attrs[EVENT_OMITTED]) == {"args", "metadata"}  # output is required: implied
    assert "gen_ai.tool.call.result" not in attrs
    back = event_from_attributes("tool_end", attrs)
    assert (back.output, back.args, back.id) == ("", None, "t1")  # type: ignore[attr-defined]
    delta = event_attributes(
        parse_event({"type": "text_delta", "text": "secret"}), NO_CAPTURE, sequence=5
    )
    assert delta == {EVENT_SEQUENCE: 5}  # as few attributes as a bare span event would carry
    assert event_from_attributes("text_delta", delta) == parse_event(
        {"type": "text_delta", "text": ""}
    )


def test_a_plain_event_missing_required_text_is_not_taken_for_one_left_off() -> None:
    with pytest.raises(ValueError):
        event_from_attributes("text_delta", {"runtrace.event.note": "no text"})


def test_unknown_event_types_keep_content_off_spans_without_capture() -> None:
    raw = {
        "type": "user_message",
        "content": "secret",
        "messages": [{"role": "user", "content": "more secret"}],
        "note": "free text is content too",
        "message_id": "m-1",
        "callId": "c-1",
        "model_name": "m",
        "status": "ok",
        "kind": "chat",
        "source_type": "cli",
        "tokens": 12,
        "score": 0.5,
        "final": True,
        "tags": ["a"],
        "user_id": "u" * 200,  # named like an identifier, but too long to be one
    }
    event = parse_event(raw)
    attrs = event_attributes(event, NO_CAPTURE, sequence=0)
    assert set(attrs[EVENT_OMITTED]) == {"content", "messages", "note", "tags", "user_id"}
    assert {k: v for k, v in attrs.items() if k.startswith("runtrace.event.")} == {
        "runtrace.event.message_id": "m-1",
        "runtrace.event.callId": "c-1",
        "runtrace.event.model_name": "m",
        "runtrace.event.status": "ok",
        "runtrace.event.kind": "chat",
        "runtrace.event.source_type": "cli",
        "runtrace.event.tokens": 12,
        "runtrace.event.score": 0.5,
        "runtrace.event.final": True,
    }
    assert not any("secret" in str(value) for value in attrs.values())
    back = event_from_attributes("user_message", attrs)
    assert back.type == "user_message" and back.message_id == "m-1"  # type: ignore[attr-defined]
    # With capture on, everything goes on the span and comes back.
    assert event_from_attributes("user_message", event_attributes(event, CAPTURE)) == event


@pytest.mark.parametrize("name", ["content", "messages", "input", "response", "query", "question"])
def test_more_content_names_are_left_off_core_events(name: str) -> None:
    event = parse_event({"type": "agent_start", "prompt": "p", name: "secret"})
    attrs = event_attributes(event, NO_CAPTURE)
    assert set(attrs[EVENT_OMITTED]) == {"prompt", name}
    assert "secret" not in str(attrs)


def test_long_strings_are_truncated_with_a_marker_and_listed() -> None:
    settings = SpanSettings(capture_content=True, max_value_length=50)
    event = parse_event({"type": "text_delta", "text": "y" * 1000, "tags": ["z" * 80]})
    attrs = event_attributes(event, settings)
    text = attrs["runtrace.event.text"]
    assert isinstance(text, str) and len(text) == 50
    assert text.endswith("...[runtrace: truncated, 1000 chars]")
    assert set(attrs[EVENT_TRUNCATED]) == {"runtrace.event.text", "runtrace.event.tags"}
    assert event.text == "y" * 1000  # type: ignore[attr-defined]  # the event itself is whole
    back = event_from_attributes("text_delta", attrs)
    assert back.tags == attrs["runtrace.event.tags"]  # type: ignore[attr-defined]  # not decoded


def test_plain_field_names_are_accepted_in_reverse() -> None:
    event = event_from_attributes("tool_start", {"id": "t1", "name": "bash"})
    assert event == parse_event({"type": "tool_start", "id": "t1", "name": "bash"})


def test_reverse_of_a_bad_core_event_raises() -> None:
    with pytest.raises(ValueError):
        event_from_attributes("tool_start", {"gen_ai.tool.name": "bash"})


def test_model_objects_are_flattened_like_their_dicts() -> None:
    event: BaseEvent = AgentEnd(
        text="t",
        usage=TokenUsage(prompt_tokens=1),
        verification_summary=VerificationSummary(),
        meta=LlmResponseMeta(response_id="r"),
    )
    from_dict = parse_event(event.model_dump())
    assert event_attributes(event, CAPTURE) == event_attributes(from_dict, CAPTURE)


def test_undeclared_fields_of_core_events_keep_content_off_spans_without_capture() -> None:
    event = parse_event(
        {"type": "turn_start", "turn": 2, "system_prompt": "secret", "model_id": "m-1", "n": 3}
    )
    attrs = event_attributes(event, NO_CAPTURE, sequence=0)
    assert set(attrs[EVENT_OMITTED]) == {"system_prompt"}
    assert "secret" not in str(attrs)
    assert attrs["runtrace.event.model_id"] == "m-1" and attrs["runtrace.event.n"] == 3
    captured = event_attributes(event, SpanSettings(capture_content=True), sequence=0)
    assert event_from_attributes("turn_start", captured) == event


def test_content_of_unknown_event_types_stays_off_the_span(env: Setup) -> None:
    event = {"type": "user_message", "content": "secret", "messages": ["x"], "message_id": "m1"}
    with env.rt.start_run("s") as run:
        run.record(event)
    (span_event,) = env.run_span(run.id).events
    assert span_event.name == "user_message"
    assert "runtrace.event.content" not in span_event.attributes
    assert span_event.attributes["runtrace.event.message_id"] == "m1"
    assert set(span_event.attributes["runtrace.record.omitted"]) == {"content", "messages"}
    assert run.events()[0].event.content == "secret"  # type: ignore[attr-defined]  # store: whole


# --- property: any text and any generic JSON survive the round trip ----------------------------


_names = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda n: n != "type")


_json_leaf = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=20)


_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    event_type=st.from_regex(r"custom_[a-z]{1,8}", fullmatch=True),
    fields=st.dictionaries(_names, _json.filter(lambda v: v is not None), max_size=6),
)
def test_generic_events_survive_the_round_trip(event_type: str, fields: dict[str, Any]) -> None:
    event = parse_event({"type": event_type, **fields})
    back = event_from_attributes(event_type, event_attributes(event, CAPTURE))
    assert back.model_dump() == event.model_dump()


@settings(max_examples=100, deadline=None)
@given(prompt=st.text(max_size=300), output=st.text(max_size=300), exit_code=st.integers(-5, 300))
def test_core_content_survives_the_round_trip(prompt: str, output: str, exit_code: int) -> None:
    for event in (
        parse_event({"type": "agent_start", "prompt": prompt}),
        parse_event(
            {"type": "tool_end", "id": "t", "name": "n", "output": output, "exit_code": exit_code}
        ),
    ):
        assert event_from_attributes(event.type, event_attributes(event, CAPTURE)) == event
