"""Peak memory while 1M events flow through ``Runtrace`` into DuckDB, with retention on.

Run: python benchmarks/bench_memory.py [--events N] [--threads T] [--retention R]

Each side runs in a fresh process and reports its peak RSS (``VmHWM``, as exec resets it):

- runtrace: ``Runtrace`` on an SDK ``TracerProvider``, ``RunStore(max_finished_runs=R)``
  (retention on) and a ``DuckDBSink`` with its default queue bound; T threads record runs of
  200 events (an ``agent_start``, 11 turns of 14 text deltas and a tool call, ``agent_end``),
  then everything is shut down and the file is checked: every event and run is in it.
- bare OpenTelemetry (the baseline): the same threads, run spans, span events and tool child
  spans made with the OpenTelemetry API alone, no store, no sink: what the process costs
  without runtrace.

It also reports the longest the sink's queue got (sampled every 10 ms) against its bound.
Target: runtrace's peak under 300 MB.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from report import Figure

BUDGET_MB = 300.0
RETENTION = 100
"""Finished runs the store keeps (20,000 events); the file has all of them."""
EVENTS_PER_RUN = 200


def run_events(run: int) -> list[dict[str, Any]]:
    """One run's 200 events, in order."""
    events: list[dict[str, Any]] = [{"type": "agent_start", "prompt": f"task {run}"}]
    for turn in range(11):
        events.append({"type": "turn_start", "turn": turn})
        events.extend(
            {"type": "text_delta", "text": f"token {i} of turn {turn}, some words"}
            for i in range(14)
        )
        call = f"call-{run}-{turn}"
        events.append({"type": "tool_start", "id": call, "name": "bash"})
        events.append(
            {"type": "tool_end", "id": call, "name": "bash", "output": "ok\n" * 8, "exit_code": 0}
        )
        events.append(
            {
                "type": "turn_end",
                "turn": turn,
                "usage": {"prompt_tokens": 900, "completion_tokens": 90, "total_tokens": 990},
            }
        )
    events.append({"type": "agent_end", "text": "all green"})
    assert len(events) == EVENTS_PER_RUN
    return events


