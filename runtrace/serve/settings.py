"""The receiver's settings: where it listens, who may write, and how much one request may carry.

Both are frozen dataclasses validated on construction, so a bad value fails before anything
binds a port, with a message naming the setting.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field

from ..errors import RuntraceError

__all__ = ["Limits", "ServeConfigError", "ServeSettings", "is_loopback"]

MiB = 1024 * 1024


class ServeConfigError(RuntraceError, ValueError):
    """A receiver setting is invalid, e.g. a public address without a token."""


@dataclass(frozen=True)
class Limits:
    """What one request may carry. Over a limit, a request is refused (413) or a span rejected
    (``partial_success``) with the reason: never silently truncated.

    - ``max_body_bytes``: the request body as sent (before decompression).
    - ``max_decompressed_bytes``: the body after gzip/deflate, so a small bomb cannot fill memory.
    - ``max_attributes``: attributes on one span, span event, link, resource, scope or log record.
    - ``max_value_length``: one attribute value (or log body): characters of a string, bytes of a
      byte string; an array or map counts the lengths of what it holds plus one per element.
    - ``max_future_s``: how far past the server's clock a timestamp may lie (clock skew).
    - ``body_timeout_s``: how long a client may take to send its body (408 after that).
    - ``retry_after_s``: the ``Retry-After`` (and gRPC ``RetryInfo``) given when the queue is full.
    - ``max_connections``: concurrent HTTP connections (uvicorn answers 503 past it); None: no cap.
    - ``grpc_workers``: threads serving gRPC calls.
    """

    max_body_bytes: int = 16 * MiB
    max_decompressed_bytes: int = 64 * MiB
    max_attributes: int = 1024
    max_value_length: int = 1 * MiB
    max_future_s: float = 86_400.0
    body_timeout_s: float = 30.0
    retry_after_s: int = 1
    max_connections: int | None = 1024
    grpc_workers: int = 8

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_decompressed_bytes", "max_attributes"):
            _positive_int(f"Limits.{name}", getattr(self, name))
        _positive_int("Limits.max_value_length", self.max_value_length)
        _positive_int("Limits.grpc_workers", self.grpc_workers)
        if self.max_connections is not None:
            _positive_int("Limits.max_connections", self.max_connections)
        if not isinstance(self.retry_after_s, int) or self.retry_after_s < 0:
            raise ServeConfigError(
                f"Limits.retry_after_s must be a whole number of seconds >= 0, "
                f"got {self.retry_after_s!r}"
            )
        for name in ("max_future_s", "body_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ServeConfigError(f"Limits.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class ServeSettings:
    """Where the receiver listens and who may write to it.

    ``port``/``grpc_port`` 0 picks a free port; ``grpc_port`` None serves no gRPC. ``token``, when
    set, is required as ``Authorization: Bearer <token>`` (gRPC: metadata ``authorization``).
    Any host but a loopback address needs a token: an open port that writes runs is a hole.
    ``log_interval_s`` is the period of the counters log line (0: never).
    """

    host: str = "127.0.0.1"
    port: int = 4318
    grpc_port: int | None = 4317
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    log_interval_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ServeConfigError(f"host must be a non-empty string, got {self.host!r}")
        _port("port", self.port)
        if self.grpc_port is not None:
            _port("grpc_port", self.grpc_port)
            if self.grpc_port == self.port and self.port != 0:
                raise ServeConfigError(
                    f"port and grpc_port are both {self.port}: HTTP and gRPC need their own ports"
                )
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise ServeConfigError("token must be a non-empty string (or None for no token)")
        if self.token is None and not is_loopback(self.host):
            raise ServeConfigError(
                f"refusing to listen on {self.host} without a token: anyone who reaches it could "
                "write runs. Set a token (--token or RUNTRACE_TOKEN), or bind 127.0.0.1"
            )
        if not isinstance(self.limits, Limits):
            raise ServeConfigError(f"limits must be a Limits, got {type(self.limits).__name__}")
        value = self.log_interval_s
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ServeConfigError(f"log_interval_s must be a number >= 0, got {value!r}")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for any other
    name, which may resolve to anything."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ServeConfigError(f"{name} must be a positive integer, got {value!r}")


def _port(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ServeConfigError(f"{name} must be an integer from 0 to 65535, got {value!r}")
