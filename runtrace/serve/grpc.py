"""OTLP/gRPC: ``TraceService/Export`` and ``LogsService/Export`` on grpcio, through the servicers
generated in ``opentelemetry-proto``, decoding, limiting and counting as OTLP/HTTP does.

A full queue answers RESOURCE_EXHAUSTED with a ``RetryInfo`` (the spec's signal that a retry
may succeed; OpenTelemetry exporters honour its delay), shutting down answers UNAVAILABLE.
grpcio parses the message before the servicer runs, so a body that does not decode gets grpcio's
own INTERNAL, and one over ``Limits.max_decompressed_bytes`` (before or after decompression)
grpcio's RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import grpc
from google.protobuf.any_pb2 import Any as PbAny
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..faults import Faults
from .ingest import IngestClosed, QueueFull
from .receive import Outcome, Receiver

__all__ = ["start_grpc_server"]


class _Common:
    """What both services share: the token check, refusals and the ingest's back-pressure."""

    def __init__(self, receiver: Receiver, token: str | None, draining: Callable[[], bool]):
        self.receiver = receiver
        self.token = token.encode() if token else None
        self.draining = draining
        self.faults = Faults("runtrace.serve")

    def refuse(
        self, context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, retry: bool
    ) -> NoReturn:
        self.receiver.refused("grpc", code.name, reason, context.peer())
        if retry:
            info = error_details_pb2.RetryInfo()
            info.retry_delay.FromSeconds(self.receiver.limits.retry_after_s)
            detail = PbAny()
            detail.Pack(info)
            status = status_pb2.Status(code=code.value[0], message=reason, details=[detail])
            context.set_trailing_metadata(
                (
                    ("google.rpc.retryinfo-bin", info.SerializeToString()),
                    ("grpc-status-details-bin", status.SerializeToString()),
                )
            )
        context.abort(code, reason)
        raise AssertionError("unreachable: abort raises")  # for type checkers without grpc stubs

    def run(
        self,
        context: grpc.ServicerContext,
        call: Callable[[str], Outcome],
    ) -> Outcome:
        self.receiver.request("grpc")
        if self.token is not None:
            metadata = dict(context.invocation_metadata())
            scheme, _, credentials = str(metadata.get("authorization", "")).partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                credentials.strip().encode(), self.token
            )
            if not ok:
                reason = "wrong token" if credentials else "no bearer token"
                self.refuse(context, grpc.StatusCode.UNAUTHENTICATED, reason, retry=False)
        if self.draining():
            self.refuse(context, grpc.StatusCode.UNAVAILABLE, "the server is shutting down", True)
        try:
            return call(context.peer())
        except QueueFull:
            reason = "the ingest queue is full; retry later"
            self.refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, reason, retry=True)
        except IngestClosed:
            self.refuse(context, grpc.StatusCode.UNAVAILABLE, "the server is shutting down", True)
        except Exception:
            self.faults.report("handling an OTLP/gRPC request")
            self.refuse(context, grpc.StatusCode.INTERNAL, "internal error", retry=False)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, common: _Common) -> None:
        self.common = common

    def Export(
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        outcome = self.common.run(context, lambda peer: self.common.receiver.traces(request, peer))
        response = ExportTraceServiceResponse()
        if outcome.rejected or outcome.message:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=outcome.rejected, error_message=outcome.message
                )
            )
        return response


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, common: _Common) -> None:
        self.common = common

    def Export(
        self, request: ExportLogsServiceRequest, context: grpc.ServicerContext
    ) -> ExportLogsServiceResponse:
        outcome = self.common.run(context, lambda peer: self.common.receiver.logs(request, peer))
        response = ExportLogsServiceResponse()
        if outcome.rejected or outcome.message:
            response.partial_success.CopyFrom(
                ExportLogsPartialSuccess(
                    rejected_log_records=outcome.rejected, error_message=outcome.message
                )
            )
        return response


def start_grpc_server(
    receiver: Receiver,
    host: str,
    port: int,
    *,
    token: str | None = None,
    draining: Callable[[], bool] = lambda: False,
) -> tuple[grpc.Server, int]:
    """Start the OTLP/gRPC services on ``host:port`` (0: a free port); the server and its port."""
    limits = receiver.limits
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", limits.max_decompressed_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        ThreadPoolExecutor(max_workers=limits.grpc_workers, thread_name_prefix="runtrace-grpc"),
        options=options,
    )
    common = _Common(receiver, token, draining)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _TraceService(common), server
    )
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _LogsService(common), server
    )
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot listen for gRPC on {address}: {error}") from None
    if not bound:
        raise OSError(f"cannot listen for gRPC on {address}")
    server.start()
    return server, bound
