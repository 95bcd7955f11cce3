"""What readings become: every event dict validates as its runtrace event class."""

from __future__ import annotations

from opentelemetry.trace import StatusCode
from otel.translate.helpers import Traced, at

from runtrace.events import SubagentEnd, SubagentStart, ToolEnd, ToolStart, TurnEnd, parse_event
from runtrace.otel.translate import read_span
from runtrace.otel.translate.mapping import (
    CANCELLED_EXIT_CODE,
    agent_end,
    agent_start,
    child_events,
    subagent_end,
    subagent_start,
)

TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "bash"}


def test_tool_span_is_tool_start_then_tool_end_at_its_times(spans: Traced) -> None:
    r = read_span(
        spans.ended("execute_tool bash", {**TOOL, "gen_ai.tool.call.id": "c1"}, ms=(2, 5))
    )
    (start_ns, start), (end_ns, end) = child_events(r, 0)
    assert (start_ns, end_ns) == (at(2), at(5))
    assert isinstance(parse_event(start), ToolStart)
    done = parse_event(end)
    assert isinstance(done, ToolEnd)
    assert (done.id, done.exit_code, done.output, done.args) == ("c1", 0, "", None)


def test_tool_without_a_call_id_is_named_by_its_span(spans: Traced) -> None:
    r = read_span(spans.ended("execute_tool bash", TOOL))
    assert child_events(r, 0)[0][1]["id"] == format(r.span_id, "016x")


def test_failed_cancelled_and_deferred_tool_calls(spans: Traced) -> None:
    failed = read_span(spans.ended("t", TOOL, status=(StatusCode.ERROR, "no such file")))
    assert {k: child_events(failed, 0)[1][1][k] for k in ("exit_code", "output", "error_kind")} == {
        "exit_code": 1,
        "output": "no such file",
        "error_kind": "tool_error",
    }
    cancelled = read_span(spans.ended("t", TOOL, exception=KeyboardInterrupt()))
    assert child_events(cancelled, 0)[1][1]["exit_code"] == CANCELLED_EXIT_CODE
    deferred_attrs = {**TOOL, "gen_ai.agent.call.id": "x", "pydantic_ai.tool.deferral.name": "Ask"}
    deferred = read_span(spans.ended("t", deferred_attrs))
    end = child_events(deferred, 0)[1][1]
    assert (end["exit_code"], end["metadata"]) == (0, {"deferred": "Ask"})


def test_model_span_is_a_numbered_turn_with_its_usage_and_an_error_if_it_raised(
    spans: Traced,
) -> None:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5}
    r = read_span(spans.ended("chat", attrs, status=(StatusCode.ERROR, "rate limited")))
    events = [event for _, event in child_events(r, 3)]
    assert [e["type"] for e in events] == ["turn_start", "turn_end", "error"]
    turn = parse_event(events[1])
    assert isinstance(turn, TurnEnd)
    assert (turn.turn, turn.usage.prompt_tokens, turn.usage.completion_tokens) == (3, 5, 0)
    assert events[2]["message"] == "rate limited"


def test_subagent_events_and_the_run_ends(spans: Traced) -> None:
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"}
    r = read_span(spans.ended("invoke_agent helper", attrs, ms=(10, 20)))
    start = parse_event(subagent_start(r, "run-2", "s2", "s1"))
    assert isinstance(start, SubagentStart)
    assert (start.agent, start.started_ms) == ("helper", at(10) // 1_000_000)
    done = parse_event(subagent_end(r, "run-2", "s2", "ok", True))
    assert isinstance(done, SubagentEnd) and done.finished_ms == at(20) // 1_000_000
    assert parse_event(agent_start(None)).prompt == ""  # type: ignore[attr-defined]
    assert "usage" not in agent_end(r)  # no total on the span: the turns' sum stands
