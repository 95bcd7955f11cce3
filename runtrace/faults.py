"""The one internal-error policy: a failing sink, hook or bug in runtrace never breaks the agent.

As logfire's ``handle_internal_errors``: every fault is logged once with its traceback and counted
by what failed; under pytest (or with ``raise_errors=True``) it is re-raised instead, so bugs show
in tests rather than in a log nobody reads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

__all__ = ["Faults"]

P = ParamSpec("P")
T = TypeVar("T")


def _under_pytest() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ


class Faults:
    """Log, count and (in tests) re-raise internal errors.

    ``raise_errors``: re-raise instead of logging; ``None`` (the default) means only under pytest.
    """

    __slots__ = ("_counts", "_lock", "log", "raise_errors")

    def __init__(self, logger: str = "runtrace", raise_errors: bool | None = None) -> None:
        self.log = logging.getLogger(logger)
        self.raise_errors = raise_errors
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def counts(self) -> dict[str, int]:
        """How many faults each ``what`` had, since this object was made."""
        with self._lock:
            return dict(self._counts)

    def report(self, what: str) -> None:
        """Call from an ``except`` block: log and count the current exception, maybe re-raise."""
        with self._lock:
            self._counts[what] += 1
        self.log.exception("runtrace: error in %s", what)
        raise_errors = self.raise_errors
        if raise_errors is None:
            raise_errors = _under_pytest()
        if raise_errors:
            raise

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """``with faults.guard("a sink's on_run"): ...``: an ``Exception`` inside is reported."""
        try:
            yield
        except Exception:
            self.report(what)

    def call(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``fn(*args, **kwargs)``, reporting an ``Exception`` (then None)."""
        try:
            return fn(*args, **kwargs)
        except Exception:
            self.report(what)
            return None
