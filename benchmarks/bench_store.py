"""Per-call cost of RunStore.record against a plain list.append of the same record.

Run: python benchmarks/bench_store.py [--events N] [--rounds R]

Both sides run in the same process, interleaved round by round, and the ratio of medians is
reported, since absolute timings on shared machines drift from minute to minute; times are the
process's CPU time, which other processes' load does not inflate.
"""

from __future__ import annotations

import argparse
import statistics
import time

from runtrace import RunStore
from runtrace.events import parse_event
from runtrace.runs import RunEventRecord, event_record

EVENT_DICT = {"type": "tool_start", "id": "call-1", "name": "bash"}


def bench_list_append(n: int) -> float:
    """The floor: build the same record the store builds and append it to a list, no lock."""
    event = parse_event(EVENT_DICT)
    records: list[RunEventRecord] = []
    append = records.append
    start = time.process_time_ns()
    for i in range(n):
        append(event_record(i, time.time_ns() // 1_000_000, event))
    return (time.process_time_ns() - start) / n


def bench_record(n: int, event: object) -> float:
    store = RunStore()
    run_id = store.create_run("bench").id
    record = store.record
    start = time.process_time_ns()
    for _ in range(n):
        record(run_id, event)  # type: ignore[arg-type]
    return (time.process_time_ns() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    model = parse_event(EVENT_DICT)
    results: dict[str, list[float]] = {"append": [], "model": [], "dict": []}
    for _ in range(args.rounds):
        results["append"].append(bench_list_append(args.events))
        results["model"].append(bench_record(args.events, model))
        results["dict"].append(bench_record(args.events, EVENT_DICT))
    base = statistics.median(results["append"])
    print(f"events per round: {args.events}, rounds: {args.rounds} (medians)")
    print(f"list.append of the same record (built) {base * 1e-3:8.3f} µs/call   1.00x")
    for key, label in (("model", "event model"), ("dict", "dict, validated")):
        value = statistics.median(results[key])
        print(
            f"RunStore.record ({label:16s})      {value * 1e-3:8.3f} µs/call {value / base:6.2f}x"
        )


if __name__ == "__main__":
    main()
