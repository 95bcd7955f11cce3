"""Recording the demo's plan through the real API (``Runtrace`` into a ``DuckDBSink``), as an
agent would."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..otel.api import Runtrace

from .plan import DEFAULT_RUNS, DEFAULT_SEED, Workload, plan_workload

__all__ = [
    "DEFAULT_RUNS",
    "DEFAULT_SEED",
    "DemoAgentError",
    "DemoResult",
    "record_workload",
    "run_demo",
]


class DemoAgentError(RuntimeError):
    """What a simulated agent raises when it crashes: the run ends failed, the demo goes on."""


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` recorded: the workload, where, and the run ids in plan order."""

    path: str
    workload: Workload
    run_ids: list[str]


ProgressCallback = Callable[[int, int], None]


def record_workload(
    rt: Runtrace, workload: Workload, *, progress: ProgressCallback | None = None
) -> list[str]:
    """Record every planned run through ``rt`` (a :class:`runtrace.Runtrace`); returns ids.

    Each run is started with ``rt.begin_run`` at its planned time, its events recorded with
    ``run.record`` at theirs, then ended as planned: normally, by an ``error`` event, by an
    exception handed to ``run.end`` (what leaving ``start_run`` does), or by
    ``run.cancel(reason)``. An interrupted run is never ended, as if its process had been killed
    mid-run.
    """
    ms = 1_000_000
    run_ids: list[str] = []
    total = len(workload.runs)
    for done, planned in enumerate(workload.runs, start=1):
        attributes = {"runtrace.demo.index": planned.index, "runtrace.demo.seed": workload.seed}
        handle = rt.begin_run(
            planned.session_id,
            prompt=planned.prompt,
            agent_name=planned.agent_name,
            attributes=attributes,
            at_ns=planned.start_ms * ms,
        )
        run_ids.append(handle.id)
        for offset, event in planned.events:
            handle.record(event, at_ns=(planned.start_ms + offset) * ms)
        end_ns = (planned.start_ms + planned.end_offset_ms) * ms
        if planned.outcome == "cancelled":
            handle.cancel(planned.cancel_reason or "cancelled by host", at_ns=end_ns)
        elif planned.outcome == "crashed":
            handle.end(DemoAgentError(planned.error), at_ns=end_ns)
        elif planned.outcome != "interrupted":
            handle.end(at_ns=end_ns)
        if progress is not None:
            progress(done, total)
    return run_ids


_BULK_GEN0_THRESHOLD = 10_000


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """The demo is a user of runtrace that knows its own memory: the plan is long-lived, and
    every recorded event stays alive until the writer stores it, so each default collection
    (every 700 allocations) walked them again: about a third of the recording thread's CPU.
    The plan is frozen out of the collector and young collections are rarer while recording;
    both are undone after, whatever happens."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_BULK_GEN0_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def run_demo(
    path: str | os.PathLike[str] = "runtrace.duckdb",
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
    *,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Plan the workload and record it into the DuckDB file at ``path`` through ``Runtrace``."""
    from opentelemetry.sdk.trace import TracerProvider

    from ..duckdb.sink import DuckDBSink
    from ..otel.api import Runtrace
    from ..otel.processor import RunSpanProcessor

    workload = plan_workload(runs, seed)
    provider = TracerProvider()
    sink = DuckDBSink(os.fspath(path))
    rt = Runtrace(provider, RunSpanProcessor(sinks=[sink]))
    try:
        with _bulk_gc():
            run_ids = record_workload(rt, workload, progress=progress)
    finally:
        rt.shutdown()
        provider.shutdown()
    return DemoResult(path=os.fspath(path), workload=workload, run_ids=run_ids)
