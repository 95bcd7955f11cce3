"""AnnounceSink: pending spans that show a run to an OTLP receiver while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtrace import RunSpanProcessor, Runtrace, SpanSettings
from runtrace.otel import AnnounceSink
from runtrace.otel.announce import PENDING_SPAN_NAME
from runtrace.otel.translate.runtrace import KIND_PENDING, read_pending


@dataclass
class Announcing:
    rt: Runtrace
    sink: AnnounceSink
    exporter: InMemorySpanExporter

    def pending(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == PENDING_SPAN_NAME]

    def run_span(self) -> ReadableSpan:
        spans = self.exporter.get_finished_spans()
        (span,) = [s for s in spans if (s.attributes or {}).get("runtrace.span.kind") == "run"]
        return span


def _announcing(
    every_events: int = 3, every_seconds: float = 0, settings: SpanSettings | None = None
) -> Announcing:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink = AnnounceSink(
        provider.get_tracer("announce"),
        every_events=every_events,
        every_seconds=every_seconds,
        settings=settings,
    )
    rt = Runtrace(provider, RunSpanProcessor(sinks=[sink], settings=settings))
    return Announcing(rt, sink, exporter)


@pytest.fixture
def announcing() -> Iterator[Announcing]:
    setup = _announcing()
    yield setup
    setup.rt.shutdown()


def test_a_run_announces_itself_at_start_as_a_child_of_its_span(announcing: Announcing) -> None:
    with announcing.rt.start_run("sess-1", "secret prompt", agent_name="bot", team="a") as run:
        (pending,) = announcing.pending()
        context = run.span.get_span_context()
    assert pending.parent is not None and pending.parent.span_id == context.span_id
    assert pending.context is not None and pending.context.trace_id == context.trace_id
    assert pending.attributes is not None
    assert dict(pending.attributes) == {
        "gen_ai.conversation.id": "sess-1",
        "gen_ai.agent.name": "bot",
        "runtrace.run.id": run.id,
        "runtrace.span.kind": KIND_PENDING,
        "team": "a",
    }
    assert pending.start_time == announcing.run_span().start_time // 1_000_000 * 1_000_000
    reading = read_pending(pending)
    assert reading is not None
    assert (reading.run_id, reading.session_id, reading.agent_name) == (run.id, "sess-1", "bot")
    assert reading.span_id == context.span_id and reading.end_ns is None
    assert reading.events == ()


def test_pending_spans_carry_each_event_once_encoded_as_on_the_run_span(
    announcing: Announcing,
) -> None:
    with announcing.rt.start_run("sess-1") as run:
        for turn in range(8):
            run.record({"type": "turn_start", "turn": turn})
        run.record({"type": "tool_start", "id": "c1", "name": "bash", "args": {"cmd": "ls"}})
        run.record({"type": "agent_end", "text": "done"})
    pending = announcing.pending()
    assert [len(p.events) for p in pending] == [0, 3, 3, 3]  # the start, then every 3 events
    announced = [e for p in pending for e in p.events]
    on_span = announcing.run_span().events
    assert [e.attributes for e in announced] == [e.attributes for e in on_span[:9]]
    assert [(e.name, e.timestamp // 1_000_000) for e in announced] == [
        (e.name, e.timestamp // 1_000_000) for e in on_span[:9]
    ]
    sequences = [e.sequence for p in pending for e in read_pending(p).events]  # type: ignore[union-attr]
    assert sequences == list(range(9))
    # The last event waits for the run span, which carries it: nothing after the end.
    assert on_span[9].attributes is not None
    assert on_span[9].attributes["runtrace.record.sequence"] == 9


def test_content_stays_off_pending_spans_unless_captured() -> None:
    off = _announcing(every_events=1)
    with off.rt.start_run("s", "my prompt") as run:
        run.record({"type": "agent_start", "prompt": "my prompt"})
    off.rt.shutdown()
    on = _announcing(every_events=1, settings=SpanSettings(capture_content=True))
    with on.rt.start_run("s", "my prompt") as run:
        run.record({"type": "agent_start", "prompt": "my prompt"})
    on.rt.shutdown()
    (off_event,) = off.pending()[1].events
    (on_event,) = on.pending()[1].events
    assert off_event.attributes is not None and on_event.attributes is not None
    assert "my prompt" not in [*off_event.attributes.values()]
    assert "runtrace.record.omitted" not in off_event.attributes  # required text: implied
    assert on_event.attributes["runtrace.event.prompt"] == "my prompt"
    for setup in (off, on):
        for pending in setup.pending():
            assert "runtrace.run.prompt" not in (pending.attributes or {})


def test_events_that_wait_every_seconds_are_sent_without_more_events() -> None:
    setup = _announcing(every_events=100, every_seconds=0.05)
    try:
        with setup.rt.start_run("sess-1") as run:
            run.record({"type": "turn_start", "turn": 1})
            deadline = time.monotonic() + 30
            while len(setup.pending()) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            (_, timed) = setup.pending()
            assert [e.name for e in timed.events] == ["turn_start"]
    finally:
        setup.rt.shutdown()


def test_force_flush_sends_what_waits_and_shutdown_stops_the_timer() -> None:
    setup = _announcing(every_events=100, every_seconds=3600)
    with setup.rt.start_run("sess-1") as run:
        run.record({"type": "turn_start", "turn": 1})
        assert len(setup.pending()) == 1
        setup.rt.processor.force_flush()
        assert [len(p.events) for p in setup.pending()] == [0, 1]
        setup.rt.processor.force_flush()  # nothing waits: nothing sent
        assert len(setup.pending()) == 2
    timers = [t for t in threading.enumerate() if t.name == "runtrace-announce"]
    assert timers
    setup.rt.shutdown()
    for timer in timers:
        timer.join(10)
    assert not any(t.is_alive() for t in timers)
    with setup.rt.start_run("sess-2") as run:  # shut down: nothing more is announced
        run.record({"type": "turn_start", "turn": 1})
    assert len(setup.pending()) == 2


def test_only_runtrace_runs_with_a_span_are_announced(announcing: Announcing) -> None:
    tracer = announcing.rt.tracer_provider.get_tracer("framework")  # type: ignore[attr-defined]
    with tracer.start_as_current_span(
        "invoke_agent helper", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as span:
        span.add_event("turn_start", {"runtrace.event.turn": 1})
    (run,) = announcing.rt.processor.store.list()  # a framework's run, adopted here...
    assert run.agent_name == "helper" and run.event_count > 0
    assert announcing.pending() == []  # ...which a receiver shows from the framework's spans


def test_events_after_the_end_are_not_announced(announcing: Announcing) -> None:
    with announcing.rt.start_run("sess-1") as run:
        pass
    for turn in range(5):
        run.record({"type": "turn_start", "turn": turn})  # the store still takes them
    assert len(run.events()) == 5
    assert [len(p.events) for p in announcing.pending()] == [0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"every_events": 0}, ValueError, "every_events must be from 1 to 128, not 0"),
        ({"every_events": 129}, ValueError, "every_events must be from 1 to 128, not 129"),
        ({"every_events": 2.5}, TypeError, "every_events must be an int, not float"),
        ({"every_seconds": -1}, ValueError, "every_seconds must be a number >= 0, not -1"),
        ({"every_seconds": float("nan")}, ValueError, "every_seconds must be a number >= 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    tracer = TracerProvider().get_tracer("x")
    with pytest.raises(error, match=message):
        AnnounceSink(tracer, **kwargs)  # type: ignore[arg-type]
