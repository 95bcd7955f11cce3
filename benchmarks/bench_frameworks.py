"""The added cost per framework span: pydantic-ai-shaped runs through ``RunSpanProcessor``
against the same spans on a provider with no processor.

Run: python benchmarks/bench_frameworks.py [--runs 300] [--children 10] [--rounds 5]

Each run is an ``invoke_agent`` span with ``--children`` child spans, alternately ``chat`` and
``execute_tool``, carrying the attributes pydantic-ai 2.68 puts on them (at their start, and the
ones it sets just before their end), made with the bare OpenTelemetry API: no model needed. The
runtrace side's provider has a ``RunSpanProcessor``, which adopts the agent span as a live run and
hands every child to the translator (turns with their tokens, tool calls with arguments and
results); the baseline's provider has no processor. Also one figure for a real pydantic-ai run
(``TestModel``, two tools, offline) through both providers. Rounds alternate the sides; times are
the process's CPU time (other processes' load on a shared machine does not count), medians of the
rounds, and the ratio of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from report import Figure

from runtrace import RunSpanProcessor

RUN_START = {
    "model_name": "gpt-bench",
    "agent_name": "helper",
    "gen_ai.agent.name": "helper",
    "gen_ai.operation.name": "invoke_agent",
    "logfire.msg": "helper run",
}
CHAT_START = {
    "gen_ai.operation.name": "chat",
    "gen_ai.agent.name": "helper",
    "gen_ai.provider.name": "openai",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-bench",
    "model_request_parameters": json.dumps({"function_tools": [{"name": "add"}]}),
}
CHAT_END: dict[str, str | int] = {
    "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"content": "hi"}]}]),
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"content": "ok"}]}]),
    "gen_ai.usage.input_tokens": 51,
    "gen_ai.usage.output_tokens": 11,
    "gen_ai.response.model": "gpt-bench",
}
TOOL_START = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "add",
    "gen_ai.tool.call.arguments": '{"a":1,"b":2}',
    "gen_ai.agent.name": "helper",
    "logfire.msg": "running tool: add",
}
TOOL_END = {"gen_ai.tool.call.result": "3"}


def run_spans(tracer: trace.Tracer, runs: int, children: int) -> float:
    """``runs`` pydantic-ai-shaped runs; CPU ns per span (the run span and its children)."""
    start = time.process_time_ns()
    for i in range(runs):
        ids = {"gen_ai.agent.call.id": f"call-{i}", "gen_ai.conversation.id": f"conv-{i}"}
        with tracer.start_as_current_span(
            "invoke_agent helper", attributes={**RUN_START, **ids}
        ) as run:
            for k in range(children):
                if k % 2 == 0:
                    with tracer.start_as_current_span(
                        "chat gpt-bench", attributes={**CHAT_START, **ids}
                    ) as chat:
                        chat.set_attributes(CHAT_END)
                else:
                    tool_ids = {**ids, "gen_ai.tool.call.id": f"tool-{i}-{k}"}
                    with tracer.start_as_current_span(
                        "execute_tool add", attributes={**TOOL_START, **tool_ids}
                    ) as tool:
                        tool.set_attributes(TOOL_END)
            run.set_attributes(
                {
                    "final_result": "3",
                    "gen_ai.aggregated_usage.input_tokens": 51 * (children // 2 + 1),
                    "gen_ai.aggregated_usage.output_tokens": 11 * (children // 2 + 1),
                    "pydantic_ai.all_messages": json.dumps([{"role": "user", "parts": []}]),
                }
            )
    return (time.process_time_ns() - start) / (runs * (children + 1))


def pydantic_ai_run(provider: TracerProvider) -> Callable[[], None]:
    """A real pydantic-ai agent (``TestModel``, two tools) instrumented on ``provider``."""
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    agent: Agent[None, str] = Agent(TestModel(), name="helper")
    agent.instrument = InstrumentationSettings(tracer_provider=provider)

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        return a + b

    @agent.tool_plain
    def shout(text: str) -> str:
        return text.upper()

    def run() -> None:
        asyncio.run(agent.run("hi"))

    return run


def per_call(n: int, call: Callable[[], None]) -> float:
    start = time.process_time_ns()
    for _ in range(n):
        call()
    return (time.process_time_ns() - start) / n


def measure(
    runs: int = 300, children: int = 10, rounds: int = 5, agent_runs: int = 50
) -> dict[str, float]:
    """Median CPU ns per span of each side, and per real pydantic-ai run, interleaved."""
    bare_provider = TracerProvider()
    processor = RunSpanProcessor()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    bare_tracer = bare_provider.get_tracer("pydantic-ai")
    tracer = provider.get_tracer("pydantic-ai")
    bare_agent, agent = pydantic_ai_run(bare_provider), pydantic_ai_run(provider)
    run_spans(bare_tracer, 20, children)  # warm up both sides
    run_spans(tracer, 20, children)
    bare_agent()
    agent()
    processor.store.replace_records([])
    sides: dict[str, list[float]] = {"bare": [], "runtrace": [], "bare_agent": [], "agent": []}
    for _ in range(rounds):
        sides["bare"].append(run_spans(bare_tracer, runs, children))
        sides["runtrace"].append(run_spans(tracer, runs, children))
        sides["bare_agent"].append(per_call(agent_runs, bare_agent))
        sides["agent"].append(per_call(agent_runs, agent))
        done = [s for s in processor.store.list() if s.status.value == "completed"]
        if len(done) != runs + agent_runs:  # every run made, whole, or the figure means nothing
            raise SystemExit(f"{len(done)} completed runs, expected {runs + agent_runs}")
        processor.store.replace_records([])  # each round starts from an empty store
    processor.shutdown()
    provider.shutdown()
    bare_provider.shutdown()
    return {name: statistics.median(values) for name, values in sides.items()}


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: per framework span, and per real pydantic-ai run."""
    result = measure(100, 10, 3, 20) if quick else measure()
    command = "python benchmarks/bench_frameworks.py"
    return [
        Figure(
            name="pydantic-ai-shaped span through RunSpanProcessor",
            value=result["runtrace"] / 1e3,
            baseline=result["bare"] / 1e3,
            unit="µs",
            baseline_name="no processor",
            command=command,
        ),
        Figure(
            name="real pydantic-ai run (TestModel, two tools)",
            value=result["agent"] / 1e3,
            baseline=result["bare_agent"] / 1e3,
            unit="µs",
            baseline_name="no processor",
            command=command,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--agent-runs", type=int, default=50)
    args = parser.parse_args()
    result = measure(args.runs, args.children, args.rounds, args.agent_runs)
    bare, ours = result["bare"], result["runtrace"]
    bare_agent, agent = result["bare_agent"], result["agent"]
    print(
        f"{args.runs} pydantic-ai-shaped runs x {args.children + 1} spans, {args.rounds} rounds"
        " (CPU time, medians)"
    )
    print(f"  spans, no processor        {bare / 1e3:8.2f} µs/span   1.00x")
    print(
        f"  spans, RunSpanProcessor    {ours / 1e3:8.2f} µs/span {ours / bare:6.2f}x"
        f"   (+{(ours - bare) / 1e3:.2f} µs per framework span)"
    )
    print(f"real pydantic-ai run (TestModel, two tools), {args.agent_runs} runs per round")
    print(f"  no processor               {bare_agent / 1e3:8.1f} µs/run    1.00x")
    print(f"  RunSpanProcessor           {agent / 1e3:8.1f} µs/run  {agent / bare_agent:6.2f}x")


if __name__ == "__main__":
    main()
