"""Shared fixtures of the analysis tests: a tiny hand-made store and the seeded demo file."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import minidb
import pytest


@pytest.fixture
def mini_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory store with five runs and twelve events whose every answer is known."""
    con = duckdb.connect()
    minidb.build(con)
    yield con
    con.close()
