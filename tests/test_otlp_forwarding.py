"""Forwarding runs to an OTLP/HTTP backend with the standard exporter, beside RunSpanProcessor.

A small OTLP/HTTP receiver on 127.0.0.1 decodes the protobuf requests (opentelemetry-proto), so the
test sees exactly what a backend would: the run span, its events, child spans, cancelled status.
"""

from __future__ import annotations

import socket
import threading

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
pytest.importorskip("opentelemetry.proto")

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otlp_receiver import Receiver, attributes

from runtrace.otel import Runtrace
from runtrace.runs import RunStatus


def forwarding_runtrace(endpoint: str) -> tuple[TracerProvider, Runtrace]:
    provider = TracerProvider()
    rt = Runtrace(provider)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=2)))
    return provider, rt


def test_run_span_events_child_spans_and_cancel_arrive_over_otlp(receiver: Receiver) -> None:
    provider, rt = forwarding_runtrace(receiver.endpoint)
    with rt.start_run("sess-1", prompt="fix it", agent_name="coder") as run:
        run.record({"type": "agent_start", "prompt": "fix it"})
        run.record({"type": "tool_start", "id": "t1", "name": "bash"})
        run.record({"type": "tool_end", "id": "t1", "name": "bash", "output": "ok", "exit_code": 0})
        run.record(
            {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
        )
        run.record({"type": "agent_end", "text": "fixed"})
    with rt.start_run("sess-2", agent_name="coder") as stopped:
        stopped.record({"type": "agent_start", "prompt": "long job"})
        stopped.cancel("user pressed stop")
    assert rt.force_flush(10_000)
    provider.shutdown()

    runs = {attributes(s)["runtrace.run.id"]: s for s in receiver.named("invoke_agent coder")}
    done, cancelled = runs[run.id], runs[stopped.id]
    done_attrs = attributes(done)
    assert done_attrs["gen_ai.operation.name"] == "invoke_agent"
    assert done_attrs["gen_ai.conversation.id"] == "sess-1"
    assert done_attrs["gen_ai.usage.input_tokens"] == 7
    assert done_attrs["runtrace.run.event_count"] == 5
    assert done.status.code == ProtoStatus.STATUS_CODE_OK
    assert [e.name for e in done.events] == [
        "agent_start",
        "tool_start",
        "tool_end",
        "turn_end",
        "agent_end",
    ]
    assert attributes(done.events[1])["gen_ai.tool.name"] == "bash"
    assert "fix it" not in repr(done)  # content stays local by default
    assert done.trace_id.hex() == run.snapshot().trace_id
    assert done.span_id.hex() == run.snapshot().span_id

    (tool,) = receiver.named("execute_tool bash")
    assert tool.parent_span_id == done.span_id
    assert tool.trace_id == done.trace_id
    assert attributes(tool)["gen_ai.tool.call.id"] == "t1"

    assert cancelled.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert cancelled.status.message == "cancelled: user pressed stop"
    assert attributes(cancelled)["error.type"] == "cancelled"
    assert attributes(cancelled)["runtrace.run.status"] == "cancelled"


def test_stalled_backend_does_not_hold_up_the_agent(receiver: Receiver) -> None:
    receiver.hold.clear()  # the backend accepts requests and never answers, until released
    provider, rt = forwarding_runtrace(receiver.endpoint)
    finished = threading.Event()

    def agent() -> None:
        for n in range(3):
            with rt.start_run(f"s{n}") as run:
                run.record({"type": "agent_start", "prompt": "x"})
        finished.set()

    with rt.start_run("first") as first:
        first.record({"type": "agent_start", "prompt": "x"})
    # Wake the exporter thread and wait until its request is stuck inside the backend.
    flusher = threading.Thread(target=provider.force_flush, daemon=True)
    flusher.start()
    assert receiver.arrived.wait(30)
    worker = threading.Thread(target=agent)
    worker.start()
    worker.join(30)  # a liveness guard, not a speed check: export must not block the agent
    assert finished.is_set()
    assert receiver.requests == 0  # nothing answered yet: the runs finished without the backend
    assert [s.status for s in rt.store.list()] == [RunStatus.COMPLETED] * 4
    receiver.hold.set()
    provider.shutdown()
    assert receiver.requests >= 1


def test_dead_backend_never_breaks_the_agent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    provider, rt = forwarding_runtrace(f"http://127.0.0.1:{port}/v1/traces")
    with rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        run.record({"type": "agent_end", "text": "ok"})
    assert run.status() is RunStatus.COMPLETED
    assert run.snapshot().ended_at_ms is not None
    provider.shutdown()
    assert rt.store.events(run.id)[-1].event.type == "agent_end"
