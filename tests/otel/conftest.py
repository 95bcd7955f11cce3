"""Fixtures of the otel tests (the classes behind them are in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel.helpers import Plain, Setup


@pytest.fixture
def env() -> Iterator[Setup]:
    """``Runtrace`` with a recording hook on a provider with an in-memory exporter."""
    setup = Setup()
    yield setup
    setup.provider.shutdown()


@pytest.fixture
def plain() -> Iterator[Plain]:
    """A RunSpanProcessor on a provider used with plain OpenTelemetry code."""
    setup = Plain()
    yield setup
    setup.provider.shutdown()
