"""runtrace's own spans, recorded by Runtrace "in another process" (its own provider) and fed to
an assembler as the OTLP receiver would: the same runs come out, ids, statuses and events."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel.translate.helpers import Assembled, Traced, at, feed

from runtrace import RunSpanProcessor, Runtrace, SpanSettings
from runtrace.otel.translate import read_span
from runtrace.otel.translate import runtrace as runtrace_dialect


class Origin:
    """Runtrace recording on a provider of its own, its spans exported."""

    def __init__(self, *, capture: bool = True, max_events: int | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        limits = SpanLimits(max_events=max_events) if max_events is not None else None
        self.provider = TracerProvider(span_limits=limits)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        processor = RunSpanProcessor(settings=SpanSettings(capture_content=capture))
        self.rt = Runtrace(self.provider, processor)

    def received(self) -> Assembled:
        out = Assembled()
        feed(out.assembler, self.exporter.get_finished_spans())
        return out


@pytest.fixture
def origin() -> Iterator[Origin]:
    setup = Origin()
    yield setup
    setup.provider.shutdown()


def dumps(out: Any, run_id: str) -> list[dict[str, Any]]:
    return [record.event.model_dump() for record in out.store.events(run_id)]


def record_run(origin: Origin) -> str:
    with origin.rt.start_run("sess-1", "fix the tests", agent_name="coder") as run:
        run.record({"type": "turn_start", "turn": 1})
        run.record({"type": "tool_start", "id": "t1", "name": "bash"})
        run.record({"type": "tool_end", "id": "t1", "name": "bash", "output": "ok", "exit_code": 0})
        run.record(
            {
                "type": "turn_end",
                "turn": 1,
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }
        )
        run.record({"type": "agent_end", "text": "fixed"})
        return run.id


def test_a_run_received_as_spans_is_the_same_run(origin: Origin) -> None:
    run_id = record_run(origin)
    sent = origin.rt.store.snapshot(run_id)
    out = origin.received()
    got = out.run()
    assert sent is not None
    assert (got.id, got.session_id, got.agent_name, got.status, got.result_text) == (
        sent.id,
        sent.session_id,
        sent.agent_name,
        sent.status,
        sent.result_text,
    )
    assert (got.input_tokens, got.output_tokens, got.prompt) == (12, 3, "fix the tests")
    assert dumps(out, run_id) == dumps(origin.rt, run_id)
    assert [r.timestamp_ms for r in out.store.events(run_id)] == [
        r.timestamp_ms for r in origin.rt.store.events(run_id)
    ]


def test_runtrace_child_spans_are_never_taken_for_foreign_tools(origin: Origin) -> None:
    run_id = record_run(origin)
    child = next(s for s in origin.exporter.get_finished_spans() if s.name == "execute_tool bash")
    assert read_span(child).role == "other"
    out = origin.received()
    assert out.types(run_id).count("tool_start") == 1  # from the run's events, not the child


def test_failed_and_cancelled_runs_keep_their_outcome(origin: Origin) -> None:
    with pytest.raises(RuntimeError), origin.rt.start_run("s", "p", agent_name="a"):
        raise RuntimeError("broke")
    handle = origin.rt.begin_run("s2", "p", agent_name="a")
    handle.cancel("stopped by user")
    handle.end()
    out = origin.received()
    by_session = {run.session_id: run for run in out.runs()}
    assert (by_session["s"].status.value, by_session["s"].error) == (
        "failed",
        "RuntimeError: broke",
    )
    assert (by_session["s2"].status.value, by_session["s2"].error) == (
        "cancelled",
        "stopped by user",
    )


def test_without_content_capture_ids_and_outcome_still_match(origin: Origin) -> None:
    quiet = Origin(capture=False)
    run_id = record_run(quiet)
    got = quiet.received().run()
    assert (got.id, got.status.value, got.prompt, got.result_text) == (run_id, "completed", "", "")
    quiet.provider.shutdown()


def test_events_the_span_dropped_are_counted_on_the_received_run() -> None:
    small = Origin(max_events=3)
    run_id = record_run(small)
    out = small.received()
    (lost,) = out.events(run_id, "span_events_dropped")
    assert lost["count"] == 2  # five events, the span kept three
    assert out.types(run_id)[:3] == ["tool_end", "turn_end", "agent_end"]
    small.provider.shutdown()


def test_own_run_spans_started_in_process_are_claimed_not_made(traced: Traced) -> None:
    traced.store.create_run("s", run_id="run-own")  # as the processor does for its own runs
    attrs = {"runtrace.span.kind": "run", "runtrace.run.id": "run-own", "gen_ai.agent.name": "a"}
    run = traced.start("invoke_agent a", attrs)
    traced.span("chat m", {"gen_ai.operation.name": "chat"}, parent=run, ms=(1, 2))
    run.end(end_time=at(3))
    (only,) = traced.runs()  # nothing made twice, nothing finished for the processor
    assert (only.id, only.status.value, only.ended_at_ms) == ("run-own", "executing", None)
    assert traced.types("run-own") == ["turn_start", "turn_end"]  # foreign children attach
    assert traced.assembler.stats.runs_claimed == 1


def test_a_reading_without_events_says_all_the_rest(origin: Origin) -> None:
    record_run(origin)
    span = next(s for s in origin.exporter.get_finished_spans() if s.name == "invoke_agent coder")
    full = runtrace_dialect.read(span)
    slim = runtrace_dialect.read(span, events=False)
    assert full is not None and slim is not None
    assert len(full.events) == 5 and slim.events == ()
    assert dataclasses.replace(full, events=()) == slim
