"""The OpenLLMetry dialect: ``traceloop.span.kind`` spans (workflow, task, agent, tool) around
model spans in OpenLLMetry's older GenAI spellings, as its LangGraph / CrewAI instrumentations
emit them."""

from __future__ import annotations

import json

from otel.translate.helpers import Traced, end

from runtrace.otel.translate import openllmetry, read_span

KIND = "traceloop.span.kind"
CHAT = {
    "llm.request.type": "chat",
    "gen_ai.system": "openai",
    "gen_ai.usage.prompt_tokens": 21,
    "gen_ai.usage.completion_tokens": 4,
}


def test_kinds_say_the_role_and_entities_name_things(spans: Traced) -> None:
    entity = {"traceloop.entity.name": "researcher"}
    agent = read_span(spans.ended("researcher.agent", {KIND: "agent", **entity}))
    assert (agent.dialect, agent.role, agent.agent_name) == ("openllmetry", "agent", "researcher")
    assert read_span(spans.ended("crew.workflow", {KIND: "workflow"})).role == "wrapper"
    assert read_span(spans.ended("step.task", {KIND: "task"})).role == "other"
    tool_attrs = {
        KIND: "tool",
        "traceloop.entity.name": "search",
        "traceloop.entity.input": '{"args": [], "kwargs": {"q": "otel"}}',
        "traceloop.entity.output": '"3 results"',
    }
    call = read_span(spans.ended("search.tool", tool_attrs))
    assert (call.role, call.tool_name, call.tool_result) == ("tool", "search", '"3 results"')
    assert openllmetry.read(spans.ended("chat", CHAT)) is None  # the GenAI dialect reads these


def test_entity_input_gives_the_prompt(spans: Traced) -> None:
    def prompt(value: object) -> str | None:
        attrs = {KIND: "workflow", "traceloop.entity.input": json.dumps(value)}
        return read_span(spans.ended("w", attrs)).prompt

    assert prompt({"args": ["first arg"], "kwargs": {}}) == "first arg"
    assert prompt({"args": [], "kwargs": {"input": "tell me a joke"}}) == "tell me a joke"
    messages = [{"role": "user", "content": "hello"}]
    assert prompt({"args": [], "kwargs": {"messages": messages}}) == "hello"


def test_session_from_association_properties(spans: Traced) -> None:
    attrs = {KIND: "workflow", "traceloop.association.properties.session_id": "sess-7"}
    assert read_span(spans.ended("w", attrs)).session_id == "sess-7"


def test_workflow_with_an_agent_and_tasks_makes_one_run(traced: Traced) -> None:
    flow = traced.start("crew.workflow", {KIND: "workflow", "traceloop.workflow.name": "crew"})
    agent = traced.start(
        "researcher.agent",
        {KIND: "agent", "traceloop.entity.name": "researcher"},
        parent=flow,
        ms=1,
    )
    task = traced.start("research.task", {KIND: "task"}, parent=agent, ms=2)
    traced.span("openai.chat", CHAT, parent=task, ms=(3, 4))
    traced.span(
        "search.tool", {KIND: "tool", "traceloop.entity.name": "search"}, parent=task, ms=(5, 6)
    )
    end(task, 7)
    end(agent, 8)
    end(flow, 9)
    for out in (traced, traced.replay()):
        run = out.run()
        assert (run.agent_name, run.input_tokens, run.output_tokens) == ("researcher", 21, 4)
        assert out.types(run.id)[1:-1] == ["turn_start", "turn_end", "tool_start", "tool_end"]


def test_langgraph_workflow_of_tasks_is_the_run(traced: Traced) -> None:
    flow = traced.start("LangGraph.workflow", {KIND: "workflow"})
    node = traced.start("agent.task", {KIND: "task"}, parent=flow, ms=1)
    traced.span("ChatOpenAI.chat", CHAT, parent=node, ms=(2, 3))
    end(node, 4)
    end(flow, 5)
    for out in (traced, traced.replay()):
        run = out.run()
        assert out.types(run.id)[1:-1] == ["turn_start", "turn_end"]
