"""Shared fixtures: a tiny hand-made store, the seeded demo file, a loopback OTLP receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import duckdb
import pytest
from duckdb_helpers import minidb
from hypothesis import settings
from otlp_receiver import Receiver

from runtrace import connect
from runtrace.demo import DemoResult, run_demo

# CI runs the property tests on a fixed set of examples (.ci/run sets HYPOTHESIS_PROFILE=ci), so a
# submission's result does not depend on the draw; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


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
