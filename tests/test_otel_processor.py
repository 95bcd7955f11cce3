"""RunSpanProcessor with plain OpenTelemetry code: run detection, event pickup, sinks, faults."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from runtrace.otel import RunSpanProcessor, Runtrace, current_run, record_event
from runtrace.otel.processor import SPAN_EVENTS_DROPPED, UNPARSED_SPAN_EVENT
from runtrace.runs import RunEventRecord, RunSnapshot, RunStatus
from runtrace.sinks.base import RunSink
from runtrace.store import RunStore


class ListSink:
    """A sink that keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.shutdowns = 0

    def on_run(self, snapshot: RunSnapshot) -> None:
        self.calls.append(("run", snapshot))

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        self.calls.append(("event", (snapshot, record)))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.calls.append(("flush", timeout_millis))
        return True

    def shutdown(self) -> None:
        self.shutdowns += 1


class Plain:
    """A provider with a RunSpanProcessor and an in-memory exporter, used with plain OTel."""

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


@pytest.fixture
def plain() -> Iterator[Plain]:
    setup = Plain()
    yield setup
    setup.provider.shutdown()


def agent_span_attributes(**extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "coder",
        "gen_ai.conversation.id": "conv-1",
        **extra,
    }


def test_list_sink_is_a_run_sink() -> None:
    assert isinstance(ListSink(), RunSink)


def test_plain_invoke_agent_span_becomes_a_run(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent coder", attributes=agent_span_attributes(team="core")
    ) as span:
        run = plain.only_run()
        assert run.status is RunStatus.CREATED
        assert run.session_id == "conv-1"
        assert run.agent_name == "coder"
        assert run.trace_id == format(span.get_span_context().trace_id, "032x")
        assert run.attributes["team"] == "core"
    exported = plain.span("invoke_agent coder")
    assert exported.attributes["runtrace.run.id"] == run.id
    final = plain.only_run()
    assert final.status is RunStatus.COMPLETED
    assert final.ended_at_ms is not None


def test_spans_that_are_not_runs_are_ignored(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "chat gpt-4", attributes={"gen_ai.operation.name": "chat"}
    ):
        pass
    with plain.tracer.start_as_current_span(
        "invoke_agent sub",
        attributes={"gen_ai.operation.name": "invoke_agent", "runtrace.span.kind": "subagent"},
    ):
        pass
    assert len(plain.store) == 0
    assert plain.sink.calls == []