class _NoPandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail as if it were not installed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def peak_mb() -> float:
    """This process's peak RSS. ``VmHWM`` starts afresh at exec; ``ru_maxrss`` does not: a
    child forked from a large parent (``python -m benchmarks`` after other benchmarks) would
    report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_runtrace(path: str, runs: int, threads: int, retention: int) -> dict[str, Any]:
    from opentelemetry.sdk.trace import TracerProvider

    from runtrace import DuckDBSink, RunSpanProcessor, RunStore, Runtrace, connect

    store = RunStore(max_finished_runs=retention)
    sink = DuckDBSink(path)
    provider = TracerProvider()
    rt = Runtrace(provider, RunSpanProcessor(store, sinks=[sink]))
    start_mb = peak_mb()
    longest = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal longest
        while not done.wait(0.01):
            longest = max(longest, sink._batch.stats.queued)

    def work(t: int) -> None:
        for r in range(t, runs, threads):
            run = rt.begin_run(f"session-{r % 100}", prompt=f"task {r}", agent_name="bench")
            for event in run_events(r):
                run.record(event)
            run.end()

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rt.shutdown()
    provider.shutdown()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    peak = peak_mb()
    con = connect(path)
    in_file = con.execute(
        "SELECT (SELECT count(*) FROM run_events), (SELECT count(*) FROM runs), "
        "(SELECT count(*) FROM runs WHERE status = 'completed')"
    ).fetchone()
    con.close()
    assert in_file is not None
    stats = sink.stats
    return {
        "peak_mb": peak,
        "after_imports_mb": start_mb,
        "seconds": seconds,
        "events_in_file": in_file[0],
        "runs_in_file": in_file[1],
        "completed_in_file": in_file[2],
        "events_lost": stats.events_lost + stats.events_rescued,
        "spilled": stats.events_spilled,
        "store_runs": len(store),
        "evicted": store.evicted_runs,
        "longest_queue": longest,
        "queue_bound": sink._batch.max_queue_size,
    }


def child_bare(runs: int, threads: int) -> dict[str, Any]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    tracer = provider.get_tracer("bench")
    start_mb = peak_mb()

    def work(t: int) -> None:
        for r in range(t, runs, threads):
            attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": f"s{r}"}
            with tracer.start_as_current_span("invoke_agent bench", attributes=attrs) as span:
                child: trace.Span | None = None
                for event in run_events(r):
                    kind = event["type"]
                    flat = {k: v for k, v in event.items() if isinstance(v, (str, int))}
                    span.add_event(kind, flat)
                    if kind == "tool_start":
                        child = tracer.start_span(f"execute_tool {event['name']}")
                    elif kind == "tool_end" and child is not None:
                        child.end()

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    provider.shutdown()
    return {
        "peak_mb": peak_mb(),
        "after_imports_mb": start_mb,
        "seconds": time.perf_counter() - started,
    }


def measure(
    events: int, threads: int, retention: int, with_pandas: bool = False
) -> dict[str, dict[str, Any]]:
    """Both sides, each in a fresh process."""
    runs = events // EVENTS_PER_RUN
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="runtrace-bench-memory-") as tmp:
        for side in ("bare", "runtrace"):
            args = [sys.executable, __file__, "--child", side, str(Path(tmp) / "m.duckdb")]
            args += [str(runs), str(threads), str(retention)]
            args.append("importable" if with_pandas else "hidden")
            done = subprocess.run(args, capture_output=True, text=True, check=True)
            out[side] = json.loads(done.stdout.strip().splitlines()[-1])
    result = out["runtrace"]
    assert result["events_in_file"] == runs * EVENTS_PER_RUN, result
    assert result["runs_in_file"] == result["completed_in_file"] == runs, result
    assert result["events_lost"] == 0, result
    return out


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: peak RSS against bare OpenTelemetry and the budget."""
    events = 100_000 if quick else 1_000_000
    out = measure(events, threads=4, retention=RETENTION)
    ours, bare = out["runtrace"]["peak_mb"], out["bare"]["peak_mb"]
    command = f"python benchmarks/bench_memory.py --events {events}"
    return [
        Figure(
            name=f"peak RSS, {events:,} events through Runtrace into DuckDB, retention on",
            value=ours,
            baseline=bare,
            unit="MB",
            baseline_name="bare OpenTelemetry, same spans",
            command=command,
        ),
        Figure(
            name="peak RSS against the memory budget",
            value=ours,
            baseline=BUDGET_MB,
            unit="MB",
            baseline_name="budget",
            target=1.0,
            command=command,
        ),
    ]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        side, path, runs, threads, retention, pandas = sys.argv[2:8]
        if pandas == "hidden":
            # runtrace does not depend on pandas, but this development environment has it
            # (the notebooks extra) and DuckDB imports it on its first Python-object scan
            # when it can: ~40 MB of RSS that a runtrace install does not pay.
            sys.meta_path.insert(0, _NoPandas())
        if side == "bare":
            result = child_bare(int(runs), int(threads))
        else:
            result = child_runtrace(path, int(runs), int(threads), int(retention))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--retention", type=int, default=RETENTION, help="max_finished_runs")
    parser.add_argument(
        "--with-pandas",
        action="store_true",
        help="let DuckDB import pandas if installed (runtrace does not need it)",
    )
    args = parser.parse_args()
    out = measure(args.events, args.threads, args.retention, args.with_pandas)
    ours, bare = out["runtrace"], out["bare"]
    print(f"{args.events:,} events in {args.events // EVENTS_PER_RUN:,} runs on {args.threads} ")
    print(f"threads, RunStore(max_finished_runs={args.retention}), DuckDBSink defaults")
    for name, r in (("bare OpenTelemetry", bare), ("runtrace + DuckDB", ours)):
        print(
            f"  {name:20s} peak {r['peak_mb']:6.0f} MB (after imports {r['after_imports_mb']:.0f}"
            f" MB), {r['seconds']:.1f} s"
        )
    print(
        f"  queue: longest {ours['longest_queue']:,} of a bound of {ours['queue_bound']:,}; "
        f"spilled {ours['spilled']:,}; store kept {ours['store_runs']:,} runs, evicted "
        f"{ours['evicted']:,}; file: {ours['events_in_file']:,} events, "
        f"{ours['runs_in_file']:,} runs"
    )
    verdict = "ok" if ours["peak_mb"] < BUDGET_MB else "MISSED"
    print(
        f"peak {ours['peak_mb']:.0f} MB = {ours['peak_mb'] / bare['peak_mb']:.2f}x bare "
        f"OpenTelemetry; target < {BUDGET_MB:.0f} MB {verdict}"
    )


if __name__ == "__main__":
    main()
