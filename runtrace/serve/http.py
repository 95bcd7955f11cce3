"""OTLP/HTTP as the OTLP specification says, as a Starlette app: ``POST /v1/traces`` and
``/v1/logs`` in protobuf or JSON, gzip/deflate or identity; ``GET /health`` and ``/metrics``.

Every refusal answers the spec's status with a ``google.rpc.Status`` body in the request's
encoding, is counted and is logged with its reason. Size limits hold while the body streams in:
Content-Length is checked first, the bytes are counted as they arrive, and a compressed body is
inflated incrementally with a cap, so a gzip bomb stops at the limit.
"""

from __future__ import annotations

import hmac
import json
import zlib
from collections.abc import Callable

import anyio
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..faults import Faults
from .ingest import IngestClosed, QueueFull
from .parse import RequestDecodeError, parse_logs, parse_traces
from .receive import Receiver

__all__ = ["PROTOBUF", "create_app", "encode_message"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_RPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    503: code_pb2.UNAVAILABLE,
}


class _Refusal(Exception):
    """A request refused whole: its HTTP status and the reason (logged and sent back)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def encode_message(message: Message, as_json: bool) -> bytes:
    """A protobuf message as its wire bytes, or as OTLP/JSON (lowerCamelCase keys)."""
    if as_json:
        document = json_format.MessageToDict(message)
        return json.dumps(document, separators=(",", ":")).encode()
    return bytes(message.SerializeToString())


class _Inflater:
    """Collects a body, inflating it incrementally when compressed, up to ``cap`` bytes."""

    def __init__(self, encoding: str, cap: int) -> None:
        self._wbits = _WBITS.get(encoding)
        self._inflate = zlib.decompressobj(self._wbits) if self._wbits else None
        self._parts: list[bytes] = []
        self._room = cap
        self._cap = cap

    def _keep(self, data: bytes) -> None:
        self._room -= len(data)
        if self._room < 0:
            raise _Refusal(413, f"the decompressed body is over the {self._cap} byte limit")
        self._parts.append(data)

    def feed(self, data: bytes) -> None:
        if self._wbits is None or self._inflate is None:
            self._keep(data)
            return
        while data:
            try:
                self._keep(self._inflate.decompress(data, self._room + 1))
            except zlib.error:
                raise _Refusal(400, "the body does not decompress") from None
            if not self._inflate.eof:
                return  # all input taken (a left-over tail means _keep refused already)
            data = self._inflate.unused_data
            if data:  # a gzip body may hold several members
                self._inflate = zlib.decompressobj(self._wbits)

    def finish(self) -> bytes:
        if self._inflate is not None and not self._inflate.eof:
            raise _Refusal(400, "the compressed body is truncated")
        return b"".join(self._parts)


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "unknown"


class _Handlers:
    def __init__(self, receiver: Receiver, token: str | None, draining: Callable[[], bool]):
        self.receiver = receiver
        self.limits = receiver.limits
        self.token = token.encode() if token else None
        self.draining = draining
        self.faults = Faults("runtrace.serve")

    def authorize(self, headers: Headers) -> None:
        if self.token is None:
            return
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.token
        )
        if not ok:
            reason = "wrong token" if credentials else "no bearer token"
            raise _Refusal(401, reason, {"WWW-Authenticate": "Bearer"})

    async def read(self, request: Request, encoding: str) -> bytes:
        limit = self.limits.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise _Refusal(400, "Content-Length is not a number")
            if int(length) > limit:
                raise _Refusal(413, f"Content-Length {int(length)} is over the {limit} byte limit")
        inflater = _Inflater(encoding, self.limits.max_decompressed_bytes)
        received = 0
        try:
            with anyio.fail_after(self.limits.body_timeout_s):
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > limit:
                        raise _Refusal(413, f"the body is over the {limit} byte limit")
                    inflater.feed(chunk)
        except TimeoutError:
            raise _Refusal(408, f"the body took over {self.limits.body_timeout_s} s") from None
        except ClientDisconnect:
            raise _Refusal(400, "the client went away before sending its whole body") from None
        return inflater.finish()

    def handle(self, signal: str, body: bytes, as_json: bool, peer: str) -> bytes:
        """Parse, decode and ingest (in a worker thread: protobuf work holds the GIL anyway, but
        keeps the event loop free for other connections meanwhile)."""
        try:
            response: Message
            if signal == "traces":
                outcome = self.receiver.traces(parse_traces(body, as_json=as_json), peer)
                response = ExportTraceServiceResponse()
                if outcome.rejected or outcome.message:
                    response.partial_success.CopyFrom(
                        ExportTracePartialSuccess(
                            rejected_spans=outcome.rejected, error_message=outcome.message
                        )
                    )
            else:
                outcome = self.receiver.logs(parse_logs(body, as_json=as_json), peer)
                response = ExportLogsServiceResponse()
                if outcome.rejected or outcome.message:
                    response.partial_success.CopyFrom(
                        ExportLogsPartialSuccess(
                            rejected_log_records=outcome.rejected, error_message=outcome.message
                        )
                    )
        except RequestDecodeError as error:
            raise _Refusal(400, str(error)) from None
        except QueueFull:
            retry = {"Retry-After": str(self.limits.retry_after_s)}
            raise _Refusal(429, "the ingest queue is full; retry later", retry) from None
        except IngestClosed:
            retry = {"Retry-After": str(self.limits.retry_after_s)}
            raise _Refusal(503, "the server is shutting down", retry) from None
        return encode_message(response, as_json)

    async def export(self, request: Request) -> Response:
        signal = "traces" if request.url.path.endswith("/traces") else "logs"
        peer = _peer(request)
        self.receiver.request("http")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        as_json = media == JSON
        try:
            self.authorize(request.headers)
            if media not in (PROTOBUF, JSON):
                raise _Refusal(415, f"Content-Type must be {PROTOBUF} or {JSON}")
            encoding = request.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in _WBITS and encoding not in ("identity", ""):
                raise _Refusal(415, "Content-Encoding must be gzip, deflate or identity")
            if self.draining():
                retry = {"Retry-After": str(self.limits.retry_after_s)}
                raise _Refusal(503, "the server is shutting down", retry)
            body = await self.read(request, encoding)
            payload = await run_in_threadpool(self.handle, signal, body, as_json, peer)
        except _Refusal as refusal:
            self.receiver.refused("http", str(refusal.status), refusal.reason, peer)
            status = status_pb2.Status(code=_RPC_CODES[refusal.status], message=refusal.reason)
            return Response(
                encode_message(status, as_json),
                refusal.status,
                headers=refusal.headers,
                media_type=JSON if as_json else PROTOBUF,
            )
        except Exception:
            self.faults.report("handling an OTLP/HTTP request")
            self.receiver.refused("http", "500", "internal error", peer)
            return Response(b"", 500, media_type=JSON if as_json else PROTOBUF)
        return Response(payload, 200, media_type=JSON if as_json else PROTOBUF)

    async def health(self, request: Request) -> Response:
        if self.draining():
            return JSONResponse({"status": "draining"}, 503)
        return JSONResponse({"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        try:
            self.authorize(request.headers)
        except _Refusal as refusal:
            self.receiver.refused("http", str(refusal.status), refusal.reason, _peer(request))
            return JSONResponse({"error": refusal.reason}, refusal.status, refusal.headers)
        return JSONResponse(self.receiver.metrics())


def create_app(
    receiver: Receiver, *, token: str | None = None, draining: Callable[[], bool] = lambda: False
) -> Starlette:
    """The OTLP/HTTP app over ``receiver``. ``token``: required bearer token (also for
    ``/metrics``; ``/health`` stays open for load balancers). ``draining``: True while stopping."""
    handlers = _Handlers(receiver, token, draining)
    return Starlette(
        routes=[
            Route("/v1/traces", handlers.export, methods=["POST"]),
            Route("/v1/logs", handlers.export, methods=["POST"]),
            Route("/health", handlers.health, methods=["GET"]),
            Route("/metrics", handlers.metrics, methods=["GET"]),
        ]
    )
