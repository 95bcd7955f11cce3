"""Reading while processes record: connect() plus a count, against the same read on an idle file.

Run: python benchmarks/bench_readers.py [--rounds 4] [--reads 30] [--runs 40] [--events 500]

One file, seeded with 100,000 events. Rounds alternate two phases: idle (nobody writes; the
baseline) and busy (two processes record RUNS runs of EVENTS events each through ``Runtrace``
and a ``DuckDBSink`` flushing every 50 ms, while this process reads). A read is
``runtrace.connect(path)``, ``SELECT count(*) FROM run_events``, close: what a notebook or the
CLI pays. Reports the median and the slowest read of each phase (wall time: the wait for the
writers' lock is the point), the ratio of the medians, and how many reads were made. Target: a
read while two processes write well under a second (<= 0.25 s median, the slowest under 1 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import Figure

from runtrace import DuckDBSink, RunStore, connect


def seed(path: Path, events: int = 100_000, runs: int = 100) -> None:
    """A file that already holds ``events`` events in ``runs`` ended runs."""
    store = RunStore()
    with DuckDBSink(path, flush_interval=60) as sink:
        ids = [store.create_run(f"seed-{r}", "p").id for r in range(runs)]
        for i in range(events):
            run_id = ids[i % runs]
            sink.on_event(*store.record(run_id, {"type": "text_delta", "text": f"t{i}"}))
        for run_id in ids:
            sink.on_run(store.finish(run_id))


def write(path: str, tag: str, runs: int, events: int) -> None:
    """A recording process: ``runs`` runs of ``events`` events through Runtrace."""
    from opentelemetry.sdk.trace import TracerProvider

    from runtrace import RunSpanProcessor, Runtrace

    sink = DuckDBSink(path, flush_interval=0.05)
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=[sink]))
    for _ in range(runs):
        with rt.start_run(tag, prompt="p") as run:
            run.record({"type": "agent_start", "prompt": "p"})
            for i in range(events - 2):
                run.record({"type": "text_delta", "text": f"{tag} {i}"})
                if i % 50 == 0:
                    time.sleep(0.002)  # an agent waits for its model now and then
            run.record({"type": "agent_end", "text": "done"})
    rt.shutdown()


def read_once(path: Path) -> float:
    start = time.perf_counter()
    con = connect(path)
    try:
        con.execute("SELECT count(*) FROM run_events").fetchone()
    finally:
        con.close()
    return time.perf_counter() - start


def measure(
    rounds: int = 4, reads: int = 30, runs: int = 40, events: int = 500
) -> dict[str, float]:
    """Read times (s) on the idle file and while two processes write, interleaved by round."""
    idle: list[float] = []
    busy: list[float] = []
    with tempfile.TemporaryDirectory(prefix="runtrace-bench-") as tmp:
        path = Path(tmp) / "readers.duckdb"
        seed(path)
        read_once(path)  # warm up
        for r in range(rounds):
            idle.extend(read_once(path) for _ in range(reads))
            writers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--write",
                        str(path),
                        f"w{r}{k}",
                        str(runs),
                        str(events),
                    ]
                )
                for k in range(2)
            ]
            while all(w.poll() is None for w in writers):
                busy.append(read_once(path))
            for w in writers:
                if w.wait(timeout=600) != 0:
                    raise SystemExit(f"a writer failed with exit code {w.returncode}")
        con = connect(path)
        try:
            row = con.execute("SELECT count(*) FROM run_events").fetchone()
        finally:
            con.close()
        expected = 100_000 + rounds * 2 * runs * events
        assert row == (expected,), (row, expected)
    if not busy:
        raise SystemExit("the writers finished before a read: raise --runs")
    return {
        "idle_median": statistics.median(idle),
        "idle_max": max(idle),
        "busy_median": statistics.median(busy),
        "busy_max": max(busy),
        "busy_reads": len(busy),
        "idle_reads": len(idle),
    }


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: a read while two processes write against an idle read."""
    rounds, runs = (2, 20) if quick else (4, 40)
    result = measure(rounds=rounds, runs=runs)
    command = "python benchmarks/bench_readers.py"
    return [
        Figure(
            "connect() + count while 2 processes write, median",
            result["busy_median"] * 1000,
            result["idle_median"] * 1000,
            "ms",
            "idle file",
            command=command,
            bound=250,
        ),
        Figure(
            "connect() + count while 2 processes write, slowest",
            result["busy_max"] * 1000,
            result["idle_max"] * 1000,
            "ms",
            "idle file",
            command=command,
            bound=1000,
        ),
    ]


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--write":
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reads", type=int, default=30, help="idle reads per round")
    parser.add_argument("--runs", type=int, default=40, help="runs per writer per round")
    parser.add_argument("--events", type=int, default=500, help="events per run")
    args = parser.parse_args()
    r = measure(args.rounds, args.reads, args.runs, args.events)
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
    print(
        f"idle file:           median {r['idle_median'] * 1000:7.1f} ms, "
        f"slowest {r['idle_max'] * 1000:7.1f} ms ({r['idle_reads']:.0f} reads)"
    )
    print(
        f"2 processes writing: median {r['busy_median'] * 1000:7.1f} ms, "
        f"slowest {r['busy_max'] * 1000:7.1f} ms ({r['busy_reads']:.0f} reads)"
    )
    print(f"ratio of medians: {r['busy_median'] / r['idle_median']:.2f}x")


if __name__ == "__main__":
    main()
