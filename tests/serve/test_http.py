"""OTLP/HTTP: encodings, partial success, and every kind of bad request gets the spec's status
(with a google.rpc.Status body) while the server keeps serving."""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from serve.helpers import NOW_NS, Collector, pb_span, traces_request, wait_for
from starlette.testclient import TestClient

from runtrace.serve import BufferedIngest, Limits, Receiver, Server, create_app

PROTOBUF = {"Content-Type": "application/x-protobuf"}
GOOD = traces_request(pb_span(1), pb_span(2)).SerializeToString()


def _post(
    server: Server, body: bytes, headers: dict[str, str], path: str = "/v1/traces"
) -> httpx.Response:
    return httpx.post(server.url + path, content=body, headers=headers, timeout=30)


def _status(response: httpx.Response) -> status_pb2.Status:
    status = status_pb2.Status()
    if response.headers["content-type"].startswith("application/json"):
        json_format.Parse(response.text, status)
    else:
        status.ParseFromString(response.content)
    return status


def _still_serving(server: Server) -> None:
    response = _post(server, GOOD, PROTOBUF)
    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server(grpc_port=None)


@pytest.mark.parametrize(
    "encoding, compress",
    [("identity", lambda b: b), ("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_protobuf_bodies_are_taken_plain_gzipped_or_deflated(
    server: Server, collector: Collector, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    response = _post(server, compress(GOOD), {**PROTOBUF, "Content-Encoding": encoding})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    assert server.ingest.force_flush(10_000)
    assert sorted(collector.span_ids()) == [1, 2]


def test_otlp_json_as_in_the_specification_is_decoded_with_hex_ids(
    server: Server, collector: Collector
) -> None:
    # the shape of the OTLP specification's example: hex ids, int64 as strings, enum as an int
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "my.library", "version": "1.0.0"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "parentSpanId": "EEE19B7EC3C1B173",
                                "name": "I'm a server span",
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "kind": 2,
                                "attributes": [
                                    {"key": "my.span.attr", "value": {"stringValue": "some value"}},
                                    {"key": "big", "value": {"intValue": "9007199254740993"}},
                                ],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    body = gzip.compress(json.dumps(document).encode())
    response = _post(server, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert server.ingest.force_flush(10_000)
    [span] = collector.spans
    assert span.context is not None and span.parent is not None
    assert span.context.trace_id == 0x5B8EFFF798038103D269B633813FC60C
    assert span.context.span_id == 0xEEE19B7EC3C1B174
    assert span.parent.span_id == 0xEEE19B7EC3C1B173
    assert span.kind.name == "SERVER" and span.status.description == "boom"
    assert (span.start_time, span.end_time) == (1544712660000000000, 1544712661000000000)
    assert dict(span.attributes or {}) == {"my.span.attr": "some value", "big": 9007199254740993}
    assert span.resource.attributes["service.name"] == "my.service"
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.version == "1.0.0"


def test_malformed_spans_are_rejected_alone_in_partial_success(
    server: Server, collector: Collector
) -> None:
    request = traces_request(
        pb_span(1),
        pb_span(2, trace_id=bytes(16)),
        pb_span(3, start=10, end=20),
        pb_span(4, start=pb_span().end_time_unix_nano, end=pb_span().start_time_unix_nano),
    )
    response = _post(server, request.SerializeToString(), PROTOBUF)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 3
    assert "trace_id missing, zero or not 16 bytes" in partial.error_message
    assert "before 2000" in partial.error_message
    assert "end_time_unix_nano before start_time_unix_nano" in partial.error_message
    assert server.ingest.force_flush(10_000)
    assert collector.span_ids() == [1]
    assert server.receiver.metrics()["spans_rejected"] == 3


def test_partial_success_is_answered_in_json_for_json_requests(server: Server) -> None:
    document = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [{"traceId": "00" * 16, "spanId": "01" * 8, "name": "x"}]}]}
        ]
    }
    response = _post(server, json.dumps(document).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "trace_id" in partial["errorMessage"]


@pytest.mark.parametrize(
    "body, content_type, why",
    [
        (b"\xff\xff\xff\xff", "application/x-protobuf", "protobuf"),
        (GOOD[: len(GOOD) // 2], "application/x-protobuf", "protobuf"),
        (b"{not json", "application/json", "not JSON"),
        (b"[1, 2]", "application/json", "not a JSON object"),
        (b'{"resourceSpans": 5}', "application/json", "OTLP/JSON"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            "application/json",
            "traceId is not hex",
        ),
    ],
    ids=["garbage", "truncated", "bad-json", "json-array", "json-wrong-shape", "json-bad-hex"],
)
def test_a_body_that_does_not_decode_is_400_and_the_server_keeps_serving(
    server: Server, body: bytes, content_type: str, why: str
) -> None:
    response = _post(server, body, {"Content-Type": content_type})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(content_type)
    status = _status(response)
    assert status.code == code_pb2.INVALID_ARGUMENT and why in status.message
    _still_serving(server)
    assert server.receiver.metrics()["requests_refused"] == {"http 400": 1}


def test_other_content_types_and_encodings_are_415(server: Server) -> None:
    assert _post(server, GOOD, {"Content-Type": "text/plain"}).status_code == 415
    assert _post(server, GOOD, {**PROTOBUF, "Content-Encoding": "br"}).status_code == 415
    assert _post(server, GOOD, {}).status_code == 415
    _still_serving(server)
    assert server.receiver.metrics()["requests_refused"] == {"http 415": 3}


def _raw_response(sock: socket.socket) -> bytes:
    sock.settimeout(60)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_content_length_over_the_limit_is_413_before_the_body_is_read(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(grpc_port=None, limits=Limits(max_body_bytes=1000))
    with socket.create_connection(("127.0.0.1", server.port or 0)) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        assert _raw_response(sock).startswith(b"HTTP/1.1 413")
    _still_serving(server)


def test_a_streamed_body_over_the_limit_is_413(start_server: Callable[..., Server]) -> None:
    server = start_server(grpc_port=None, limits=Limits(max_body_bytes=1000))

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, counted as it arrives
        for _ in range(10):
            yield b"\x00" * 500

    response = httpx.post(server.url + "/v1/traces", content=chunks(), headers=PROTOBUF)
    assert response.status_code == 413
    assert "over the 1000 byte limit" in _status(response).message
    _still_serving(server)


def test_a_gzip_bomb_stops_at_the_decompressed_limit(
    start_server: Callable[..., Server], collector: Collector
) -> None:
    limit = 1024 * 1024
    server = start_server(grpc_port=None, limits=Limits(max_decompressed_bytes=limit))
    bomb = gzip.compress(b"\x00" * (64 * limit))  # about 64 KB that inflate to 64 MiB
    assert len(bomb) < limit
    response = _post(server, bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed body is over" in _status(response).message
    truncated = gzip.compress(GOOD)[:-10]
    response = _post(server, truncated, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 400 and "truncated" in _status(response).message
    _still_serving(server)
    assert server.ingest.force_flush(10_000)
    assert sorted(collector.span_ids()) == [1, 2]


def test_a_token_is_required_and_compared_as_a_bearer_credential(
    start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server(grpc_port=None, token="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        response = _post(server, GOOD, {**PROTOBUF, **headers})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert _status(response).code == code_pb2.UNAUTHENTICATED
    assert httpx.get(server.url + "/metrics").status_code == 401
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    response = _post(server, GOOD, {**PROTOBUF, "Authorization": "bearer s3cret"})
    assert response.status_code == 200
    metrics = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer s3cret"})
    assert metrics.json()["spans_received"] == 2
    assert metrics.json()["requests_refused"] == {"http 401": 4}
    assert server.ingest.force_flush(10_000) and len(collector.spans) == 2


def test_a_slow_client_holding_a_connection_does_not_stop_others_and_times_out(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(grpc_port=None, limits=Limits(body_timeout_s=1.0))
    with socket.create_connection(("127.0.0.1", server.port or 0)) as slow:
        slow.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 5000\r\n\r\n" + b"\x0a" * 10
        )
        _still_serving(server)  # served while the slow body is still owed
        assert _raw_response(slow).startswith(b"HTTP/1.1 408")
    _still_serving(server)
    assert server.receiver.metrics()["requests_refused"] == {"http 408": 1}


def test_a_full_queue_answers_429_with_retry_after_and_takes_nothing(
    start_server: Callable[..., Server], collector: Collector
) -> None:
    server = start_server(grpc_port=None, capacity=2, limits=Limits(retry_after_s=3))
    collector.gate.clear()
    assert _post(server, GOOD, PROTOBUF).status_code == 200
    wait_for(collector.entered.is_set, "the ingest to start on the first batch")
    response = _post(server, traces_request(pb_span(3)).SerializeToString(), PROTOBUF)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert _status(response).code == code_pb2.RESOURCE_EXHAUSTED
    collector.gate.set()
    assert server.ingest.force_flush(10_000)
    assert sorted(collector.span_ids()) == [1, 2]  # the refused span was not taken
    assert server.receiver.metrics()["spans_received"] == 2


def test_while_draining_exports_and_health_answer_503() -> None:
    ingest = BufferedIngest(Collector())
    app = create_app(Receiver(ingest, Limits()), draining=lambda: True)
    with TestClient(app) as client:
        response = client.post("/v1/traces", content=GOOD, headers=PROTOBUF)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert client.get("/health").status_code == 503
    ingest.shutdown()


def test_only_the_otlp_paths_and_methods_exist(server: Server) -> None:
    assert httpx.get(server.url + "/v1/traces").status_code == 405
    assert _post(server, GOOD, PROTOBUF, path="/v1/metrics").status_code == 404


def test_metrics_show_counters_queue_and_flush_lag(server: Server) -> None:
    _still_serving(server)
    metrics = httpx.get(server.url + "/metrics").json()
    assert metrics["spans_received"] == 2 and metrics["http_requests"] == 1
    assert metrics["queue_capacity"] == 65_536 and metrics["runs_open"] is None
    assert metrics["queue_depth"] >= 0 and metrics["flush_lag_ms"] >= 0


def test_log_records_to_an_ingest_without_a_log_path_are_rejected_in_partial_success() -> None:
    ingest = BufferedIngest(Collector())  # no on_logs
    with Server(ingest, port=0, grpc_port=None, log_interval_s=0) as server:
        request = ExportLogsServiceRequest()
        records = request.resource_logs.add().scope_logs.add().log_records
        records.append(LogRecord(time_unix_nano=NOW_NS))
        response = _post(server, request.SerializeToString(), PROTOBUF, path="/v1/logs")
        assert response.status_code == 200
        partial = ExportLogsServiceResponse.FromString(response.content).partial_success
        assert partial.rejected_log_records == 1
        assert "does not ingest log records" in partial.error_message
