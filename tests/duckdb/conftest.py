"""Fixtures of the DuckDB tests: a database path, and the tiny hand-made database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from duckdb_helpers import minidb


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a test's database goes (not created yet)."""
    return tmp_path / "runs.duckdb"


@pytest.fixture
def mini_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database with five runs and twelve events whose every answer is known."""
    con = duckdb.connect()
    minidb.build(con)
    yield con
    con.close()
