"""DuckDB sink throughput and reload, side by side with the limit and the naive way.

One run, N events (default 1,000,000) over 1,000 runs of a realistic mix:

- sink: ``on_event`` for every record, then ``force_flush``: the sink's whole path (queue,
  JSON serialisation, Arrow batches, typed columns in DuckDB, commit).
- arrow limit: ``INSERT INTO run_events SELECT * FROM <ready Arrow table>`` of the same rows,
  typed columns and JSON already computed: what DuckDB alone needs.
- executemany: row-by-row parameterised inserts of a sample, extrapolated to N.
- load_records: reading all N events back into RunRecords, in a fresh process (a process
  rebuilding its store at start-up; the target) and in this one, whose heap already holds
  the N records it built.

Run: ``python benchmarks/bench_duckdb.py [--events N] [--sample M]``.
Targets: sink >= 0.3x the Arrow limit, >= 1000x executemany; reload <= 2 s for 1M events.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtrace import DuckDBSink, RunSnapshot, RunStore
from runtrace.duckdb import load_records
from runtrace.duckdb.rows import events_table
from runtrace.duckdb.schema import EVENT_COLUMNS, events_select_sql
from runtrace.runs import RunEventRecord, RunRecord


def make_event(i: int) -> dict[str, Any]:
    k = i % 10
    if k == 0:
        return {"type": "turn_start", "turn": i}
    if k in (1, 2, 3, 4):
        return {"type": "text_delta", "text": f"token {i} of the answer, some words here"}
    if k == 5:
        return {"type": "tool_start", "id": f"call_{i}", "name": "bash"}
    if k == 6:
        return {
            "type": "tool_execution_start",
            "id": f"call_{i}",
            "name": "bash",
            "args": {"cmd": "ls -la", "cwd": "/work"},
        }
    if k == 7:
        return {
            "type": "tool_end",
            "id": f"call_{i}",
            "name": "bash",
            "output": "total 0\nfile.txt",
            "exit_code": i % 3,
        }
    if k == 8:
        return {
            "type": "turn_end",
            "turn": i,
            "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
        }
    return {"type": "memory_stored", "memory_id": f"m{i}", "kind": "fact"}


def build(n_events: int, n_runs: int) -> list[tuple[RunSnapshot, RunEventRecord]]:
    store = RunStore()
    ids = [store.create_run(f"session-{r % 50}", f"prompt {r}").id for r in range(n_runs)]
    out = []
    for i in range(n_events):
        out.append(store.record(ids[i % n_runs], make_event(i), at_ms=1_700_000_000_000 + i))
    return out


def timed(fn: Any, *, collect: bool = True) -> tuple[float, Any]:
    if collect:
        gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def load_only(path: str) -> None:
    """Time load_records in this (fresh) process; print it and the GC pass that follows."""
    t_load, records = timed(lambda: load_records(path))
    t_gc, _ = timed(lambda: [[] for _ in range(10_000)], collect=False)  # the deferred pass
    assert records
    print(t_load, t_gc)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--load-only":
        load_only(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=2_000, help="rows for executemany")
    args = parser.parse_args()
    n = args.events
    print(f"building {n:,} events in {args.runs:,} runs ...", flush=True)
    items = build(n, args.runs)
    tmp = Path(tempfile.mkdtemp(prefix="runtrace-bench-"))

    # The sink, end to end.
    sink_path = tmp / "sink.duckdb"
    sink = DuckDBSink(sink_path, flush_interval=1.0)

    def feed() -> None:
        on_event = sink.on_event
        for snap, rec in items:
            on_event(snap, rec)
        assert sink.force_flush(timeout_millis=600_000)

    t_sink, _ = timed(feed)
    sink.shutdown()
    assert sink.stats.events_written == n, sink.stats

    # Reload in a fresh process: a process rebuilding its store at start-up (the target).
    fresh = subprocess.run(
        [sys.executable, __file__, "--load-only", str(sink_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    t_load_fresh, t_gc = (float(x) for x in fresh.stdout.split())

    # The limit: the same rows, ready as Arrow, one INSERT.
    con = duckdb.connect(str(tmp / "sink.duckdb"), read_only=True)
    ready = con.sql("SELECT * FROM run_events").to_arrow_table()
    con.close()
    limit_con = duckdb.connect(str(tmp / "limit.duckdb"))
    cols = ", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS)
    limit_con.execute(f"CREATE TABLE run_events ({cols})")

    def arrow_insert() -> None:
        limit_con.register("ready", ready)
        limit_con.execute("INSERT INTO run_events SELECT * FROM ready")
        limit_con.close()

    t_limit, _ = timed(arrow_insert)

    # The naive way: executemany of a sample, per row.
    naive = duckdb.connect(str(tmp / "naive.duckdb"))
    naive.execute(f"CREATE TABLE run_events ({cols})")
    sample = [tuple(r.values()) for r in ready.slice(0, args.sample).to_pylist()]
    marks = ", ".join("?" for _ in EVENT_COLUMNS)

    def many() -> None:
        naive.executemany(f"INSERT INTO run_events VALUES ({marks})", sample)
        naive.close()

    t_many_sample, _ = timed(many)
    t_many = t_many_sample / len(sample) * n

    # Serialisation alone, for the breakdown.
    snaps, recs = zip(*items, strict=True)
    t_ser, _ = timed(lambda: events_table([s.id for s in snaps], list(recs)))
    scratch = duckdb.connect()
    batch = events_table([s.id for s in snaps], list(recs))
    scratch.register("b", batch)
    t_typed, _ = timed(lambda: scratch.sql(events_select_sql("b")).to_arrow_table())

    # Reload in this process too, whose heap already holds the N records it built.
    t_load, records = timed(lambda: load_records(sink_path))
    assert sum(len(r.events) for r in records) == n
    assert isinstance(records[0], RunRecord)
    del records

    def rate(t: float) -> str:
        return f"{t:8.3f} s  {n / t:>12,.0f} events/s"

    r_limit = t_limit / t_sink
    r_many = t_many / t_sink
    load_1m = t_load_fresh * 1_000_000 / n
    print()
    print(f"events: {n:,}  runs: {args.runs:,}  cpus: {os.cpu_count()}")
    print(f"sink: on_event + force_flush     {rate(t_sink)}")
    print(f"limit: INSERT of a ready Arrow   {rate(t_limit)}")
    print(f"naive: executemany, {len(sample):,} rows   {rate(t_many)}  (scaled to {n:,})")
    print(f"load_records, fresh process      {rate(t_load_fresh)}")
    print(f"  then the first GC pass over the loaded objects: {t_gc:.3f} s")
    print(f"load_records, in this process    {rate(t_load)}  ({n:,} records already live)")
    print(
        f"  sink parts: JSON + Arrow batch {t_ser:.3f} s; typed columns in DuckDB {t_typed:.3f} s"
    )
    print()
    print(f"sink / arrow limit  = {r_limit:6.2f}x  (target >= 0.3x)  {_verdict(r_limit >= 0.3)}")
    print(f"sink / executemany  = {r_many:6.0f}x  (target >= 1000x) {_verdict(r_many >= 1000)}")
    print(f"load_records of 1M  = {load_1m:6.2f} s  (target <= 2 s)   {_verdict(load_1m <= 2)}")


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


if __name__ == "__main__":
    main()
