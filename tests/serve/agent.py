"""An agent process for the DuckDB ingest's tests: runs recorded through runtrace (and a real
pydantic-ai agent on the same provider), exported over OTLP by the SDK's own exporters, with
pending spans (``AnnounceSink``). It prints, as JSON, its in-process store's records, so the test
can compare them with what the receiver wrote into its file.

    python agent.py runs  --protocol http,json,grpc --endpoint URL,URL,GRPC_URL
    python agent.py live  --protocol http --endpoint URL [--runtrace-only]   (steps on stdio)
    python agent.py burst --protocol http|grpc --endpoint URL --runs N [--pause S]

``runs``: a completed run with tools and tokens, a failed one, a cancelled one, one with 300
events, and a pydantic-ai run (TestModel, two tools), over each protocol given. ``live``: a
runtrace run left open until the test says "go", then a pydantic-ai run whose tool waits for "go"
too; each step prints one JSON line. ``burst``: N small runs (``--pause`` seconds apart),
exported as fast as the SDK can; its report also says when each export returned, how, and the
runs whose span it carried.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from runtrace import RunCancelled, RunSpanProcessor, RunStore, Runtrace
from runtrace.otel import AnnounceSink
from runtrace.runs import RunRecord


def _exporter(protocol: str, endpoint: str) -> SpanExporter:
    if protocol == "json":
        from sender import JsonSpanExporter  # beside this script

        return JsonSpanExporter(f"{endpoint}/v1/traces")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc(endpoint=endpoint.removeprefix("http://"), insecure=True, timeout=60)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    return Http(endpoint=f"{endpoint}/v1/traces", timeout=60)


class Logged(SpanExporter):
    """The exporter, noting when each export returned, how, and the runs whose span it held."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.exports: list[tuple[float, str, list[str]]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        runs = [
            str((s.attributes or {})["runtrace.run.id"])
            for s in spans
            if (s.attributes or {}).get("runtrace.span.kind") == "run"
        ]
        self.exports.append((time.time(), result.name, runs))
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class Agent:
    """runtrace on a provider exporting over OTLP, announcing its runs."""

    def __init__(self, protocol: str, endpoint: str, args: argparse.Namespace) -> None:
        resource = Resource.create({"service.name": "agent-test"})
        self.provider = TracerProvider(resource=resource)
        self.exporter = Logged(_exporter(protocol, endpoint))
        self.provider.add_span_processor(
            BatchSpanProcessor(
                self.exporter,
                schedule_delay_millis=50,
                max_export_batch_size=args.batch_size,
                max_queue_size=1_000_000,  # nothing dropped here while the server is away
            )
        )
        self.store = RunStore()
        tracer = self.provider.get_tracer("runtrace.announce")
        sinks = [] if args.no_announce else [AnnounceSink(tracer, every_events=16)]
        self.rt = Runtrace(self.provider, RunSpanProcessor(self.store, sinks=sinks))

    def flush(self) -> None:
        self.rt.processor.force_flush()  # pending spans for what waits...
        if not self.provider.force_flush(60_000):  # ...and every span, sent
            raise SystemExit("the exporter did not flush")

    def records(self) -> list[dict[str, Any]]:
        return [describe(r) for r in self.store.records()]


def describe(record: RunRecord) -> dict[str, Any]:
    """What a round trip must keep of a run (shared with the tests' receiving side)."""
    s = record.snapshot
    return {
        "id": s.id,
        "session_id": s.session_id,
        "agent_name": s.agent_name,
        "status": s.status.value,
        "error": s.error,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "ended": s.ended_at_ms is not None,
        "events": [[e.sequence, e.event.type] for e in record.events],
    }


def _completed(rt: Runtrace) -> None:
    with rt.start_run("sess-a", "plan a trip", agent_name="planner", team="blue") as run:
        run.record({"type": "agent_start", "prompt": "plan a trip"})
        run.record({"type": "planning_start", "prompt": "plan it"})
        run.record({"type": "planning_end", "plan": [{"step": 1}], "estimated_steps": 1})
        run.record({"type": "turn_start", "turn": 1})
        run.record(
            {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 30, "completion_tokens": 7}}
        )
        run.record({"type": "tool_start", "id": "t1", "name": "search"})
        run.record({"type": "tool_end", "id": "t1", "name": "search", "output": "", "exit_code": 0})
        run.record({"type": "tool_start", "id": "t2", "name": "bash"})
        run.record({"type": "tool_end", "id": "t2", "name": "bash", "output": "", "exit_code": 1})
        run.record({"type": "agent_end", "text": "booked"})


def _failed(rt: Runtrace) -> None:
    try:
        with rt.start_run("sess-a", "fail", agent_name="planner") as run:
            run.record({"type": "agent_start", "prompt": "fail"})
            run.record({"type": "tool_start", "id": "t3", "name": "bash"})
            raise ValueError("disk full")
    except ValueError:
        pass


