"""Shared pieces of the receiver's tests: a collecting span processor that can be made slow,
the sender subprocess, waiting for a condition (bounded, never a timed assertion), and
hand-built OTLP protobuf requests."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from runtrace.serve import LogItem

SENDER = Path(__file__).with_name("sender.py")
AGENT = Path(__file__).with_name("agent.py")
READER = Path(__file__).with_name("reader.py")


class Collector(SpanProcessor):
    """Keeps every span and log record handed to it. Clearing ``gate`` makes it stall (a slow
    ingest) until set again; ``entered`` is set once a span arrived."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.logs: list[LogItem] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.flushed = 0
        self.shut_down = False

    def on_end(self, span: ReadableSpan) -> None:
        self.entered.set()
        self.gate.wait(60)
        with self.lock:
            self.spans.append(span)

    def on_logs(self, records: Sequence[LogItem]) -> None:
        with self.lock:
            self.logs.extend(records)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self.flushed += 1
        return True

    def shutdown(self) -> None:
        self.shut_down = True

    def span_ids(self) -> list[int]:
        with self.lock:
            return [s.context.span_id for s in self.spans if s.context is not None]


def run_sender(*args: str, check: bool = True) -> dict[str, Any]:
    """Run sender.py in another process; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(SENDER), *args], capture_output=True, text=True, timeout=180
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout) if done.returncode == 0 else {"stderr": done.stderr}


def run_agent(*args: str) -> dict[str, Any]:
    """Run agent.py in another process to its end; its JSON report."""
    done = subprocess.run(
        [sys.executable, str(AGENT), *args], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


class Reader:
    """Reads databases from another process, as a reader of a file the server (in this
    process) writes must: ``runs(path)``, every run in it as agent.describe has it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(READER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def runs(self, path: str | Path) -> dict[str, dict[str, Any]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise AssertionError(f"the reader stopped: {self.process.communicate()[1][-3000:]}")
        runs: dict[str, dict[str, Any]] = json.loads(line)
        return runs

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


class StepAgent:
    """agent.py in another process, driven step by step: ``step()`` reads where it is,
    ``go()`` lets it on, ``result()`` waits for its report."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(AGENT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def step(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the agent stopped: {self.stderr()}")
        return json.loads(line)

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        out, err = self.process.communicate(timeout=180)
        assert self.process.returncode == 0, err[-3000:]
        return json.loads(out.splitlines()[-1])

    def stderr(self) -> str:
        self.process.kill()
        _, err = self.process.communicate(timeout=30)
        return err[-3000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until ``condition()``; fail naming ``what`` if it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def as_json(value: Any) -> Any:
    """What ``value`` looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value))


NOW_NS = time.time_ns()
TRACE_ID = bytes(range(1, 17))


def pb_span(
    span_id: int = 1,
    *,
    trace_id: bytes = TRACE_ID,
    name: str = "span",
    start: int = NOW_NS - 2_000_000,
    end: int = NOW_NS - 1_000_000,
    **fields: Any,
) -> Span:
    """A protobuf span with valid ids and times unless told otherwise."""
    return Span(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big") if isinstance(span_id, int) else span_id,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        **fields,
    )


def traces_request(
    *spans: Span, resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    """One resource, one scope, these spans."""
    attributes = [KeyValue(key=k, value=any_value(v)) for k, v in (resource or {}).items()]
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=PbResource(attributes=attributes),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="test"), spans=list(spans))
                ],
            )
        ]
    )


def any_value(value: Any) -> AnyValue:
    """A plain Python value as an OTLP AnyValue (dicts become kvlists, bytes bytes)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        pairs = [KeyValue(key=k, value=any_value(v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    if value is None:
        return AnyValue()
    raise TypeError(f"no AnyValue for {type(value).__name__}")


def attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]
