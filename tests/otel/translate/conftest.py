"""Fixtures of the translator tests (the classes behind them are in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel.translate.helpers import Traced


@pytest.fixture
def traced() -> Iterator[Traced]:
    """A provider feeding an assembler in-process, with every span exported for a replay."""
    setup = Traced()
    yield setup
    setup.provider.shutdown()


@pytest.fixture
def spans() -> Iterator[Traced]:
    """A provider whose spans are only exported: for reading spans and OTLP-order replays."""
    setup = Traced(live=False)
    yield setup
    setup.provider.shutdown()
