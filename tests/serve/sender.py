"""An agent process for the receiver's tests: records spans and log records with the real
OpenTelemetry SDK and exports them to the receiver, then prints (as JSON) what it recorded, as the
SDK holds it in process, so the test can compare it with what the server decoded.

    python sender.py scenario --protocol http|grpc|json --endpoint URL [--token T]
    python sender.py burst --protocol http|grpc --endpoint URL --batches N --batch-size M
    python sender.py pydantic-ai --protocol http|grpc|json --endpoint URL

``scenario`` sends one fixed trace (every attribute kind, events, links, statuses, a remote
parent, an exception) and two log records. ``pydantic-ai`` sends what a real pydantic-ai agent
run (its offline TestModel, one tool) records. ``burst`` sends N batches of M spans through the
exporter's own retry logic and fails unless every export succeeded.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

RESOURCE = {"service.name": "sender-test", "deployment.environment": "test", "host.cpus": 2}


def describe(span: ReadableSpan) -> dict[str, Any]:
    """Everything a span carries, in JSON-able form (shared with the tests' receiving side)."""
    context = span.get_span_context()
    assert context is not None
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "trace_state": context.trace_state.to_header(),
        "parent_id": span.parent.span_id if span.parent else None,
        "parent_is_remote": span.parent.is_remote if span.parent else None,
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "status": [span.status.status_code.name, span.status.description],
        "attributes": _plain(span.attributes),
        "events": [[e.name, e.timestamp, _plain(e.attributes)] for e in span.events],
        "links": [
            [link.context.trace_id, link.context.span_id, _plain(link.attributes)]
            for link in span.links
        ],
        "resource": _plain(span.resource.attributes),
        "scope": [scope.name, scope.version] if scope else None,
        "dropped": [span.dropped_attributes, span.dropped_events, span.dropped_links],
    }


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attributes or {}).items()}


def describe_log(record: ReadableLogRecord) -> dict[str, Any]:
    log = record.log_record
    return {
        "trace_id": log.trace_id or 0,
        "span_id": log.span_id or 0,
        # the receiver's rule: the event_name field, else the event.name attribute
        "event_name": log.event_name or (log.attributes or {}).get("event.name", ""),
        "attributes": dict(log.attributes or {}),
        "body": log.body,
        "at_ns": log.timestamp or log.observed_timestamp,
        "severity_number": log.severity_number.value if log.severity_number else 0,
        "severity_text": log.severity_text or "",
        "resource": dict(record.resource.attributes),
    }


def _exporters(protocol: str, endpoint: str, token: str | None) -> tuple[Any, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else None
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return (
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=headers, timeout=30),
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", headers=headers, timeout=30),
        )
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
        OTLPLogExporter as GrpcLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcSpanExporter,
    )

    target = endpoint.removeprefix("http://")
    grpc_headers = tuple(headers.items()) if headers else None
    return (
        GrpcSpanExporter(endpoint=target, insecure=True, headers=grpc_headers, timeout=30),
        GrpcLogExporter(endpoint=target, insecure=True, headers=grpc_headers, timeout=30),
    )


def _hex_ids(document: Any) -> Any:
    """protobuf's JSON mapping writes ids in base64; OTLP/JSON wants hex."""
    if isinstance(document, list):
        return [_hex_ids(item) for item in document]
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                out[key] = base64.b64decode(value).hex()
            else:
                out[key] = _hex_ids(value)
        return out
    return document


def _post_json(url: str, message: Any, token: str | None) -> None:
    body = json.dumps(_hex_ids(json_format.MessageToDict(message))).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status}")
        json.loads(response.read() or b"{}")


