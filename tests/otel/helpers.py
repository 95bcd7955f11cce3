"""Shared set-ups of the otel tests: providers with runtrace on them, a recording hook and sink,
plain OpenTelemetry agent spans, and one event of each type."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtrace import RunHooks, RunSnapshot, RunSpanProcessor, RunStore, Runtrace
from runtrace.demo import DemoResult, PlannedRun
from runtrace.events import BaseEvent
from runtrace.runs import RunEventRecord


class Recorder(RunHooks):
    """A hook that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_run_start(self, snapshot: RunSnapshot) -> None:
        self.calls.append(("on_run_start", snapshot.id))

    def on_event(self, event: BaseEvent, run_id: str, session_id: str) -> None:
        self.calls.append(("on_event", (event.type, run_id, session_id)))

    def on_run_cancelled(self, run_id: str, session_id: str, reason: str) -> None:
        self.calls.append(("on_run_cancelled", (run_id, session_id, reason)))

    def on_run_end(self, snapshot: RunSnapshot) -> None:
        self.calls.append(("on_run_end", snapshot))

    def named(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]


class ListSink:
    """A sink that keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.shutdowns: list[int] = []

    def on_run(self, snapshot: RunSnapshot) -> None:
        self.calls.append(("run", snapshot))

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        self.calls.append(("event", (snapshot, record)))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.calls.append(("flush", timeout_millis))
        return True

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        self.shutdowns.append(timeout_millis)


class Setup:
    """``Runtrace`` on an SDK provider with an in-memory exporter and a :class:`Recorder` hook;
    keywords other than ``span_limits`` and ``hooks`` go to the :class:`RunSpanProcessor`."""

    def __init__(self, **kwargs: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(span_limits=kwargs.pop("span_limits", None))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.hook = Recorder()
        hooks = [self.hook, *kwargs.pop("hooks", ())]
        self.rt = Runtrace(self.provider, RunSpanProcessor(hooks=hooks, **kwargs))

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def run_span(self, run_id: str) -> ReadableSpan:
        (span,) = [
            s
            for s in self.exporter.get_finished_spans()
            if s.attributes is not None
            and s.attributes.get("runtrace.run.id") == run_id
            and s.attributes.get("runtrace.span.kind") == "run"
        ]
        return span


def agent_span_attributes(**extra: Any) -> dict[str, Any]:
    """What GenAI instrumentation puts on an ``invoke_agent`` span it starts."""
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "coder",
        "gen_ai.conversation.id": "conv-1",
        **extra,
    }


class Plain:
    """A provider with a RunSpanProcessor (and a :class:`ListSink`) and an in-memory exporter,
    used with plain OpenTelemetry code: no ``Runtrace``, so no tracer for child spans."""

    def __init__(self, **kwargs: Any) -> None:
        self.sink = ListSink()
        self.processor = RunSpanProcessor(RunStore(), sinks=[self.sink], **kwargs)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("agent")

    @property
    def store(self) -> RunStore:
        return self.processor.store

    def agent_span(self) -> Any:
        """A plain OpenTelemetry invoke_agent span, as GenAI instrumentation would start it."""
        return self.tracer.start_as_current_span("invoke_agent", attributes=agent_span_attributes())

    def only_run(self) -> RunSnapshot:
        (run,) = self.store.list()
        return run

    def span(self, name: str) -> ReadableSpan:
        (span,) = [s for s in self.exporter.get_finished_spans() if s.name == name]
        return span


def otlp_runtrace(endpoint: str) -> tuple[TracerProvider, Runtrace]:
    """Runtrace on a provider that also exports every span with the standard OTLP/HTTP
    exporter (batched, as in production) to ``endpoint``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    rt = Runtrace(provider)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=2)))
    return provider, rt


def find_planned(
    demo: DemoResult, outcome: str, need_children: bool = False
) -> tuple[str, PlannedRun]:
    """A run of the demo database with ``outcome`` (and tool calls, if asked) and its plan."""
    for run_id, planned in zip(demo.run_ids, demo.workload.runs, strict=True):
        children = any(e["type"] == "tool_start" for _, e in planned.events)
        if planned.outcome == outcome and (children or not need_children):
            return run_id, planned
    raise AssertionError(f"the demo has no {outcome} run")


def stored_run(con: Any, run_id: str) -> dict[str, Any]:
    """The ``runs`` row of ``run_id`` in a database connection, as a dict."""
    rows = con.sql("SELECT * FROM runs WHERE run_id = $id", params={"id": run_id}).to_arrow_table()
    row: dict[str, Any] = rows.to_pylist()[0]
    return row
