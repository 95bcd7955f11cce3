"""Plain span events picked up at a run span's end (runtrace.otel.pickup): recorded once, at
their own time, kept when they do not fit, and the ones the span dropped counted."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel.helpers import Plain, agent_span_attributes

from runtrace import RunStatus, Runtrace, current_run, record_event
from runtrace.otel import SPAN_EVENTS_DROPPED, UNPARSED_SPAN_EVENT


def test_plain_span_events_are_picked_up_at_span_end(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent coder", attributes=agent_span_attributes()
    ) as span:
        span.add_event("agent_start", {"runtrace.event.prompt": "fix the bug"})
        span.add_event("tool_start", {"gen_ai.tool.call.id": "t1", "gen_ai.tool.name": "bash"})
        span.add_event("tool_end", {"id": "t1", "name": "bash", "output": "ok", "exit_code": 0})
        span.add_event(
            "turn_end",
            {"turn": 1, "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 4},
        )
        span.add_event("agent_end", {"runtrace.event.text": "fixed"})
        assert plain.only_run().event_count == 0  # picked up at the end, not before
    run = plain.only_run()
    events = plain.store.events(run.id)
    assert [r.event.type for r in events] == [
        "agent_start",
        "tool_start",
        "tool_end",
        "turn_end",
        "agent_end",
    ]
    assert events[1].event.name == "bash"  # type: ignore[attr-defined]
    assert run.prompt == "fix the bug"
    assert run.status is RunStatus.COMPLETED
    assert run.result_text == "fixed"
    assert (run.input_tokens, run.output_tokens) == (12, 4)
    picked = [args for call, args in plain.sink.calls if call == "event"]
    assert [record.sequence for _, record in picked] == [0, 1, 2, 3, 4]


def test_picked_up_events_keep_their_span_event_time(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        span.add_event("agent_start", {"prompt": "x"}, timestamp=1_700_000_000_123_456_789)
    (record,) = plain.store.events(plain.only_run().id)
    assert record.timestamp_ms == 1_700_000_000_123


def test_plain_span_event_that_does_not_fit_is_kept_not_dropped(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        span.add_event("tool_start", {"gen_ai.tool.name": "bash"})  # no call id
        span.add_event("custom_note", {"note": "hello", "weights": (1, 2)})
    (bad, note) = [r.event for r in plain.store.events(plain.only_run().id)]
    assert bad.type == UNPARSED_SPAN_EVENT
    assert bad.name == "tool_start"  # type: ignore[attr-defined]
    assert bad.attributes == {"gen_ai.tool.name": "bash"}  # type: ignore[attr-defined]
    assert note.type == "custom_note"
    assert note.weights == [1, 2]  # type: ignore[attr-defined]


def test_record_event_works_on_a_plain_run_span_and_is_not_picked_up_twice(plain: Plain) -> None:
    with plain.agent_span():
        handle = current_run()
        assert handle is not None
        record_event({"type": "agent_start", "prompt": "p"})
        assert handle.snapshot().event_count == 1  # live, before the span ends
    run = plain.only_run()
    assert run.event_count == 1
    span = plain.span("invoke_agent")
    assert span.events[0].attributes["runtrace.record.sequence"] == 0


def test_plain_events_after_a_cancel_are_still_picked_up_once(plain: Plain) -> None:
    with plain.agent_span() as span:
        span.add_event("agent_start", {"prompt": "x"})
        run_id = plain.only_run().id
        assert plain.processor.cancel(run_id, "stop") is True
        assert plain.store.snapshot(run_id).event_count == 1  # type: ignore[union-attr]
        span.add_event("text_delta", {"text": "late"})
    assert [r.event.type for r in plain.store.events(run_id)] == ["agent_start", "text_delta"]
    assert plain.only_run().status is RunStatus.CANCELLED


# --- plain span events beyond the span's event limit ---------------------------------------------


def test_plain_events_the_span_dropped_are_counted_on_the_run(
    plain: Plain, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "runtrace.otel"), plain.agent_span() as span:
        for turn in range(200):  # the SDK keeps the last 128
            span.add_event("turn_start", {"turn": turn})
    run = plain.only_run()
    events = [r.event for r in plain.store.events(run.id)]
    assert events[0].type == SPAN_EVENTS_DROPPED
    assert events[0].count == 72  # type: ignore[attr-defined]
    assert [e.turn for e in events[1:]] == list(range(72, 200))  # type: ignore[attr-defined]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "lost 72 plain span event" in warnings[0].getMessage()


def test_lost_plain_events_are_reported_once_across_a_cancel_and_the_end(
    plain: Plain, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "runtrace.otel"), plain.agent_span() as span:
        for turn in range(130):
            span.add_event("turn_start", {"turn": turn})
        run_id = plain.only_run().id
        assert plain.processor.cancel(run_id, "stop") is True  # first pickup: 2 lost
        for turn in range(130, 140):  # evicts 10 picked-up ones: the store has them
            span.add_event("turn_start", {"turn": turn})
    events = [r.event for r in plain.store.events(run_id)]
    drops = [e for e in events if e.type == SPAN_EVENTS_DROPPED]
    assert [d.count for d in drops] == [2]  # type: ignore[attr-defined]
    assert [e.turn for e in events if e.type == "turn_start"] == list(range(2, 140))  # type: ignore[attr-defined]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_runtrace_events_the_span_dropped_are_not_reported_lost() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rt = Runtrace(provider)
    with rt.start_run("s") as run:
        for turn in range(150):
            run.record({"type": "turn_start", "turn": turn})
        trace.get_current_span().add_event("turn_end", {"turn": 149})  # a plain one, kept
    types = [r.event.type for r in run.events()]
    assert SPAN_EVENTS_DROPPED not in types
    assert types.count("turn_start") == 150
    assert types[-1] == "turn_end"
    (span,) = exporter.get_finished_spans()
    assert span.attributes["runtrace.run.span_dropped_events"] == 23
    provider.shutdown()
