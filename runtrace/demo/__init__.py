"""A seeded, realistic agent workload recorded through the real recording API.

The demo is in two halves. :func:`plan_workload` decides everything from the seed: agents,
sessions, each run's events (planning, steps, turns with token usage, tool calls with simulated
latencies and failing exit codes, subagents, confirmations) and how each run ends (completed,
failed by an ``error`` event, failed by an exception, cancelled through ``run.cancel()``, or left
open as by a killed process), plus a few long runs with thousands of events. :func:`record_workload`
then drives :class:`runtrace.Runtrace` with it, exactly as an agent would, so the demo file is
what the recording path really produces. :class:`Expected` holds the counts that follow from the
plan, so tests can check every query against the workload instead of against magic numbers.

Nothing sleeps. The plan's times (``PlannedRun.start_ms`` and each event's offset) are simulated,
and recorded through the API's explicit times (the ``at_ns`` keywords), so durations and tool
latencies in the file are the plan's, spread over a day.
"""

from __future__ import annotations

from .plan import DEFAULT_RUNS, DEFAULT_SEED, Expected, PlannedRun, Workload, plan_workload
from .profiles import AGENTS, TOOLS
from .record import DemoAgentError, DemoResult, record_workload, run_demo

__all__ = [
    "AGENTS",
    "DEFAULT_RUNS",
    "DEFAULT_SEED",
    "TOOLS",
    "DemoAgentError",
    "DemoResult",
    "Expected",
    "PlannedRun",
    "Workload",
    "plan_workload",
    "record_workload",
    "run_demo",
]