def test_plain_run_without_conversation_id_uses_its_trace_as_session(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as span:
        trace_hex = format(span.get_span_context().trace_id, "032x")
    assert plain.only_run().session_id == trace_hex


def test_plain_run_keeps_a_given_run_id(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes(**{"runtrace.run.id": "run-mine"})
    ):
        pass
    assert plain.only_run().id == "run-mine"


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


def test_error_status_without_terminal_event_fails_the_plain_run(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        span.add_event("agent_start", {"prompt": "x"})
        span.set_status(Status(StatusCode.ERROR, "model timed out"))
    run = plain.only_run()
    assert run.status is RunStatus.FAILED
    assert run.error == "model timed out"


def test_exception_leaving_a_plain_span_fails_it_and_is_not_an_event(plain: Plain) -> None:
    with (
        pytest.raises(KeyError),
        plain.tracer.start_as_current_span("invoke_agent", attributes=agent_span_attributes()),
    ):
        raise KeyError("missing")
    run = plain.only_run()
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "KeyError" in run.error
    assert plain.store.events(run.id) == []


def test_error_status_after_agent_end_keeps_the_run_completed(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        span.add_event("agent_end", {"text": "done"})
        span.set_status(Status(StatusCode.ERROR, "late"))
    assert plain.only_run().status is RunStatus.COMPLETED


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


def test_sinks_get_run_changes_and_every_event_in_order(plain: Plain) -> None:
    rt = Runtrace(TracerProvider(), sinks=[plain.sink])
    with rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        run.record({"type": "turn_start", "turn": 1})
        run.cancel()
    kinds = [call for call, _ in plain.sink.calls]
    assert kinds == ["run", "event", "event", "run", "run"]
    created, *_, cancelled, ended = [args for call, args in plain.sink.calls if call == "run"]
    assert created.status is RunStatus.CREATED
    assert cancelled.status is RunStatus.CANCELLED and cancelled.ended_at_ms is None
    assert ended.status is RunStatus.CANCELLED and ended.ended_at_ms is not None
    snapshot, record = plain.sink.calls[2][1]
    assert (snapshot.event_count, record.sequence, record.event.type) == (2, 1, "turn_start")


def test_processor_flushes_and_shuts_down_its_sinks_once(plain: Plain) -> None:
    assert plain.processor.force_flush(1234) is True
    assert ("flush", 1234) in plain.sink.calls
    plain.provider.shutdown()
    plain.processor.shutdown()
    assert plain.sink.shutdowns == 1


class BrokenSink(ListSink):
    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        raise OSError("disk full")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise OSError("disk full")


def test_a_failing_sink_is_logged_and_never_breaks_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = BrokenSink()
    rt = Runtrace(TracerProvider(), sinks=[sink], raise_errors=False)
    with caplog.at_level(logging.ERROR, logger="runtrace.otel"), rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        run.record({"type": "agent_end", "text": "ok"})
    assert run.status() is RunStatus.COMPLETED
    assert rt.processor.force_flush() is False
    assert [r.message for r in caplog.records].count("runtrace: error in a sink's on_event") == 2
    assert [call for call, _ in sink.calls] == ["run", "run"]  # created, ended


def test_a_failing_sink_raises_under_pytest_by_default() -> None:
    rt = Runtrace(TracerProvider(), sinks=[BrokenSink()])
    with pytest.raises(OSError, match="disk full"), rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})


def test_cancelling_a_plain_run_sets_the_status_and_leaves_ending_to_its_owner(
    plain: Plain,
) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        run_id = plain.only_run().id
        assert plain.processor.current_run_id("conv-1") == run_id
        assert plain.processor.cancel(run_id, "stop") is True
        assert span.is_recording()  # still open: its `with` ends it
        assert plain.processor.live_run(run_id).token.cancelled  # type: ignore[union-attr]
    run = plain.only_run()
    assert run.status is RunStatus.CANCELLED
    exported = plain.span("invoke_agent")
    assert exported.status.description == "cancelled: stop"
    assert exported.attributes["runtrace.run.status"] == "cancelled"


def test_cancel_of_an_unknown_or_ended_run_is_false(plain: Plain) -> None:
    assert plain.processor.cancel("run-nope") is False
    with plain.agent_span():
        run_id = plain.only_run().id
    assert plain.processor.cancel(run_id) is False
    assert plain.processor.current_run_id("conv-1") is None


def test_processor_without_tracer_keeps_tool_calls_as_events_only(plain: Plain) -> None:
    with plain.agent_span():
        record_event({"type": "tool_start", "id": "t", "name": "bash"})
        record_event({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": 0})
    assert [s.name for s in plain.exporter.get_finished_spans()] == ["invoke_agent"]
    assert len(plain.store.events(plain.only_run().id)) == 2


def test_runs_from_two_providers_stay_apart() -> None:
    first, second = Plain(), Plain()
    with first.agent_span():
        record_event({"type": "agent_start", "prompt": "one"})
    with second.agent_span():
        record_event({"type": "agent_start", "prompt": "two"})
    assert first.only_run().prompt == "one"
    assert second.only_run().prompt == "two"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_plain_events_after_a_cancel_are_still_picked_up_once(plain: Plain) -> None:
    with plain.agent_span() as span:
        span.add_event("agent_start", {"prompt": "x"})
        run_id = plain.only_run().id
        assert plain.processor.cancel(run_id, "stop") is True
        assert plain.store.snapshot(run_id).event_count == 1  # type: ignore[union-attr]
        span.add_event("text_delta", {"text": "late"})
    assert [r.event.type for r in plain.store.events(run_id)] == ["agent_start", "text_delta"]
    assert plain.only_run().status is RunStatus.CANCELLED


def test_runtrace_shutdown_closes_its_sinks_but_not_the_provider() -> None:
    sink = ListSink()
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rt = Runtrace(provider, sinks=[sink])
    assert rt.force_flush(500) is True
    assert [call for call, _ in sink.calls] == ["flush"]  # through the provider
    rt.shutdown()
    rt.shutdown()
    assert sink.shutdowns == 1
    with provider.get_tracer("other").start_as_current_span("still exported"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["still exported"]


def test_begin_run_and_end_with_an_error_for_code_without_a_with_block() -> None:
    rt = Runtrace(TracerProvider())
    run = rt.begin_run("s", agent_name="cb")
    assert trace.get_current_span() is trace.INVALID_SPAN  # not made current
    run.record({"type": "agent_start", "prompt": "x"})
    final = run.end(TimeoutError("model took too long"))
    assert final.status is RunStatus.FAILED
    assert final.error == "TimeoutError: model took too long"
    assert run.end() == final  # ending twice changes nothing


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
