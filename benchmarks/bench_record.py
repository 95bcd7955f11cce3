"""Per-event cost of ``run.record`` against a bare ``span.add_event`` on the same span.

Run: python benchmarks/bench_record.py [--events N] [--rounds R]

Both sides run on the same SDK TracerProvider (with runtrace's RunSpanProcessor on it), inside the
same run, interleaved round by round; the bare side adds the very attributes runtrace would add.
``run.record`` also validates the event (for a dict), appends it to the store and applies the
status rules, which the bare call does not; the two steps are also timed alone, on a separate
store, to show where the difference goes. Ratios of medians are printed, since absolute
timings on shared machines drift from minute to minute; times are the process's CPU time.
Target: record(model) <= 1.5x bare.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from runtrace import RunHandle, RunSpanProcessor, RunStore, Runtrace, SpanSettings
from runtrace.events import parse_event
from runtrace.otel import event_attributes

CASES: dict[str, dict[str, Any]] = {
    "turn_start": {"type": "turn_start", "turn": 3},
    "tool_output_delta": {
        "type": "tool_output_delta",
        "id": "call-1",
        "name": "bash",
        "delta": "line of output\n",
    },
}


def per_event(n: int, call: Callable[[], object]) -> float:
    start = time.process_time_ns()
    for _ in range(n):
        call()
    return (time.process_time_ns() - start) / n


def bench_case(
    run: RunHandle, settings: SpanSettings, event: dict[str, Any], n: int
) -> dict[str, float]:
    model = parse_event(event)
    attrs = event_attributes(model, settings, sequence=1)
    store = RunStore()
    side_run = store.create_run("side").id
    store_record = store.record
    span = run.span
    name = model.type
    add_event = span.add_event
    record = run.record
    settings_ = settings
    return {
        "bare": per_event(n, lambda: add_event(name, attrs)),
        "model": per_event(n, lambda: record(model)),
        "dict": per_event(n, lambda: record(event)),
        # where the difference goes: the two steps record adds to the bare call
        "attributes": per_event(n, lambda: event_attributes(model, settings_, sequence=1)),
        "store": per_event(n, lambda: store_record(side_run, model)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    provider = TracerProvider()
    rt = Runtrace(provider, RunSpanProcessor(settings=SpanSettings(capture_content=False)))
    results: dict[str, dict[str, list[float]]] = {
        case: {key: [] for key in ("bare", "model", "dict", "attributes", "store")}
        for case in CASES
    }
    with rt.start_run("bench", agent_name="bench") as run:
        for _ in range(args.rounds):
            for case, event in CASES.items():
                for key, value in bench_case(run, rt.settings, event, args.events).items():
                    results[case][key].append(value)
    provider.shutdown()
    print(f"events per round: {args.events}, rounds: {args.rounds} (medians, µs per event)")
    for case, values in results.items():
        bare = statistics.median(values["bare"])
        print(f"{case}:")
        print(f"  span.add_event (bare, same attributes) {bare * 1e-3:7.3f} µs   1.00x")
        for key, label in (("model", "event model"), ("dict", "dict, validated")):
            value = statistics.median(values[key])
            print(f"  run.record ({label:16s})      {value * 1e-3:7.3f} µs {value / bare:6.2f}x")
        for key, label in (("store", "RunStore.record"), ("attributes", "event_attributes")):
            value = statistics.median(values[key])
            print(f"    of which {label:28s}{value * 1e-3:7.3f} µs")


if __name__ == "__main__":
    main()
