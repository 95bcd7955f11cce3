"""A realistic agent workload through ``Runtrace`` against the same spans in bare OpenTelemetry.

Run: python benchmarks/bench_agent.py [--runs 300] [--rounds 5] [--generic]

Each run is one ``agent_start``, 50 ``text_delta`` events, 5 tool calls (``tool_start`` and
``tool_end``, so 5 ``execute_tool`` child spans) and ``agent_end``: 62 events, as dicts, the way
an agent hands them over. The baseline makes the same run spans, span events (same names, the
attributes that carry the same information) and child spans with the bare OpenTelemetry API on a
provider of its own. ``--generic`` swaps the text deltas for an event type runtrace does not know
(``queue_alert``), which takes the generic path. Rounds alternate the two sides; times are the
process's CPU time (other processes' load on a shared machine does not count); the ratio of
medians is printed with the absolute cost per event. Target: <= 1.5x.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from report import Figure

from runtrace import Runtrace

DELTAS = 50
TOOLS = 5


def workload(generic: bool) -> list[dict[str, Any]]:
    """One run's events, in order."""
    events: list[dict[str, Any]] = [{"type": "agent_start", "prompt": "fix the failing test"}]
    for i in range(DELTAS):
        if generic:
            events.append({"type": "queue_alert", "queue": "jobs", "depth": i, "level": "warn"})
        else:
            events.append({"type": "text_delta", "text": f"token {i} "})
        if i % (DELTAS // TOOLS) == DELTAS // TOOLS - 1:
            call = f"call-{i}"
            events.append({"type": "tool_start", "id": call, "name": "bash"})
            events.append(
                {"type": "tool_end", "id": call, "name": "bash", "output": "ok", "exit_code": 0}
            )
    events.append({"type": "agent_end", "text": "all green"})
    return events


def bare_attributes(event: dict[str, Any]) -> dict[str, Any]:
    """The attributes a hand-instrumented agent would put on the span event."""
    kind = event["type"]
    if kind == "agent_start":
        return {"runtrace.event.prompt_length": len(event["prompt"])}
    if kind in ("tool_start", "tool_end"):
        attrs: dict[str, Any] = {
            "gen_ai.tool.name": event["name"],
            "gen_ai.tool.call.id": event["id"],
        }
        if kind == "tool_end":
            attrs["runtrace.event.exit_code"] = event["exit_code"]
        return attrs
    if kind == "text_delta":
        return {"runtrace.event.text_length": len(event["text"])}
    if kind == "agent_end":
        return {"runtrace.event.text_length": len(event["text"])}
    return {k: v for k, v in event.items() if k != "type"}


def run_bare(tracer: trace.Tracer, runs: int, events: list[dict[str, Any]]) -> float:
    prepared = [(e["type"], bare_attributes(e), str(e.get("id", ""))) for e in events]
    start = time.process_time_ns()
    for i in range(runs):
        with tracer.start_as_current_span(
            "invoke_agent bench",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "bench",
                "gen_ai.conversation.id": f"s-{i}",
            },
        ) as span:
            children: dict[str, trace.Span] = {}
            context = trace.set_span_in_context(span)
            for name, attrs, call in prepared:
                span.add_event(name, attrs)
                if name == "tool_start":
                    children[call] = tracer.start_span(
                        "execute_tool bash",
                        context=context,
                        attributes={
                            "gen_ai.operation.name": "execute_tool",
                            "gen_ai.tool.name": "bash",
                            "gen_ai.tool.call.id": call,
                        },
                    )
                elif name == "tool_end":
                    children.pop(call).end()
    return (time.process_time_ns() - start) / (runs * len(events))


def run_runtrace(rt: Runtrace, runs: int, events: list[dict[str, Any]]) -> float:
    start = time.process_time_ns()
    for i in range(runs):
        with rt.start_run(f"s-{i}", prompt="fix the failing test", agent_name="bench") as run:
            record = run.record
            for event in events:
                record(event)
    return (time.process_time_ns() - start) / (runs * len(events))


def measure(runs: int = 300, rounds: int = 5, generic: bool = False) -> dict[str, float]:
    """Median CPU ns per event of each side, interleaved round by round, and their ratio."""
    events = workload(generic)
    bare_provider = TracerProvider()
    bare_tracer = bare_provider.get_tracer("bench")
    provider = TracerProvider()
    rt = Runtrace(provider)
    bare: list[float] = []
    ours: list[float] = []
    run_bare(bare_tracer, 20, events)  # warm up both sides
    run_runtrace(rt, 20, events)
    for _ in range(rounds):
        bare.append(run_bare(bare_tracer, runs, events))
        ours.append(run_runtrace(rt, runs, events))
        rt.store.replace_records([])  # each round starts from an empty store
    rt.shutdown()
    provider.shutdown()
    bare_provider.shutdown()
    bare_ns, runtrace_ns = statistics.median(bare), statistics.median(ours)
    return {"bare_ns": bare_ns, "runtrace_ns": runtrace_ns, "ratio": runtrace_ns / bare_ns}


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: both workloads, µs per event against bare OpenTelemetry."""
    runs, rounds = (100, 3) if quick else (300, 5)
    out = []
    for generic, flag in ((False, ""), (True, " --generic")):
        result = measure(runs, rounds, generic)
        out.append(
            Figure(
                name=f"agent workload{' (generic events)' if generic else ''}, per event",
                value=result["runtrace_ns"] / 1e3,
                baseline=result["bare_ns"] / 1e3,
                unit="µs",
                baseline_name="bare OpenTelemetry",
                target=1.5,
                command=f"python benchmarks/bench_agent.py{flag}",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--generic", action="store_true", help="queue_alert instead of text_delta")
    args = parser.parse_args()
    result = measure(args.runs, args.rounds, args.generic)
    bare, ours, ratio = result["bare_ns"], result["runtrace_ns"], result["ratio"]
    kind = "generic events" if args.generic else "text deltas"
    print(f"{args.runs} runs x {len(workload(args.generic))} events ({kind}), {args.rounds} rounds")
    print(f"  bare OpenTelemetry   {bare / 1e3:7.2f} µs/event   1.00x")
    print(f"  Runtrace             {ours / 1e3:7.2f} µs/event {ratio:6.2f}x   (target 1.5x)")


if __name__ == "__main__":
    main()
