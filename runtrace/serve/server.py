"""``Server``: OTLP/HTTP (uvicorn running the Starlette app, in a thread) and OTLP/gRPC (grpcio)
in front of one ingest; and ``serve_forever`` for the CLI, which drains and flushes on
SIGTERM/SIGINT before it returns.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from types import FrameType, TracebackType

import grpc
import uvicorn

from .grpc import start_grpc_server
from .http import create_app
from .ingest import Ingest
from .receive import Receiver
from .settings import Limits, ServeSettings

__all__ = ["Server", "serve_forever"]

log = logging.getLogger("runtrace.serve")


class Server:
    """An OTLP receiver feeding ``ingest``. ``start()`` returns once both ports listen (port 0:
    a free one, then in ``.port`` / ``.grpc_port``); ``stop(timeout)`` stops accepting, lets
    requests in flight finish, drains and flushes the ingest, then shuts it down. Also a context
    manager. A ``Server`` starts once.
    """

    def __init__(
        self,
        ingest: Ingest,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        grpc_port: int | None = 4317,
        token: str | None = None,
        limits: Limits | None = None,
        log_interval_s: float = 60.0,
    ) -> None:
        self.settings = ServeSettings(
            host=host,
            port=port,
            grpc_port=grpc_port,
            token=token,
            limits=limits if limits is not None else Limits(),
            log_interval_s=log_interval_s,
        )
        self.ingest = ingest
        self.receiver = Receiver(ingest, self.settings.limits)
        self.port: int | None = None
        self.grpc_port: int | None = None
        self._draining = False
        self._starting = False
        self._started = False  # only once listening: a failed start leaves the ingest alone
        self._stopped = False
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @classmethod
    def from_settings(cls, ingest: Ingest, settings: ServeSettings) -> Server:
        return cls(ingest, **{f.name: getattr(settings, f.name) for f in fields(settings)})

    @property
    def url(self) -> str:
        """The OTLP/HTTP base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def _draining_now(self) -> bool:
        return self._draining

    def start(self, timeout: float = 10.0) -> Server:
        """Listen on the HTTP (and gRPC) port; raise ``OSError`` if a port cannot be had."""
        if self._started or self._starting:
            raise RuntimeError("a Server starts only once")
        self._starting = True
        s = self.settings
        sock = _bind(s.host, s.port)
        self.port = int(sock.getsockname()[1])
        app = create_app(self.receiver, token=s.token, draining=self._draining_now)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            limit_concurrency=s.limits.max_connections,
            timeout_graceful_shutdown=int(s.limits.body_timeout_s) + 1,
            server_header=False,
        )
        self._http = uvicorn.Server(config)
        self._http_thread = threading.Thread(
            target=self._http.run, kwargs={"sockets": [sock]}, name="runtrace-serve-http"
        )
        self._http_thread.daemon = True
        self._http_thread.start()
        deadline = time.monotonic() + timeout
        while not self._http.started:
            if not self._http_thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise OSError(f"the OTLP/HTTP server did not start on {s.host}:{self.port}")
            time.sleep(0.01)
        if s.grpc_port is not None:
            try:
                self._grpc, self.grpc_port = start_grpc_server(
                    self.receiver, s.host, s.grpc_port, token=s.token, draining=self._draining_now
                )
            except OSError:
                self._stop_http(timeout)
                raise
        if s.log_interval_s:
            self._ticker = threading.Thread(target=self._tick, name="runtrace-serve-log")
            self._ticker.daemon = True
            self._ticker.start()
        self._started = True
        return self

    def _tick(self) -> None:
        while not self._ticker_stop.wait(self.settings.log_interval_s):
            log.info("%s", self.receiver.log_line())

    def _stop_http(self, timeout: float) -> None:
        if self._http is None or self._http_thread is None:
            return
        self._http.config.timeout_graceful_shutdown = max(1, int(timeout))
        self._http.should_exit = True
        self._http_thread.join(timeout)
        if self._http_thread.is_alive():
            self._http.force_exit = True
            self._http_thread.join(1.0)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop accepting, finish requests in flight, drain and flush the ingest, shut it down,
        all within one ``timeout``. True if everything accepted was flushed in time."""
        if self._stopped or not self._started:
            return True
        self._stopped = True
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        self._draining = True
        if self._grpc is not None:
            self._grpc.stop(grace=left()).wait(left())
        self._stop_http(left())
        flushed = self.ingest.force_flush(int(left() * 1000))
        self.ingest.shutdown(int(left() * 1000))
        self._ticker_stop.set()
        log.info("%s", self.receiver.log_line())
        if not flushed:
            log.error("runtrace serve: the ingest did not flush within %.1f s", timeout)
        return flushed

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve {host}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen for OTLP/HTTP on {host}:{port}: {error}") from None
    sock.set_inheritable(True)
    return sock


def serve_forever(
    ingest: Ingest,
    settings: ServeSettings,
    *,
    drain_timeout_s: float = 30.0,
    on_started: Callable[[Server], None] | None = None,
) -> bool:
    """Run a ``Server`` until SIGTERM or SIGINT, then drain and flush (``Server.stop``) before
    returning; True if everything accepted was flushed. Call from the main thread.

    ``on_started`` is called once listening (e.g. to print the addresses).
    """
    server = Server.from_settings(ingest, settings).start()
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        grpc_part = f", OTLP/gRPC on port {server.grpc_port}" if server.grpc_port else ""
        log.info("runtrace serve: OTLP/HTTP on %s%s", server.url, grpc_part)
        if on_started is not None:
            on_started(server)
        while not stop.wait(0.5):
            pass
        log.info("runtrace serve: stopping; draining the queue")
    finally:
        flushed = server.stop(drain_timeout_s)
        for sig, old in previous.items():
            signal.signal(sig, old)
    return flushed
