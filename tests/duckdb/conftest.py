"""Fixtures of the DuckDB tests (``mini_con``, the hand-made database, is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a test's database goes (not created yet)."""
    return tmp_path / "runs.duckdb"
