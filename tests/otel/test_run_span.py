"""Run spans (runtrace.otel.run_span): which spans are runs, name and GenAI attributes at start,
token totals and true event count at end, status for each outcome."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.trace import StatusCode
from otel.helpers import Setup

from runtrace import RunSnapshot, RunStatus, SpanSettings
from runtrace.otel import run_status
from runtrace.otel.run_span import is_run_span, run_end_attributes, run_start_attributes

CAPTURE = SpanSettings(capture_content=True)
NO_CAPTURE = SpanSettings(capture_content=False)


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


def test_run_span_is_named_after_the_agent_and_carries_genai_attributes(env: Setup) -> None:
    with env.rt.start_run("sess-1", prompt="fix tests", agent_name="coder", team="core") as run:
        run.record({"type": "agent_start", "prompt": "fix tests"})
        run.record(
            {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 10, "completion_tokens": 3}}
        )
        run.record(
            {"type": "turn_end", "turn": 2, "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
        )
        run.record({"type": "agent_end", "text": "done"})
    span = env.run_span(run.id)
    assert span.name == "invoke_agent coder"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "coder"
    assert attrs["gen_ai.conversation.id"] == "sess-1"
    assert attrs["team"] == "core"
    assert attrs["gen_ai.usage.input_tokens"] == 15
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["runtrace.run.status"] == "completed"
    assert attrs["runtrace.run.event_count"] == 4
    assert span.status.status_code is StatusCode.OK
    assert [e.name for e in span.events] == ["agent_start", "turn_end", "turn_end", "agent_end"]


def test_run_without_terminal_event_completes_at_end(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
    assert run.status() is RunStatus.COMPLETED
    assert env.run_span(run.id).status.status_code is StatusCode.OK


def test_error_event_fails_the_run_and_the_span(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "error", "message": "model unavailable"})
    span = env.run_span(run.id)
    assert run.snapshot().error == "model unavailable"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "model unavailable"
    assert span.attributes["error.type"] == "agent_error"
    assert span.attributes["runtrace.run.status"] == "failed"


def test_thousand_events_are_all_kept_while_the_span_holds_128(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "long"})
        for i in range(998):
            run.record({"type": "text_delta", "text": f"chunk {i}"})
        run.record({"type": "agent_end", "text": "done"})
    events = run.events()
    assert len(events) == 1000 == run.snapshot().event_count
    assert [r.sequence for r in events] == list(range(1000))
    assert events[0].event.type == "agent_start"
    span = env.run_span(run.id)
    assert len(span.events) == 128
    assert span.dropped_events == 872
    assert span.attributes["runtrace.run.event_count"] == 1000
    assert span.attributes["runtrace.run.span_dropped_events"] == 872
    assert span.events[-1].attributes["runtrace.record.sequence"] == 999


def test_raised_span_event_limit_keeps_every_event_on_the_span() -> None:
    setup = Setup(span_limits=SpanLimits(max_events=2000))
    with setup.rt.start_run("s") as run:
        for i in range(1000):
            run.record({"type": "text_delta", "text": str(i)})
    span = setup.run_span(run.id)
    assert len(span.events) == 1000
    assert span.attributes["runtrace.run.span_dropped_events"] == 0
