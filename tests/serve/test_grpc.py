"""OTLP/gRPC with a plain grpcio client: partial success, the token, back-pressure with RetryInfo,
and oversized or undecodable messages, while the server keeps serving."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from serve.helpers import NOW_NS, Collector, attributes, pb_span, traces_request, wait_for

from runtrace.serve import Limits, Server


@pytest.fixture
def channel_to(start_server: Callable[..., Server]) -> Iterator[Callable[[Server], grpc.Channel]]:
    channels: list[grpc.Channel] = []

    def connect(server: Server) -> grpc.Channel:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        channels.append(channel)
        return channel

    yield connect
    for channel in channels:
        channel.close()


def _export(channel: grpc.Channel, request: ExportTraceServiceRequest, **kw: object) -> object:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    return stub.Export(request, timeout=30, **kw)


def test_malformed_spans_are_rejected_alone_in_partial_success(
    start_server: Callable[..., Server],
    channel_to: Callable[[Server], grpc.Channel],
    collector: Collector,
) -> None:
    server = start_server()
    request = traces_request(pb_span(1), pb_span(span_id=b""), pb_span(3, start=1, end=2))
    response = _export(channel_to(server), request)
    assert isinstance(response, ExportTraceServiceResponse)
    assert response.partial_success.rejected_spans == 2
    assert "span_id missing" in response.partial_success.error_message
    assert server.ingest.force_flush(10_000) and collector.span_ids() == [1]


def test_log_records_arrive_through_the_logs_service(
    start_server: Callable[..., Server],
    channel_to: Callable[[Server], grpc.Channel],
    collector: Collector,
) -> None:
    server = start_server()
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.append(
        LogRecord(time_unix_nano=NOW_NS, event_name="e", attributes=attributes({"n": 1}))
    )
    records.append(LogRecord())  # no time at all: rejected
    stub = logs_service_pb2_grpc.LogsServiceStub(channel_to(server))
    response = stub.Export(request, timeout=30)
    assert response.partial_success.rejected_log_records == 1
    assert server.ingest.force_flush(10_000)
    [item] = collector.logs
    assert item.event_name == "e" and dict(item.attributes) == {"n": 1}


def test_a_token_is_required_in_the_authorization_metadata(
    start_server: Callable[..., Server], channel_to: Callable[[Server], grpc.Channel]
) -> None:
    server = start_server(token="s3cret")
    channel = channel_to(server)
    request = traces_request(pb_span(1))
    for metadata in ((), (("authorization", "Bearer nope"),)):
        with pytest.raises(grpc.RpcError) as refused:
            _export(channel, request, metadata=metadata)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    _export(channel, request, metadata=(("authorization", "Bearer s3cret"),))
    assert server.receiver.metrics()["requests_refused"] == {"grpc UNAUTHENTICATED": 2}


def test_a_full_queue_is_resource_exhausted_with_retry_info(
    start_server: Callable[..., Server],
    channel_to: Callable[[Server], grpc.Channel],
    collector: Collector,
) -> None:
    server = start_server(capacity=1, limits=Limits(retry_after_s=2))
    channel = channel_to(server)
    collector.gate.clear()
    _export(channel, traces_request(pb_span(1)))
    wait_for(collector.entered.is_set, "the ingest to hold the first span")
    with pytest.raises(grpc.RpcError) as refused:
        _export(channel, traces_request(pb_span(2)))
    error = refused.value
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(error.trailing_metadata())
    info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert info.retry_delay.seconds == 2
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    collector.gate.set()
    assert server.ingest.force_flush(10_000) and collector.span_ids() == [1]


def test_oversized_and_undecodable_messages_are_refused_and_the_server_keeps_serving(
    start_server: Callable[..., Server], channel_to: Callable[[Server], grpc.Channel]
) -> None:
    server = start_server(limits=Limits(max_decompressed_bytes=64 * 1024))
    channel = channel_to(server)
    big = traces_request(pb_span(1, attributes=attributes({"a": "x" * 200_000})))
    with pytest.raises(grpc.RpcError) as refused:  # gzip on the wire, too big once inflated
        _export(channel, big, compression=grpc.Compression.Gzip)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(gzip.compress(big.SerializeToString())) < 64 * 1024
    raw = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b,
        response_deserializer=ExportTraceServiceResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as undecodable:
        raw(b"\xff\xff\xff\xff", timeout=30)
    assert undecodable.value.code() is grpc.StatusCode.INTERNAL
    response = _export(channel, traces_request(pb_span(2)))
    assert response == ExportTraceServiceResponse()
