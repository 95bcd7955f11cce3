"""Time every named query on a large runtrace file: 1M runs and 10M events by default.

Run: python benchmarks/bench_queries.py [--runs N] [--events-per-run K] [--db PATH] [--keep]

The file is built with a bulk path (DuckDB ``range()`` in SQL, into the real schema), not the
recording API, which would take hours at this size. Each query then runs through
``runtrace.duckdb.run_query`` on a ``runtrace.connect`` connection (the read-only
view the CLI and notebooks use), Arrow result included, a few times; the best and median times are
printed beside a baseline measured in the same run: a plain full scan of ``run_events``
(``count(*)`` and ``sum(timestamp_ms)``), the cheapest thing any query over events must do.
Target: every outcome query under 1 s on the 1M-run / 10M-event file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, os.path.dirname(__file__))

from report import Figure

from runtrace import connect
from runtrace.duckdb import list_queries, run_query
from runtrace.duckdb.schema import ensure_schema

T0_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
AGENTS = ["coder", "researcher", "reviewer", "analyst", "support"]
TOOLS = ["read_file", "write_file", "grep", "bash", "run_tests", "web_search", "http_get"]

# Run k of N: created over 30 days; ~85% completed, 7% failed, 6% cancelled, 2% still open.
RUNS_SQL = """
INSERT INTO runs BY NAME
SELECT
    'run-' || k AS run_id,
    'sess-' || (k // 4) AS session_id,
    ($agents)[1 + (hash(k // 4) % 5)::BIGINT] AS agent_name,
    CASE WHEN r < 0.85 THEN 'completed' WHEN r < 0.92 THEN 'failed'
         WHEN r < 0.98 THEN 'cancelled' ELSE 'executing' END AS status,
    'prompt ' || k AS prompt,
    CASE WHEN r < 0.85 THEN 'done' END AS result_text,
    CASE WHEN r >= 0.85 AND r < 0.92 THEN 'model request timed out after ' || (k % 90) || 's'
         WHEN r >= 0.92 AND r < 0.98 THEN 'cancelled by host' END AS error,
    $per_run AS event_count,
    created AS created_at_ms,
    created + duration AS updated_at_ms,
    CASE WHEN r < 0.98 THEN created + duration END AS ended_at_ms,
    CASE WHEN r < 0.98 THEN duration END AS duration_ms,
    (hash(k) % 40000)::BIGINT AS input_tokens,
    (hash(k + 1) % 4000)::BIGINT AS output_tokens,
    printf('%032x', k) AS trace_id,
    printf('%016x', k) AS span_id,
    '{}'::JSON AS attributes,
    'bench-host' AS owner_host,
    1 AS owner_pid
FROM (
    SELECT k, (hash(k * 7) % 10000) / 10000.0 AS r,
        $t0 + k * (2592000000 // $runs) AS created,
        1000 + (hash(k * 13) % 600000)::BIGINT AS duration
    FROM range($runs) t(k)
)
"""

# Event j of run k: agent_start, turns with tool calls, and a closing agent_end / error.
EVENTS_SQL = """
INSERT INTO run_events BY NAME
SELECT
    'run-' || run AS run_id,
    j AS sequence,
    $t0 + run * (2592000000 // $runs) + j * 700 AS timestamp_ms,
    kind AS type,
    CASE kind
        WHEN 'tool_start' THEN json_object('type', kind, 'id', call_id, 'name', tool)
        WHEN 'tool_end' THEN json_object('type', kind, 'id', call_id, 'name', tool,
            'output', 'ok', 'exit_code', exit_code)
        WHEN 'turn_end' THEN json_object('type', kind, 'turn', j,
            'usage', json_object('prompt_tokens', 900, 'completion_tokens', 90))
        WHEN 'agent_start' THEN json_object('type', kind, 'prompt', 'prompt')
        WHEN 'error' THEN json_object('type', kind, 'message', 'timed out')
        ELSE json_object('type', kind, 'text', 'done')
    END AS event,
    CASE WHEN kind IN ('tool_start', 'tool_end') THEN tool END AS tool_name,
    CASE WHEN kind IN ('tool_start', 'tool_end') THEN call_id END AS tool_call_id,
    CASE WHEN kind = 'tool_end' THEN exit_code END AS exit_code,
    CASE WHEN kind = 'turn_end' THEN 900 END AS input_tokens,
    CASE WHEN kind = 'turn_end' THEN 90 END AS output_tokens,
    CASE WHEN kind = 'error' THEN 'timed out' END AS error_message
FROM (
    SELECT
        k // $per_run AS run,
        k % $per_run AS j,
        CASE
            WHEN k % $per_run = 0 THEN 'agent_start'
            WHEN k % $per_run = $per_run - 1 THEN
                CASE WHEN hash(k // $per_run * 7) % 10000 < 8500 THEN 'agent_end' ELSE 'error' END
            WHEN k % $per_run % 3 = 1 THEN 'tool_start'
            WHEN k % $per_run % 3 = 2 THEN 'tool_end'
            ELSE 'turn_end'
        END AS kind,
        'call-' || ((k % $per_run - 1) // 3) AS call_id,
        ($tools)[1 + (hash(k // 3) % 7)::BIGINT] AS tool,
        CASE WHEN hash(k) % 100 < 8 THEN 1 ELSE 0 END AS exit_code
    FROM range($runs * $per_run) t(k)
)
"""


def build(path: Path, runs: int, per_run: int) -> float:
    """Create the schema and bulk-load the synthetic rows; returns the seconds it took."""
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        ensure_schema(con, str(path))
        con.execute(RUNS_SQL, {"agents": AGENTS, "runs": runs, "t0": T0_MS, "per_run": per_run})
        con.execute(EVENTS_SQL, {"tools": TOOLS, "runs": runs, "t0": T0_MS, "per_run": per_run})
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best and median wall time of ``repeat`` calls, in seconds (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


PARAMS: dict[str, dict[str, Any]] = {
    "session_timeline": {"session_id": "sess-12345"},
    "run_timeline": {"run_id": "run-12345"},
    "stuck_runs": {"now_ms": T0_MS + 31 * 86_400_000},
}
"""The required parameters, on rows that exist in the built file."""


def time_queries(
    con: duckdb.DuckDBPyConnection, repeat: int
) -> tuple[tuple[float, float], dict[str, tuple[float, float, int]]]:
    """The baseline scan's and every named query's (best, median) seconds, and rows returned."""
    baseline = timed(
        lambda: con.execute("SELECT count(*), sum(timestamp_ms) FROM run_events").fetchall(),
        repeat,
    )
    results: dict[str, tuple[float, float, int]] = {}
    for query in list_queries():
        bound = PARAMS.get(query.name, {})
        rows = run_query(con, query, bound).num_rows
        best, median = timed(lambda q=query, b=bound: run_query(con, q, b), repeat)
        results[query.name] = (best, median, rows)
    return baseline, results


def _count(n: int) -> str:
    return f"{n // 1_000_000:,}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000:,}k"


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: the slowest and the median named query's best time against
    a full scan of ``run_events`` on the same file (1M runs / 10M events; 100k / 1M quick),
    target under 1 s each."""
    runs = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="runtrace-bench-") as tmp:
        path = Path(tmp) / "bench.duckdb"
        build(path, runs, 10)
        con = connect(path)
        try:
            (scan, _), results = time_queries(con, 3)
        finally:
            con.close()
    slowest = max(results, key=lambda name: results[name][0])
    median = statistics.median(best for best, _, _ in results.values())
    size = f"{_count(runs)} runs / {_count(runs * 10)} events"

    def figure(name: str, seconds: float) -> Figure:
        return Figure(
            name, seconds * 1000, scan * 1000, "ms", "full scan of run_events", bound=1000
        )

    return [
        figure(f"slowest of {len(results)} named queries ({slowest}), {size}", results[slowest][0]),
        figure(f"median named query, {size}", median),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--events-per-run", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="reuse or create this file (default: a temporary file)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary file")
    args = parser.parse_args()

    tmp = None
    if args.db:
        path = Path(args.db)
    else:
        tmp = tempfile.mkdtemp(prefix="runtrace-bench-")
        path = Path(tmp) / "bench.duckdb"
    if not path.exists():
        seconds = build(path, args.runs, args.events_per_run)
        print(f"built {path}: {args.runs:,} runs, {args.runs * args.events_per_run:,} events")
        print(f"  bulk load {seconds:.1f}s, {path.stat().st_size / 1e6:.0f} MB")

    con = connect(path)  # what the CLI and notebooks read through
    counts = con.execute(
        "SELECT (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM run_events) AS events"
    ).fetchone()
    assert counts is not None
    print(f"file has {counts[0]:,} runs and {counts[1]:,} events; {os.cpu_count()} CPUs")
    (baseline, baseline_median), results = time_queries(con, args.repeat)
    con.close()
    print(f"\n{'query':<26}{'best s':>9}{'median s':>10}{'x scan':>8}{'rows':>8}")
    print(f"{'baseline: scan run_events':<26}{baseline:>9.3f}{baseline_median:>10.3f}{1:>8.1f}")
    slow = []
    for name, (best, median, rows) in results.items():
        print(f"{name:<26}{best:>9.3f}{median:>10.3f}{best / baseline:>8.1f}{rows:>8}")
        if best >= 1.0:
            slow.append(name)
    print("\ntarget < 1 s each:", "met" if not slow else f"missed by {', '.join(slow)}")
    if tmp and not args.keep:
        for child in Path(tmp).iterdir():
            child.unlink()
        Path(tmp).rmdir()
    elif tmp:
        print(f"kept {path}")


if __name__ == "__main__":
    main()