def _cancelled(rt: Runtrace) -> None:
    try:
        with rt.start_run("sess-b", "stop me", agent_name="coder") as run:
            run.record({"type": "agent_start", "prompt": "stop me"})
            run.record({"type": "turn_start", "turn": 1})
            run.cancel("user pressed stop")
            run.raise_if_cancelled()
    except RunCancelled:
        pass


def _long(rt: Runtrace, events: int = 300) -> None:
    with rt.start_run("sess-b", "long", agent_name="coder") as run:
        run.record({"type": "agent_start", "prompt": "long"})
        for turn in range(1, events // 2):
            run.record({"type": "turn_start", "turn": turn})
            usage = {"prompt_tokens": turn, "completion_tokens": 1}
            run.record({"type": "turn_end", "turn": turn, "usage": usage})
        run.record({"type": "agent_end", "text": "finally"})


def _pydantic_ai(provider: TracerProvider, waiting: Agent | None = None) -> None:
    """A real pydantic-ai run on ``provider``; with ``waiting``, its first tool call flushes
    and waits for the test's "go"."""
    from pydantic_ai import Agent as PydanticAgent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    helper: Any = PydanticAgent(TestModel(), name="helper")
    helper.instrument = InstrumentationSettings(tracer_provider=provider)

    @helper.tool_plain
    def lookup(city: str) -> str:
        """The weather in a city."""
        if waiting is not None:
            waiting.flush()  # the first model call is out: the run should show already
            step("framework waiting")
        return f"sunny in {city}"

    @helper.tool_plain
    def clock() -> str:
        """The time."""
        return "noon"

    helper.run_sync("what is the weather?")


def step(name: str, **data: Any) -> None:
    """Say where the agent is, and wait for the test's "go"."""
    print(json.dumps({"step": name, **data}), flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the test did not say go")


def runtrace_runs(rt: Runtrace) -> None:
    """Completed (with tools and tokens), failed, cancelled, and one of 300 events."""
    _completed(rt)
    _failed(rt)
    _cancelled(rt)
    _long(rt)


def runs(agent: Agent) -> dict[str, Any]:
    runtrace_runs(agent.rt)
    _pydantic_ai(agent.provider)
    agent.flush()
    return {"runs": agent.records()}


def live(agent: Agent, framework: bool) -> dict[str, Any]:
    handle = agent.rt.begin_run("sess-live", "keep going", agent_name="worker")
    handle.record({"type": "agent_start", "prompt": "keep going"})
    for turn in range(1, 4):
        handle.record({"type": "turn_start", "turn": turn})
    agent.flush()
    step("runtrace open", run_id=handle.id, records=agent.records())
    handle.record({"type": "tool_start", "id": "t1", "name": "bash"})
    handle.record({"type": "agent_end", "text": "done"})
    handle.end()
    agent.flush()
    step("runtrace ended", records=agent.records())
    if framework:
        _pydantic_ai(agent.provider, waiting=agent)
        agent.flush()
    return {"runs": agent.records()}


def burst(agent: Agent, count: int, pause: float) -> dict[str, Any]:
    for i in range(count):
        time.sleep(pause)
        with agent.rt.start_run(f"sess-{i % 7}", agent_name="burst") as run:
            run.record({"type": "agent_start", "prompt": f"run {i}"})
            run.record({"type": "tool_start", "id": f"t{i}", "name": "bash"})
            end = {"type": "tool_end", "id": f"t{i}", "name": "bash", "output": "", "exit_code": 0}
            run.record(end)
            run.record({"type": "agent_end", "text": "ok"})
    agent.flush()
    return {"runs": agent.records(), "exports": agent.exporter.exports}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["runs", "live", "burst"])
    parser.add_argument("--protocol", required=True, help="http, grpc or json; runs: a list")
    parser.add_argument("--endpoint", required=True, help="its endpoint; runs: one each")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds before each run")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--no-announce", action="store_true", help="no AnnounceSink")
    parser.add_argument("--runtrace-only", action="store_true", help="live: no pydantic-ai run")
    args = parser.parse_args()
    protocols, endpoints = args.protocol.split(","), args.endpoint.split(",")
    if args.mode == "runs":  # the same runs over each protocol, on a provider each
        agents = [Agent(p, e, args) for p, e in zip(protocols, endpoints, strict=True)]
        result = {"runs": [r for agent in agents for r in runs(agent)["runs"]]}
    else:
        agents = [Agent(protocols[0], endpoints[0], args)]
        if args.mode == "live":
            result = live(agents[0], framework=not args.runtrace_only)
        else:
            result = burst(agents[0], args.runs, args.pause)
    for agent in agents:
        agent.provider.shutdown()
    json.dump(result, sys.stdout)
    print(flush=True)


if __name__ == "__main__":
    main()
