"""Real SDK spans for the translator's tests, fed to a RunAssembler in both orders it meets.

``Traced`` is a TracerProvider with an in-memory exporter and, in-process, an assembler fed from
``on_start``/``on_end`` like the processor does. ``replay`` feeds the exported spans (or any
subset, in any order) to a fresh assembler as the OTLP receiver does: ended spans only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from runtrace.events import parse_event
from runtrace.otel.processor import RunSpanProcessor
from runtrace.otel.translate import RunAssembler, StoreTarget
from runtrace.runs import RunSnapshot
from runtrace.store import RunStore

T0 = 1_767_225_600_000_000_000  # 2026-01-01 in epoch ns: span times are given, never "now"
MS = 1_000_000


def at(ms: int) -> int:
    """``ms`` milliseconds after T0, in epoch ns."""
    return T0 + ms * MS


class Feed(SpanProcessor):
    """What the processor does with the assembler: every span's start and end."""

    def __init__(self, assembler: RunAssembler) -> None:
        self.assembler = assembler

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.assembler.on_start(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.assembler.on_end(span)


class Assembled:
    """A store and the assembler filling it."""

    def __init__(self, *, max_held: int = 100_000) -> None:
        self.store = RunStore()
        self.assembler = RunAssembler(StoreTarget(self.store), max_held=max_held)

    def runs(self) -> list[RunSnapshot]:
        return self.store.list()

    def run(self, agent_name: str | None = None) -> RunSnapshot:
        """The one run (of ``agent_name``, if given)."""
        found = [r for r in self.runs() if agent_name is None or r.agent_name == agent_name]
        assert len(found) == 1, [(r.id, r.agent_name) for r in self.runs()]
        return found[0]

    def types(self, run_id: str) -> list[str]:
        return [record.event.type for record in self.store.events(run_id)]

    def events(self, run_id: str, event_type: str) -> list[dict[str, Any]]:
        return [
            record.event.model_dump()
            for record in self.store.events(run_id)
            if record.event.type == event_type
        ]

    def check_events(self) -> None:
        """Every stored event is its core class again when parsed from its own dump."""
        for run in self.runs():
            for record in self.store.events(run.id):
                again = parse_event(record.event.model_dump())
                assert type(again) is type(record.event)


class Processed(Assembled):
    """runtrace's span processor on the same provider: the in-process path users run."""

    def __init__(self) -> None:
        super().__init__()
        self.processor = RunSpanProcessor(self.store)


class Traced(Assembled):
    """A real provider whose spans feed an assembler in-process (``live``) and are exported."""

    def __init__(self, *, live: bool = True, max_held: int = 100_000) -> None:
        super().__init__(max_held=max_held)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.processed = Processed()
        if live:
            self.provider.add_span_processor(Feed(self.assembler))
            self.provider.add_span_processor(self.processed.processor)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("translate-tests")

    def start(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        parent: trace.Span | None = None,
        ms: int = 0,
    ) -> trace.Span:
        context = trace.set_span_in_context(parent) if parent is not None else Context()
        return self.tracer.start_span(
            name, context=context, attributes=dict(attributes or {}), start_time=at(ms)
        )

    def span(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        parent: trace.Span | None = None,
        ms: tuple[int, int] = (0, 1),
        status: StatusCode | tuple[StatusCode, str] | None = None,
        exception: BaseException | None = None,
    ) -> trace.Span:
        """A span that started and ended at ``ms`` (after T0)."""
        span = self.start(name, attributes, parent=parent, ms=ms[0])
        if exception is not None:
            span.record_exception(exception, timestamp=at(ms[1]))
        end(span, ms[1], status)
        return span

    def ended(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> ReadableSpan:
        """:meth:`span`, returned as the exporter got it."""
        self.span(name, attributes, **options)
        return self.spans()[-1]

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def replay(self, spans: Iterable[ReadableSpan] | None = None, **bounds: int) -> Assembled:
        """The exported spans fed to a fresh assembler in OTLP order, as one batch."""
        out = Assembled(**bounds)
        feed(out.assembler, self.spans() if spans is None else spans)
        return out


def end(
    span: trace.Span, ms: int, status: StatusCode | tuple[StatusCode, str] | None = None
) -> None:
    if isinstance(status, tuple):
        span.set_status(Status(status[0], status[1]))
    elif status is not None:
        span.set_status(Status(status))
    span.end(end_time=at(ms))


def feed(assembler: RunAssembler, spans: Iterable[ReadableSpan]) -> None:
    """One OTLP request's spans, then the batch's end."""
    for span in spans:
        assembler.on_end(span)
    assembler.end_batch()


def by_name(spans: Sequence[ReadableSpan], *names: str) -> list[ReadableSpan]:
    """The spans named ``names``, in that order."""
    table = {span.name: span for span in spans}
    return [table[name] for name in names]
