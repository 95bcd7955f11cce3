"""Replaying stored runs (runtrace.otel.replay): runs sent to a loopback OTLP/HTTP receiver, decoded
with opentelemetry-proto, arrive with their original ids, times, events, status and child spans;
requests are bounded and streamed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.trace.export import SpanExportResult
from otel.helpers import find_planned, stored_run
from otlp_receiver import Receiver, attributes

from runtrace import RuntraceError
from runtrace.demo import DemoResult
from runtrace.duckdb import load_records
from runtrace.errors import ForwardError
from runtrace.otel import forward_records, run_spans
from runtrace.runs import RunRecord


def test_a_cancelled_run_arrives_with_its_ids_times_events_and_status(
    receiver: Receiver, demo: DemoResult, demo_con: Any
) -> None:
    run_id, planned = find_planned(demo, "cancelled", need_children=True)
    stored = stored_run(demo_con, run_id)
    result = forward_records(load_records(demo.path, run_ids=[run_id]), receiver.endpoint)
    assert result.runs == 1
    roots = [s for s in receiver.spans if not s.parent_span_id]
    assert len(roots) == 1
    root = roots[0]
    assert root.trace_id.hex() == stored["trace_id"]
    assert root.span_id.hex() == stored["span_id"]
    assert root.name == f"invoke_agent {planned.agent_name}"
    assert root.start_time_unix_nano == stored["created_at_ms"] * 1_000_000
    assert root.end_time_unix_nano == stored["ended_at_ms"] * 1_000_000
    assert root.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert root.status.message == f"cancelled: {planned.cancel_reason}"
    attrs = attributes(root)
    assert attrs["runtrace.run.status"] == "cancelled"
    assert attrs["error.type"] == "cancelled"
    assert attrs["runtrace.run.id"] == run_id
    assert attrs["gen_ai.conversation.id"] == planned.session_id
    assert attrs["runtrace.run.event_count"] == len(planned.events)
    assert [e.name for e in root.events] == [e["type"] for _, e in planned.events]
    children = [s for s in receiver.spans if s.parent_span_id]
    assert len(children) == result.spans - 1
    assert {c.parent_span_id for c in children} == {root.span_id}
    assert {c.trace_id for c in children} == {root.trace_id}


def test_tool_calls_become_child_spans_with_their_outcome(
    receiver: Receiver, demo: DemoResult
) -> None:
    run_id, planned = find_planned(demo, "completed", need_children=True)
    forward_records(load_records(demo.path, run_ids=[run_id]), receiver.endpoint)
    tools = [e for _, e in planned.events if e["type"] == "tool_end"]
    subagents = [e for _, e in planned.events if e["type"] == "subagent_end"]
    children = [s for s in receiver.spans if s.parent_span_id]
    tool_spans = [s for s in children if s.name.startswith("execute_tool ")]
    assert len(tool_spans) == len(tools)
    assert len(children) == len(tools) + len(subagents)
    failed = [t for t in tools if t["exit_code"] != 0]
    errored = [s for s in tool_spans if s.status.code == ProtoStatus.STATUS_CODE_ERROR]
    assert len(errored) == len(failed)
    assert all(s.start_time_unix_nano <= s.end_time_unix_nano for s in children)
    root = next(s for s in receiver.spans if not s.parent_span_id)
    assert root.status.code == ProtoStatus.STATUS_CODE_OK
    assert len(root.events) == len(planned.events)  # no 128-event cap on replay


def test_a_run_stored_without_ids_gets_stable_derived_ones(demo: DemoResult) -> None:
    run_id, _ = find_planned(demo, "completed", need_children=True)
    (stored,) = load_records(demo.path, run_ids=[run_id])
    bare = stored.model_copy(
        update={"snapshot": stored.snapshot.model_copy(update={"trace_id": None, "span_id": None})}
    )
    first, again = run_spans(bare), run_spans(bare)
    assert [s.context.span_id for s in first] == [s.context.span_id for s in again]
    assert first[0].parent is None and first[0].context.trace_id != 0
    assert {s.context.trace_id for s in first} == {first[0].context.trace_id}
    assert [s.parent for s in first[1:]] == [first[0].context] * (len(first) - 1)


class _Recorder:
    """An exporter that keeps each export call's spans and accepts the first ``accept`` calls."""

    def __init__(self, accept: int | None = None) -> None:
        self.batches: list[list[Any]] = []
        self.accept = accept
        self.shut_down = False

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self.accept is not None and len(self.batches) >= self.accept:
            return SpanExportResult.FAILURE
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut_down = True


def test_requests_are_split_to_bound_their_size(demo: DemoResult) -> None:
    recorder = _Recorder()
    result = forward_records(
        load_records(demo.path), "http://127.0.0.1:9/v1/traces", exporter=recorder
    )
    assert len(recorder.batches) >= demo.workload.expected.events // 20_000
    assert len(recorder.batches) >= demo.workload.expected.runs // 100
    roots = [s for batch in recorder.batches for s in batch if s.parent is None]
    assert len(roots) == result.runs == demo.workload.expected.runs
    assert result.spans == sum(len(batch) for batch in recorder.batches)
    for batch in recorder.batches:
        batch_roots = [s for s in batch if s.parent is None]
        events = sum(len(s.events) for s in batch_roots)
        assert len(batch_roots) <= 100
        assert events <= 20_000 or len(batch_roots) == 1
    assert not recorder.shut_down  # an exporter passed in stays the caller's


def test_a_refused_request_says_how_many_runs_were_sent(demo: DemoResult) -> None:
    records = load_records(demo.path)
    recorder = _Recorder(accept=1)
    with pytest.raises(ForwardError) as info:
        forward_records(records, "http://127.0.0.1:9/v1/traces", exporter=recorder)
    sent = sum(1 for s in recorder.batches[0] if s.parent is None)
    assert isinstance(info.value, RuntraceError)
    assert info.value.runs_sent == sent > 0
    message = str(info.value)
    assert (
        "did not accept the spans" in message and f"({sent} runs sent before it failed)" in message
    )
    assert len(message.splitlines()) == 1


def test_records_are_consumed_one_request_at_a_time(demo: DemoResult) -> None:
    """A generator is read lazily: requests go out before it is exhausted (a big file streams)."""
    records = load_records(demo.path)
    recorder = _Recorder()

    def stream() -> Iterator[RunRecord]:
        for i, record in enumerate(records):
            if i == 150:
                assert len(recorder.batches) == 1
            yield record

    result = forward_records(stream(), "http://127.0.0.1:9/v1/traces", exporter=recorder)
    assert result.runs == len(records)


def test_replayed_runs_come_from_one_service_instance(demo: DemoResult) -> None:
    records = load_records(demo.path)[:5]
    instances = {
        span.resource.attributes.get("service.instance.id")
        for record in records
        for span in run_spans(record)
    }
    assert len(instances) == 1 and None not in instances
