"""The OpenInference dialect: its span kinds, names and token counts, and the shapes its
instrumentations emit (openai-agents' workflow root around agents; LangGraph's chains)."""

from __future__ import annotations

from otel.translate.helpers import Traced, end

from runtrace.otel.translate import openinference, read_span

KIND = "openinference.span.kind"
LLM = {KIND: "LLM", "llm.token_count.prompt": 40, "llm.token_count.completion": 8}


def test_kinds_say_the_role(spans: Traced) -> None:
    def role(kind: str) -> str:
        return read_span(spans.ended("s", {KIND: kind})).role

    assert [role(k) for k in ("AGENT", "TOOL", "LLM", "CHAIN", "RETRIEVER", "EMBEDDING")] == [
        "agent",
        "tool",
        "model",
        "wrapper",
        "other",
        "other",
    ]
    assert openinference.read(spans.ended("s", {"http.method": "GET"})) is None


def test_llm_span_counts_tokens_per_call_and_finds_the_last_user_message(spans: Traced) -> None:
    attrs = {
        **LLM,
        "llm.token_count.prompt_details.cache_read": 5,
        "llm.model_name": "gpt-x",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "be brief",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "what is 2+2",
    }
    r = read_span(spans.ended("ChatCompletion", attrs))
    assert (r.role, r.model, r.prompt) == ("model", "gpt-x", "what is 2+2")
    assert r.tokens is not None
    assert (r.tokens.input, r.tokens.output, r.tokens.cache_read, r.tokens.aggregate) == (
        40,
        8,
        5,
        False,
    )


def test_agent_and_tool_spans_read_names_session_and_content(spans: Traced) -> None:
    attrs = {KIND: "AGENT", "agent.name": "triage", "session.id": "s-9", "input.value": "help me"}
    agent = read_span(spans.ended("triage", {**attrs, "output.value": "done"}))
    assert (agent.agent_name, agent.session_id, agent.prompt, agent.result) == (
        "triage",
        "s-9",
        "help me",
        "done",
    )
    assert agent.may_wrap
    tool = {KIND: "TOOL", "tool.name": "lookup", "input.value": '{"q": 1}', "output.value": "x"}
    call = read_span(spans.ended("lookup", {**tool, "tool_call.id": "call_1"}))
    assert (call.tool_name, call.call_id, call.arguments, call.tool_result) == (
        "lookup",
        "call_1",
        '{"q": 1}',
        "x",
    )


def openai_agents_shape(t: Traced) -> None:
    """openai-agents through OpenInference: a workflow root (AGENT, nothing else said) around
    the agent that ran, whose name arrives at its end."""
    root = t.start("Agent workflow", {KIND: "AGENT"})
    agent = t.start("triage", {KIND: "AGENT"}, parent=root, ms=1)
    t.span("response", LLM, parent=agent, ms=(2, 3))
    t.span("lookup", {KIND: "TOOL", "tool.name": "lookup"}, parent=agent, ms=(4, 5))
    agent.set_attribute("agent.name", "triage")
    end(agent, 6)
    end(root, 7)


def test_workflow_root_around_one_agent_makes_one_run(traced: Traced) -> None:
    openai_agents_shape(traced)
    for out in (traced, traced.replay()):
        run = out.run()
        assert (run.agent_name, run.status.value, run.input_tokens) == ("triage", "completed", 40)
        assert out.types(run.id)[1:-1] == ["turn_start", "turn_end", "tool_start", "tool_end"]
        assert run.session_id == run.trace_id


def test_an_agent_doing_work_beside_a_nested_agent_is_a_run_with_a_subagent(
    traced: Traced,
) -> None:
    outer = traced.start("planner", {KIND: "AGENT", "agent.name": "planner"})
    traced.span("plan", LLM, parent=outer, ms=(1, 2))
    inner = traced.start("coder", {KIND: "AGENT", "agent.name": "coder"}, parent=outer, ms=3)
    traced.span("write", LLM, parent=inner, ms=(4, 5))
    end(inner, 6)
    end(outer, 7)
    for out in (traced, traced.replay()):
        planner, coder = out.run("planner"), out.run("coder")
        assert [e["task_id"] for e in out.events(planner.id, "subagent_end")] == [coder.id]
        assert out.types(coder.id).count("turn_end") == 1


def test_chains_with_no_agent_make_the_outermost_chain_the_run(traced: Traced) -> None:
    graph = traced.start("LangGraph", {KIND: "CHAIN", "input.value": "plan a trip"})
    node = traced.start("agent", {KIND: "CHAIN"}, parent=graph, ms=1)
    traced.span("ChatOpenAI", LLM, parent=node, ms=(2, 3))
    end(node, 4)
    tools = traced.start("tools", {KIND: "CHAIN"}, parent=graph, ms=5)
    traced.span("search", {KIND: "TOOL", "tool.name": "search"}, parent=tools, ms=(6, 7))
    end(tools, 8)
    graph.set_attribute("output.value", "booked")
    end(graph, 9)
    for out in (traced, traced.replay()):
        run = out.run()
        assert (run.prompt, run.result_text) == ("plan a trip", "booked")
        assert out.types(run.id)[1:-1] == ["turn_start", "turn_end", "tool_start", "tool_end"]
