"""read_start against read_span: a span that just started is read whole only when its start
decides something (an agent or a wrapper), and always with the role its whole reading has."""

from __future__ import annotations

from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from otel.translate.helpers import Traced

from runtrace.otel.translate import read_span, read_start

TOOL = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "bash",
    "gen_ai.tool.call.arguments": '{"cmd": "ls"}',
}

SPANS: list[tuple[str, dict[str, Any]]] = [
    ("run", {"runtrace.span.kind": "run", "runtrace.run.id": "r1"}),
    ("tool", {"runtrace.span.kind": "tool"}),
    ("invoke_agent helper", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.call.id": "c"}),
    ("running tool", {"gen_ai.agent.call.id": "c", "gen_ai.tool.name": "add"}),
    ("chat m", {"gen_ai.operation.name": "chat", "pydantic_ai.x": 1}),
    ("crew.workflow", {"traceloop.span.kind": "workflow"}),
    ("search.tool", {"traceloop.span.kind": "tool"}),
    ("openai.chat", {"llm.request.type": "chat"}),
    ("invoke_agent planner", {}),
    ("execute_tool grep", {}),
    ("wf", {"gen_ai.operation.name": "invoke_workflow"}),
    ("usage", {"gen_ai.usage.input_tokens": 3}),
    ("triage", {"openinference.span.kind": "AGENT"}),
    ("lookup", {"openinference.span.kind": "TOOL"}),
    ("chain", {"openinference.span.kind": "CHAIN"}),
    ("retrieve", {"openinference.span.kind": "RETRIEVER"}),
    ("GET /health", {"http.method": "GET"}),
]


@pytest.mark.parametrize(("name", "attributes"), SPANS, ids=[name for name, _ in SPANS])
def test_a_start_reading_has_the_dialect_and_role_of_the_whole_reading(
    spans: Traced, name: str, attributes: dict[str, Any]
) -> None:
    span = spans.start(name, attributes)
    start, whole = read_start(cast(ReadableSpan, span)), read_span(cast(ReadableSpan, span))
    span.end()
    assert (start.dialect, start.role) == (whole.dialect, whole.role)
    assert start.light is (whole.role not in ("agent", "wrapper"))
    if not start.light:
        assert start == whole


def test_a_tool_span_is_read_light_at_its_start_and_whole_at_its_end(spans: Traced) -> None:
    span = spans.start("execute_tool bash", TOOL)
    start = read_start(cast(ReadableSpan, span))
    span.set_attribute("gen_ai.tool.call.result", "a b")
    span.end()
    end = read_span(spans.spans()[-1])
    assert (start.role, start.light, start.tool_name, start.arguments) == ("tool", True, None, None)
    assert (start.trace_id, start.span_id, start.start_ns) == (
        end.trace_id,
        end.span_id,
        end.start_ns,
    )
    assert (end.light, end.tool_name, end.arguments, end.tool_result) == (
        False,
        "bash",
        '{"cmd": "ls"}',
        "a b",
    )
