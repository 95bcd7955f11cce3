"""A small OTLP/HTTP traces endpoint on 127.0.0.1 for the tests, decoding with opentelemetry-proto,
so a test sees exactly what a tracing backend would receive."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class Receiver:
    """Keeps every span it is sent. ``hold`` cleared makes it stall (a slow backend) until set;
    ``arrived`` is set when a request comes in. Only ``/v1/traces`` answers 200."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.arrived.set()
                receiver.hold.wait(30)
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        receiver.spans.extend(scope_spans.spans)
                receiver.requests += 1
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.endpoint = f"{self.url}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans if s.name == name]


def attributes(span: Any) -> dict[str, Any]:
    """A protobuf span's (or span event's) attributes as a plain dict; arrays become tuples."""

    def plain(value: AnyValue) -> Any:
        kind = value.WhichOneof("value")
        if kind == "array_value":
            return tuple(plain(v) for v in value.array_value.values)
        return getattr(value, kind)

    return {kv.key: plain(kv.value) for kv in span.attributes}
