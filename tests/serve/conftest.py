"""Fixtures of the receiver's tests: a collector and a factory of servers on 127.0.0.1, port 0,
stopped (and their slow ingests released) at the end of the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serve.helpers import Collector

from runtrace.serve import BufferedIngest, Server


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def start_server(collector: Collector) -> Iterator[Callable[..., Server]]:
    """``start_server(capacity=..., **Server keywords)``: a started server feeding ``collector``
    through a ``BufferedIngest``; HTTP and gRPC on free ports, no periodic log line."""
    servers: list[Server] = []

    def start(capacity: int = 65_536, **kwargs: Any) -> Server:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("grpc_port", 0)
        kwargs.setdefault("log_interval_s", 0)
        ingest = BufferedIngest(collector, on_logs=collector.on_logs, capacity=capacity)
        server = Server(ingest, **kwargs).start()
        servers.append(server)
        return server

    yield start
    collector.gate.set()
    for server in servers:
        server.stop(10)
