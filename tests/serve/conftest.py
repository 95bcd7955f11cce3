"""Fixtures of the receiver's tests: a collector and factories of servers on 127.0.0.1, port 0
(feeding the collector, or a DuckDB file), stopped (and their slow ingests released) at the end
of the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve.helpers import Collector, Reader

from runtrace.serve import BufferedIngest, DuckDBIngest, Server


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


@pytest.fixture
def duckdb_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``duckdb_server(**DuckDBIngest keywords)``: a started server writing runs into
    ``tmp_path / "runs.duckdb"`` through a ``DuckDBIngest``; HTTP and gRPC on free ports."""
    servers: list[Server] = []

    def start(**kwargs: Any) -> Server:
        kwargs.setdefault("flush_interval", 0.1)
        ingest = DuckDBIngest(tmp_path / "runs.duckdb", **kwargs)
        server = Server(ingest, port=0, grpc_port=0, log_interval_s=0).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(30)


@pytest.fixture
def reader() -> Iterator[Reader]:
    """A reader of databases in another process (see ``Reader``)."""
    process = Reader()
    yield process
    process.close()