class JsonSpanExporter(SpanExporter):
    """OTLP/JSON over HTTP, which the Python SDK has no exporter for: the SDK's own encoding,
    as protobuf's JSON mapping with hex ids, posted to ``url``."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            _post_json(self.url, encode_spans(spans), self.token)
        except (OSError, SystemExit):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def _record(tracer: trace.Tracer, logger: Any) -> None:
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    parent_context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    attributes = {
        "text": "hello ✓",
        "flag": True,
        "count": 7,
        "ratio": 0.25,
        "names": ["a", "b"],
        "numbers": [1, 2, 3],
        "floats": [0.5, 1.5],
        "flags": [True, False],
    }
    with tracer.start_as_current_span(
        "invoke_agent demo", context=parent_context, attributes=attributes
    ) as run:
        run.add_event("agent_start", {"prompt": "plan a trip", "runtrace.seq": 1})
        with tracer.start_as_current_span("chat model", kind=SpanKind.CLIENT) as chat:
            chat.set_attribute("gen_ai.usage.input_tokens", 12)
            chat.set_status(Status(StatusCode.OK))
        sibling = tracer.start_span("background", kind=SpanKind.PRODUCER)
        sibling.end()
        link = Link(sibling.get_span_context(), {"why": "spawned"})
        with tracer.start_as_current_span(
            "execute_tool search", kind=SpanKind.INTERNAL, links=[link]
        ) as tool:
            try:
                raise ValueError("no results")
            except ValueError as error:
                tool.record_exception(error)
                tool.set_status(Status(StatusCode.ERROR, "no results"))
            logger.emit(
                event_name="gen_ai.client.inference.operation.details",
                body={"role": "user", "parts": [{"type": "text", "content": "hi"}]},
                attributes={"gen_ai.operation.name": "chat"},
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
            )
        logger.emit(body="plain log line", attributes={"event.name": "note", "n": 3})
        run.add_event("agent_end", {"text": "done"})


def _pydantic_ai_run(tracer_provider: TracerProvider) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    agent: Any = Agent(TestModel(), name="helper")
    agent.instrument = InstrumentationSettings(tracer_provider=tracer_provider)

    @agent.tool_plain
    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    agent.run_sync("what is the weather?")


def scenario(args: argparse.Namespace) -> dict[str, Any]:
    resource = Resource.create(RESOURCE)
    memory = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    log_memory = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_memory))
    if args.mode == "pydantic-ai":
        _pydantic_ai_run(tracer_provider)
    else:
        tracer = tracer_provider.get_tracer("sender", "1.2")
        logger = logger_provider.get_logger("sender", "1.2")
        _record(tracer, logger)
    spans = memory.get_finished_spans()
    logs = log_memory.get_finished_logs()
    if args.protocol == "json":
        _post_json(f"{args.endpoint}/v1/traces", encode_spans(spans), args.token)
        if logs:
            _post_json(f"{args.endpoint}/v1/logs", encode_logs(logs), args.token)
    else:
        span_exporter, log_exporter = _exporters(args.protocol, args.endpoint, args.token)
        if span_exporter.export(spans) is not SpanExportResult.SUCCESS:
            raise SystemExit("span export failed")
        if logs and log_exporter.export(logs).name != "SUCCESS":
            raise SystemExit("log export failed")
        span_exporter.shutdown()
        log_exporter.shutdown()
    return {"spans": [describe(s) for s in spans], "logs": [describe_log(r) for r in logs]}


def burst(args: argparse.Namespace) -> dict[str, Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "burst"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("burst")
    span_exporter, _ = _exporters(args.protocol, args.endpoint, args.token)
    sent: list[int] = []
    for b in range(args.batches):
        memory.clear()
        for i in range(args.batch_size):
            with tracer.start_as_current_span(f"span {b}.{i}"):
                pass
        batch: Sequence[ReadableSpan] = memory.get_finished_spans()
        if span_exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise SystemExit(f"batch {b} was not delivered")
        sent.extend(s.context.span_id for s in batch if s.context is not None)
    span_exporter.shutdown()
    return {"sent": sent}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["scenario", "pydantic-ai", "burst"])
    parser.add_argument("--protocol", choices=["http", "grpc", "json"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token")
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    result = burst(args) if args.mode == "burst" else scenario(args)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
