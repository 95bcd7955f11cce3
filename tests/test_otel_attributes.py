"""Events <-> span-event attributes, run status mapping, child-span planning: the pure functions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import StatusCode

from runtrace.events import (
    AgentEnd,
    BaseEvent,
    LlmResponseMeta,
    TokenUsage,
    VerificationSummary,
    parse_event,
)
from runtrace.otel.attributes import (
    EVENT_JSON,
    EVENT_OMITTED,
    EVENT_SEQUENCE,
    EVENT_TRUNCATED,
    SpanSettings,
    content_capture_from_env,
    event_attributes,
    event_from_attributes,
    is_run_span,
    plan_child_spans,
    run_end_attributes,
    run_start_attributes,
    run_status,
    truncate,
)
from runtrace.runs import RunSnapshot, RunStatus, event_record

CAPTURE = SpanSettings(capture_content=True)
NO_CAPTURE = SpanSettings(capture_content=False)

ONE_OF_EACH: list[dict[str, Any]] = [
    {"type": "agent_start", "prompt": "fix the tests"},
    {
        "type": "agent_end",
        "text": "done",
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cache_read_tokens": 2,
        },
        "verification_summary": {"status": "failed", "failed_subjects": ["a", "b"]},
        "meta": {"provider": "openai", "request_model": "m", "duration_ms": 12},
    },
    {"type": "error", "message": "model unavailable"},
    {"type": "turn_start", "turn": 1},
    {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    {"type": "text_delta", "text": "hel"},
    {"type": "reasoning_delta", "text": "think"},
    {"type": "tool_start", "id": "t1", "name": "bash"},
    {"type": "tool_input_delta", "id": "t1", "delta": '{"cmd'},
    {"type": "tool_execution_start", "id": "t1", "name": "bash", "args": {"cmd": ["ls", "-l"]}},
    {"type": "tool_output_delta", "id": "t1", "name": "bash", "delta": "file\n"},
    {
        "type": "tool_end",
        "id": "t1",
        "name": "bash",
        "args": {"cmd": "ls"},
        "output": "file",
        "exit_code": 1,
        "metadata": {"cwd": "/tmp", "n": [1, 2]},
        "error_kind": "timeout",
    },
    {"type": "planning_start", "prompt": "plan it"},
    {"type": "planning_end", "plan": [{"step": 1}, {"step": 2}], "estimated_steps": 2},
    {"type": "step_start", "step_id": "s1", "description": "d", "step_number": 1, "total_steps": 2},
    {"type": "step_end", "step_id": "s1", "status": "ok", "step_number": 1, "total_steps": 2},
    {"type": "verification_start", "description": "run the suite"},
    {
        "type": "subagent_start",
        "task_id": "k",
        "session_id": "sub",
        "parent_session_id": "main",
        "agent": "reviewer",
        "description": "review",
        "started_ms": 5,
    },
    {"type": "subagent_progress", "task_id": "k", "session_id": "sub", "status": "50%"},
    {
        "type": "subagent_end",
        "task_id": "k",
        "session_id": "sub",
        "agent": "reviewer",
        "output": "lgtm",
        "success": True,
    },
    {
        "type": "confirmation_required",
        "tool_id": "t2",
        "tool_name": "rm",
        "args": {"path": "/"},
        "timeout_ms": 1000,
    },
    {"type": "confirmation_received", "tool_id": "t2", "approved": False, "reason": "no"},
    {"type": "confirmation_timeout", "tool_id": "t2", "action_taken": "rejected"},
    {"type": "permission_denied", "tool_id": "t2", "tool_name": "rm", "args": None, "reason": "x"},
    {
        "type": "context_compacted",
        "session_id": "main",
        "before_messages": 40,
        "after_messages": 8,
        "percent_before": 91.5,
        "summary": "we fixed things",
    },
    {"type": "budget_threshold_hit", "resource": "tokens", "consumed": 9.5, "limit": 10.0},
    {"type": "task_updated", "session_id": "main", "tasks": [{"id": 1, "done": False}]},
    {"type": "memory_recalled", "ids": ["m1", "m2"], "counts": [], "extra": {"deep": {"x": 1}}},
]


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


def test_truncate_leaves_short_values_alone() -> None:
    assert truncate("short", 100) == "short"
    assert len(truncate("x" * 101, 100)) == 100


def test_plain_field_names_are_accepted_in_reverse() -> None:
    event = event_from_attributes("tool_start", {"id": "t1", "name": "bash"})
    assert event == parse_event({"type": "tool_start", "id": "t1", "name": "bash"})


def test_reverse_of_a_bad_core_event_raises() -> None:
    with pytest.raises(ValueError):
        event_from_attributes("tool_start", {"gen_ai.tool.name": "bash"})


def test_capture_env_var_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("false", False),
        ("", False),
    ]:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
        assert content_capture_from_env() is expected
        assert SpanSettings().capture_content is expected


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        SpanSettings(max_value_length=3)
    with pytest.raises(ValueError):
        SpanSettings(cancelled_status="maybe")  # type: ignore[arg-type]


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


# --- runs ---------------------------------------------------------------------------------------


def snapshot(status: RunStatus, **changes: Any) -> RunSnapshot:
    return RunSnapshot(
        id="run-1", session_id="s", status=status, created_at_ms=1, updated_at_ms=2, **changes
    )


def test_completed_run_status_is_ok() -> None:
    status, attrs = run_status(snapshot(RunStatus.COMPLETED))
    assert status.status_code is StatusCode.OK
    assert attrs == {"runtrace.run.status": "completed"}


def test_failed_run_status_is_error_with_message() -> None:
    status, attrs = run_status(snapshot(RunStatus.FAILED, error="boom"), error_type="ValueError")
    assert (status.status_code, status.description) == (StatusCode.ERROR, "boom")
    assert attrs == {"runtrace.run.status": "failed", "error.type": "ValueError"}


def test_cancelled_run_status_says_cancelled_with_reason() -> None:
    status, attrs = run_status(snapshot(RunStatus.CANCELLED, error="user stop"))
    assert (status.status_code, status.description) == (StatusCode.ERROR, "cancelled: user stop")
    assert attrs == {"runtrace.run.status": "cancelled", "error.type": "cancelled"}
    unset, attrs = run_status(snapshot(RunStatus.CANCELLED), SpanSettings(cancelled_status="unset"))
    assert unset.status_code is StatusCode.UNSET
    assert attrs["error.type"] == "cancelled"


def test_open_run_status_is_unset() -> None:
    status, attrs = run_status(snapshot(RunStatus.EXECUTING))
    assert status.status_code is StatusCode.UNSET
    assert attrs == {"runtrace.run.status": "executing"}


def test_run_start_and_end_attributes() -> None:
    start = run_start_attributes(
        run_id="run-1", session_id="s", agent_name="a", prompt="p", settings=NO_CAPTURE,
        extra={"x": 1, "skip": None},
    )  # fmt: skip
    assert start == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.conversation.id": "s",
        "runtrace.run.id": "run-1",
        "runtrace.span.kind": "run",
        "gen_ai.agent.name": "a",
        "x": 1,
    }
    assert is_run_span(start)
    assert not is_run_span({**start, "runtrace.span.kind": "subagent"})
    assert is_run_span({"gen_ai.operation.name": "invoke_agent"})
    assert not is_run_span({"gen_ai.operation.name": "chat"})
    end = run_end_attributes(
        snapshot(RunStatus.COMPLETED, event_count=9, input_tokens=3, output_tokens=4,
                 result_text="r"),
        CAPTURE,
        span_dropped_events=2,
    )  # fmt: skip
    assert end == {
        "runtrace.run.event_count": 9,
        "gen_ai.usage.input_tokens": 3,
        "gen_ai.usage.output_tokens": 4,
        "runtrace.run.span_dropped_events": 2,
        "runtrace.run.result": "r",
    }


def test_plan_child_spans_pairs_tools_and_subagents_for_replay() -> None:
    raw = [
        (100, {"type": "tool_start", "id": "a", "name": "bash"}),
        (110, {"type": "tool_execution_start", "id": "a", "name": "bash", "args": {}}),
        (120, {"type": "tool_execution_start", "id": "b", "name": "grep"}),
        (150, {"type": "tool_end", "id": "a", "name": "bash", "output": "", "exit_code": 0}),
        (
            160,
            {
                "type": "subagent_start",
                "task_id": "k",
                "session_id": "sub",
                "parent_session_id": "s",
                "agent": "rev",
                "description": "",
            },
        ),
        (
            170,
            {
                "type": "subagent_end",
                "task_id": "k",
                "session_id": "sub",
                "agent": "rev",
                "output": "",
                "success": False,
                "finished_ms": 175,
            },
        ),
    ]
    records = [event_record(i, at, parse_event(e)) for i, (at, e) in enumerate(raw)]
    spans = plan_child_spans(records, "run-1", run_end_ms=200)
    assert [(s.name, s.start_ms, s.end_ms, s.finished) for s in spans] == [
        ("execute_tool bash", 100, 150, True),
        ("execute_tool grep", 120, 200, False),
        ("invoke_agent rev", 160, 175, True),
    ]
    assert spans[0].status.status_code is StatusCode.OK
    assert spans[1].status.status_code is StatusCode.UNSET
    assert spans[2].status.status_code is StatusCode.ERROR
    assert spans[2].attributes["runtrace.span.kind"] == "subagent"
    assert all(s.attributes["runtrace.run.id"] == "run-1" for s in spans)


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
