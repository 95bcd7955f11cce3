"""The pydantic-ai dialect: hand-built spans, and real pydantic-ai runs (TestModel /
FunctionModel, offline) on instrumentation version 2 and the default, through a real provider,
assembled in-process and replayed in OTLP order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from otel.translate.frameworks import pydantic_settings
from otel.translate.helpers import Assembled, Traced
from pydantic_ai import Agent, CallDeferred, DeferredToolRequests, ModelRetry
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from runtrace.otel.translate import pydantic_ai, read_span

RUN = {
    "gen_ai.operation.name": "invoke_agent",
    "gen_ai.agent.name": "helper",
    "gen_ai.agent.call.id": "call-1",
    "gen_ai.conversation.id": "conv-1",
}


def test_run_span_reads_its_id_prompt_result_and_own_usage(spans: Traced) -> None:
    history = [
        {"role": "user", "parts": [{"type": "text", "content": "earlier question"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "earlier answer"}]},
        {"role": "user", "parts": [{"type": "text", "content": "new question"}]},
    ]
    attrs = {
        **RUN,
        "pydantic_ai.all_messages": json.dumps(history),
        "pydantic_ai.new_message_index": 2,
        "final_result": "new answer",
        "gen_ai.aggregated_usage.input_tokens": 100,
        "gen_ai.aggregated_usage.output_tokens": 20,
    }
    r = read_span(spans.ended("invoke_agent helper", attrs))
    assert (r.dialect, r.run_id, r.session_id) == ("pydantic_ai", "call-1", "conv-1")
    assert (r.prompt, r.result) == ("new question", "new answer")
    assert r.tokens is not None
    assert (r.tokens.input, r.tokens.output, r.tokens.aggregate) == (100, 20, True)


def test_deferred_tool_call_is_not_a_failure_whatever_its_status(spans: Traced) -> None:
    attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "later",
        "gen_ai.agent.call.id": "call-1",
        "pydantic_ai.tool.deferral.name": "CallDeferred",
    }
    r = read_span(spans.ended("execute_tool later", attrs, status=StatusCode.ERROR))
    assert (r.deferred, r.error) == ("CallDeferred", None)


def test_version_2_names(spans: Traced) -> None:
    run = read_span(spans.ended("agent run", {**RUN, "gen_ai.agent.name": "", "agent_name": "v2"}))
    assert (run.role, run.agent_name) == ("agent", "v2")
    attrs = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "tool_arguments": '{"a": 1}',
        "tool_response": "2",
    }
    call = read_span(spans.ended("running tool", attrs))
    assert (call.dialect, call.arguments, call.tool_result) == ("pydantic_ai", '{"a": 1}', "2")


def test_spans_without_pydantic_ai_marks_are_not_its(spans: Traced) -> None:
    assert pydantic_ai.read(spans.ended("invoke_agent x", {"gen_ai.agent.name": "x"})) is None


# --- pydantic-ai, for real ------------------------------------------------------------------------

VERSIONS = pytest.mark.parametrize(
    "version", [pytest.param(2, id="v2"), pytest.param(None, id="default")]
)
pytestmark = pytest.mark.filterwarnings("ignore:Instrumentation format versions")


def make(
    traced: Traced, version: int | None, model: Any, name: str, **kwargs: Any
) -> Agent[Any, Any]:
    agent: Agent[Any, Any] = Agent(model, name=name, **kwargs)
    agent.instrument = pydantic_settings(traced.provider, version)
    return agent


def both(traced: Traced) -> list[Assembled]:
    return [traced, traced.replay(), traced.processed]


@VERSIONS
def test_two_tools_with_usage(traced: Traced, version: int | None) -> None:
    agent = make(traced, version, TestModel(), "helper")

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        return a + b

    @agent.tool_plain
    def shout(text: str) -> str:
        return text.upper()

    result = asyncio.run(agent.run("hi"))
    usage = result.usage
    for out in both(traced):
        run = out.run()
        assert (run.id, run.agent_name, run.status.value, run.prompt) == (
            result.run_id,
            "helper",
            "completed",
            "hi",
        )
        assert run.result_text == result.output
        assert (run.input_tokens, run.output_tokens) == (usage.input_tokens, usage.output_tokens)
        assert out.types(run.id).count("turn_end") == 2
        ends = {
            e["name"]: (e["args"], e["output"], e["exit_code"])
            for e in out.events(run.id, "tool_end")
        }
        assert ends == {"add": ({"a": 0, "b": 0}, "0", 0), "shout": ({"text": "a"}, "A", 0)}
        turn_usage = [e["usage"]["prompt_tokens"] for e in out.events(run.id, "turn_end")]
        assert sum(turn_usage) == usage.input_tokens  # per call on turns, the total once on the run
        out.check_events()


@VERSIONS
def test_failing_tool_fails_the_run_with_its_error(traced: Traced, version: int | None) -> None:
    agent = make(traced, version, TestModel(), "helper")

    @agent.tool_plain
    def boom(a: int) -> int:
        raise ValueError("tool broke")

    with pytest.raises(ValueError):
        asyncio.run(agent.run("hi"))
    for out in both(traced):
        run = out.run()
        assert (run.status.value, run.error) == ("failed", "ValueError: tool broke")
        (end,) = out.events(run.id, "tool_end")
        assert (end["exit_code"], end["error_kind"]) == (1, "ValueError")


@VERSIONS
def test_tool_retry_the_model_recovers_from_is_a_failed_call_only(
    traced: Traced, version: int | None
) -> None:
    agent = make(traced, version, TestModel(), "helper")
    calls: list[int] = []

    @agent.tool_plain(retries=2)
    def flaky(a: int) -> int:
        calls.append(a)
        if len(calls) == 1:
            raise ModelRetry("try again")
        return a

    asyncio.run(agent.run("hi"))
    for out in both(traced):
        run = out.run()
        assert run.status.value == "completed"
        codes = [e["exit_code"] for e in out.events(run.id, "tool_end")]
        assert codes == [1, 0]


@VERSIONS
def test_model_error_fails_the_run(traced: Traced, version: int | None) -> None:
    def broken(messages: list[ModelMessage], info: AgentInfo) -> Any:
        raise RuntimeError("model down")

    agent = make(traced, version, FunctionModel(broken), "helper")
    with pytest.raises(RuntimeError):
        asyncio.run(agent.run("hi"))
    for out in both(traced):
        run = out.run()
        assert (run.status.value, run.error) == ("failed", "RuntimeError: model down")
        assert out.events(run.id, "error") == [
            {"type": "error", "message": "RuntimeError: model down"}
        ]
    assert traced.replay().run().prompt == "hi"  # out of process the run span's end says it


@VERSIONS
def test_cancelled_task_mid_tool_cancels_the_run(traced: Traced, version: int | None) -> None:
    agent = make(traced, version, TestModel(), "helper")
    started = asyncio.Event()

    @agent.tool_plain
    async def slow(a: int) -> int:
        started.set()
        await asyncio.sleep(60)
        return a

    async def main() -> None:
        task = asyncio.create_task(agent.run("hi"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    for out in both(traced):
        run = out.run()
        assert run.status.value == "cancelled"
        assert run.error == "interrupted: the run's span ended while tool 'slow' was running"
        (end,) = out.events(run.id, "tool_end")  # the tool span ends after the run's
        assert (end["exit_code"], end["error_kind"], end["output"]) == (
            130,
            "cancelled",
            "asyncio task cancelled",
        )
    assert traced.assembler.stats.children_attached_late == 1


@VERSIONS
def test_agent_called_from_a_tool_is_a_subagent_and_a_run(
    traced: Traced, version: int | None
) -> None:
    inner = make(traced, version, TestModel(custom_output_text="inner done"), "inner")
    outer = make(traced, version, TestModel(), "outer")

    @outer.tool_plain
    async def delegate(q: str) -> str:
        answer: str = (await inner.run(q)).output
        return answer

    asyncio.run(outer.run("hi"))
    for out in both(traced):
        outer_run, inner_run = out.run("outer"), out.run("inner")
        (start,) = out.events(outer_run.id, "subagent_start")
        (end,) = out.events(outer_run.id, "subagent_end")
        assert start["task_id"] == end["task_id"] == inner_run.id
        assert (start["session_id"], start["parent_session_id"]) == (
            inner_run.session_id,
            outer_run.session_id,
        )
        assert (end["success"], end["output"]) == (True, "inner done")
        # each run counts its own tokens: the inner call is not the outer run's
        assert out.types(outer_run.id).count("turn_end") == 2
        assert out.types(inner_run.id).count("turn_end") == 1
        assert (inner_run.status.value, inner_run.result_text) == ("completed", "inner done")


@VERSIONS
def test_run_stream(traced: Traced, version: int | None) -> None:
    agent = make(traced, version, TestModel(), "helper")

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        return a + b

    async def main() -> str:
        async with agent.run_stream("hi") as result:
            async for _ in result.stream_text():
                pass
            output: str = await result.get_output()
            return output

    output = asyncio.run(main())
    for out in both(traced):
        run = out.run()
        assert (run.status.value, run.result_text, run.prompt) == ("completed", output, "hi")
        assert out.types(run.id).count("tool_end") == 1


@VERSIONS
def test_deferred_tool_call_leaves_the_run_completed(traced: Traced, version: int | None) -> None:
    agent = make(traced, version, TestModel(), "helper", output_type=[str, DeferredToolRequests])

    @agent.tool_plain
    def later(path: str) -> str:
        raise CallDeferred(metadata={"why": "external"})

    asyncio.run(agent.run("hi"))
    for out in both(traced):
        run = out.run()
        assert run.status.value == "completed"
        (end,) = out.events(run.id, "tool_end")
        assert (end["exit_code"], end["metadata"]) == (0, {"deferred": "CallDeferred"})
