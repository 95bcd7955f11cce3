"""The GenAI dialect: hand-built spans in the current and older spellings, and real strands runs
(a GenAI emitter) through a real provider, in-process and replayed in OTLP order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from otel.translate.frameworks import ScriptedModel, strands_traced
from otel.translate.helpers import Assembled, Traced
from strands import Agent, tool

from runtrace.otel.translate import genai, read_span

TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "grep"}


def test_invoke_agent_is_an_agent_with_its_conversation_and_run_total(spans: Traced) -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "find it"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "found"}]}]
    r = read_span(
        spans.ended(
            "invoke_agent helper",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "helper",
                "gen_ai.conversation.id": "conv-1",
                "gen_ai.usage.input_tokens": 30,
                "gen_ai.usage.output_tokens": 7,
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(answer),
            },
        )
    )
    assert (r.dialect, r.role, r.agent_name, r.session_id) == ("genai", "agent", "helper", "conv-1")
    assert (r.prompt, r.result) == ("find it", "found")
    assert r.tokens is not None
    assert (r.tokens.input, r.tokens.output, r.tokens.aggregate) == (30, 7, True)


def test_chat_span_in_older_spellings_is_one_model_call(spans: Traced) -> None:
    attrs = {
        "gen_ai.system": "openai",
        "llm.request.type": "chat",
        "gen_ai.usage.prompt_tokens": 11,
        "gen_ai.usage.completion_tokens": 3,
        "gen_ai.request.model": "gpt-x",
    }
    r = read_span(spans.ended("openai.chat", attrs))
    assert (r.role, r.model) == ("model", "gpt-x")
    assert r.tokens is not None
    assert (r.tokens.input, r.tokens.output, r.tokens.aggregate) == (11, 3, False)


def test_operations_say_the_role(spans: Traced) -> None:
    def role(operation: str) -> str:
        return read_span(spans.ended("s", {"gen_ai.operation.name": operation})).role

    assert role("invoke_workflow") == "wrapper"
    assert role("create_agent") == "other"
    assert role("embeddings") == "other"
    assert role("text_completion") == "model"
    assert role("generate_content") == "model"


def test_tool_span_carries_call_id_arguments_and_result(spans: Traced) -> None:
    attrs = {
        **TOOL,
        "gen_ai.tool.call.id": "c1",
        "gen_ai.tool.call.arguments": '{"q": "x"}',
        "gen_ai.tool.call.result": "3 hits",
    }
    r = read_span(spans.ended("execute_tool grep", attrs))
    assert (r.role, r.tool_name, r.call_id) == ("tool", "grep", "c1")
    assert (r.arguments, r.tool_result) == ('{"q": "x"}', "3 hits")


def test_span_names_of_the_convention_identify_spans_without_attributes(spans: Traced) -> None:
    agent = read_span(spans.ended("invoke_agent planner"))
    assert (agent.role, agent.agent_name) == ("agent", "planner")
    call = read_span(spans.ended("execute_tool search"))
    assert (call.role, call.tool_name) == ("tool", "search")
    assert genai.read(spans.ended("GET /health", {"http.method": "GET"})) is None


def test_content_events_give_prompt_result_and_tool_content(spans: Traced) -> None:
    span = spans.start("invoke_agent a", {"gen_ai.operation.name": "invoke_agent"})
    span.add_event("gen_ai.user.message", {"content": '[{"text": "hello"}]'})
    span.add_event("gen_ai.choice", {"message": "bye\n"})
    span.end()
    r = read_span(spans.spans()[-1])
    assert (r.prompt, r.result, r.events) == ("hello", "bye", ())
    tool_span = spans.start("execute_tool t", {"gen_ai.operation.name": "execute_tool"})
    tool_span.add_event("gen_ai.tool.message", {"content": '{"a": 1}'})
    tool_span.add_event("gen_ai.choice", {"message": '[{"text": "2"}]'})
    tool_span.end()
    t = read_span(spans.spans()[-1])
    assert (t.arguments, t.tool_result) == ('{"a": 1}', "2")


def test_operation_details_event_gives_the_prompt(spans: Traced) -> None:
    span = spans.start("invoke_agent a", {"gen_ai.operation.name": "invoke_agent"})
    messages = [{"role": "user", "parts": [{"type": "text", "content": "via details"}]}]
    details = {"gen_ai.input.messages": json.dumps(messages)}
    span.add_event("gen_ai.client.inference.operation.details", details)
    span.end()
    assert read_span(spans.spans()[-1]).prompt == "via details"


def test_tool_status_error_without_error_status_is_a_failed_call(spans: Traced) -> None:
    r = read_span(spans.ended("execute_tool t", {**TOOL, "gen_ai.tool.status": "error"}))
    assert r.error == "tool returned an error"


def test_plain_events_of_an_agent_span_become_its_run_events(spans: Traced) -> None:
    span = spans.start("invoke_agent a", {"gen_ai.operation.name": "invoke_agent"})
    span.add_event("tool_start", {"id": "t1", "name": "bash"})
    span.add_event("tool_start", {"id": 3})  # does not fit tool_start: kept as given
    span.end()
    events = [e.event for e in read_span(spans.spans()[-1]).events]
    assert events[0]["type"] == "tool_start" and events[0]["name"] == "bash"
    assert events[1] == {"type": "otel_span_event", "name": "tool_start", "attributes": {"id": 3}}


# --- strands-agents, for real ---------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def boom(a: int) -> int:
    """Always fails."""
    raise ValueError("tool broke")


@pytest.fixture
def strands_env(traced: Traced) -> Iterator[Traced]:
    with strands_traced(traced.provider):
        yield traced


def both(env: Traced) -> list[Assembled]:
    """The in-process result and the OTLP-order replay of the same spans."""
    return [env, env.replay(), env.processed]


def agent(turns: list, **kwargs: object) -> Agent:  # type: ignore[type-arg]
    return Agent(model=ScriptedModel(turns), callback_handler=None, **kwargs)  # type: ignore[arg-type]


def test_strands_run_with_two_tools_has_turns_tools_and_the_run_total(strands_env: Traced) -> None:
    calls = [("add", "t1", {"a": 1, "b": 2}), ("add", "t2", {"a": 3, "b": 4})]
    bot = agent([calls, ["done"]], tools=[add], name="helper")
    asyncio.run(bot.invoke_async("hi"))
    for out in both(strands_env):
        run = out.run()
        assert (run.agent_name, run.status.value, run.prompt, run.result_text) == (
            "helper",
            "completed",
            "hi",
            "done",
        )
        assert (run.input_tokens, run.output_tokens) == (20, 10)  # the run total, once
        assert run.session_id == run.trace_id  # strands names no conversation
        ends = out.events(run.id, "tool_end")
        assert [(e["id"], e["args"], e["output"], e["exit_code"]) for e in ends] == [
            ("t1", {"a": 1, "b": 2}, "3", 0),
            ("t2", {"a": 3, "b": 4}, "7", 0),
        ]
        assert out.types(run.id).count("turn_end") == 2
        out.check_events()


def test_strands_tool_error_fed_back_to_the_model_is_a_failed_call(strands_env: Traced) -> None:
    bot = agent([[("boom", "t1", {"a": 1})], ["recovered"]], tools=[boom], name="helper")
    asyncio.run(bot.invoke_async("hi"))
    for out in both(strands_env):
        run = out.run()
        assert (run.status.value, run.result_text) == ("completed", "recovered")
        (end,) = out.events(run.id, "tool_end")
        assert (end["exit_code"], end["error_kind"], end["output"]) == (
            1,
            "ValueError",
            "Error: tool broke",
        )


def test_strands_model_error_fails_the_run(strands_env: Traced) -> None:
    bot = agent([RuntimeError("model down")], name="helper")
    with pytest.raises(RuntimeError):
        asyncio.run(bot.invoke_async("hi"))
    for out in both(strands_env):
        run = out.run()
        assert (run.status.value, run.error) == ("failed", "model down")
        assert out.events(run.id, "error") == [{"type": "error", "message": "model down"}]


def test_strands_cancelled_task_cancels_the_run(strands_env: Traced) -> None:
    started = asyncio.Event()

    @tool
    async def slow(a: int) -> int:
        """Waits."""
        started.set()
        await asyncio.sleep(60)
        return a

    async def main() -> None:
        task = asyncio.create_task(
            agent([[("slow", "t1", {"a": 1})], ["x"]], tools=[slow], name="helper").invoke_async(
                "hi"
            )
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    live = strands_env.run()
    assert (live.status.value, live.error) == ("cancelled", "asyncio task cancelled")
    # strands never ends its loop-cycle span: out of process the run's children wait for it,
    # and attach to the trace's run when the receiver flushes
    replay = strands_env.replay()
    assert replay.run().status.value == "cancelled"
    assert replay.assembler.stats.held == 2
    replay.assembler.flush()
    assert replay.types(replay.run().id) == strands_env.types(live.id)
    assert replay.assembler.stats.orphans_reported == 0


def test_strands_agent_called_from_a_tool_is_a_subagent_and_a_run(strands_env: Traced) -> None:
    inner = agent([["inner done"]], name="inner")

    @tool
    async def delegate(q: str) -> str:
        """Delegates."""
        return str(await inner.invoke_async(q))

    outer = agent(
        [[("delegate", "t1", {"q": "x"})], ["outer done"]], tools=[delegate], name="outer"
    )
    asyncio.run(outer.invoke_async("hi"))
    for out in both(strands_env):
        outer_run, inner_run = out.run("outer"), out.run("inner")
        (start,) = out.events(outer_run.id, "subagent_start")
        (end,) = out.events(outer_run.id, "subagent_end")
        assert (start["task_id"], start["agent"]) == (inner_run.id, "inner")
        assert (end["success"], end["output"]) == (True, "inner done")
        assert (inner_run.prompt, inner_run.input_tokens) == ("x", 10)
        assert (outer_run.input_tokens, outer_run.output_tokens) == (20, 10)


def test_strands_stream_is_a_run_like_any_other(strands_env: Traced) -> None:
    bot = agent([[("add", "t1", {"a": 1, "b": 2})], ["done"]], tools=[add], name="helper")

    async def main() -> None:
        async for _ in bot.stream_async("hi"):
            pass

    asyncio.run(main())
    for out in both(strands_env):
        run = out.run()
        assert (run.status.value, run.result_text, run.input_tokens) == ("completed", "done", 20)
        assert out.types(run.id)[:2] == ["agent_start", "turn_start"]
