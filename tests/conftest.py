"""Shared fixtures: a tiny hand-made store, the seeded demo file, a loopback OTLP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from duckdb_helpers import minidb
from otlp_receiver import Receiver

from runtrace import connect
from runtrace.demo import DemoResult, run_demo


@pytest.fixture
def mini_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory store with five runs and twelve events whose every answer is known."""
    con = duckdb.connect()
    minidb.build(con)
    yield con
    con.close()


DEMO_RUNS = 300
DEMO_SEED = 11


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """The seeded demo workload recorded once per test session through Runtrace + DuckDBSink."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    return run_demo(path, runs=DEMO_RUNS, seed=DEMO_SEED)


@pytest.fixture
def demo_con(demo: DemoResult) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the demo file, as the CLI and notebooks open it."""
    con = connect(demo.path)
    yield con
    con.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An OTLP/HTTP traces endpoint on 127.0.0.1 (see otlp_receiver.py)."""
    server = Receiver()
    yield server
    server.close()
