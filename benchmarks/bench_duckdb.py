"""DuckDB sink throughput and reload, side by side with the limit and the naive way.

One run, N events (default 1,000,000) over 1,000 runs of a realistic mix:

- sink: ``on_event`` for every record, then ``force_flush``: the sink's whole path (queue,
  JSON serialisation, Arrow batches, typed columns in DuckDB, commit).
- arrow limit: ``INSERT INTO run_events SELECT * FROM <ready Arrow table>`` of the same rows,
  typed columns and JSON already computed: what DuckDB alone needs.
- executemany: row-by-row parameterised inserts of a sample, extrapolated to N.
- load_records: reading all N events back into RunRecords, in a fresh process (a process
  rebuilding its store at start-up), against a plain ``fetchall()`` of the same columns in a
  fresh process too; and both again in this one, whose heap already holds the N records it
  built (the GC walks them), alternating.

Sink and limit, then reload and fetch, alternate round by round (``--rounds``, default 3);
medians are reported, with every round. Wall time.

Run: ``python benchmarks/bench_duckdb.py [--events N] [--rounds R] [--sample M]``.
Targets: sink >= 0.3x the Arrow limit, >= 1000x executemany; load_records <= 2x fetchall().
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report import Figure

from runtrace import DuckDBSink, RunSnapshot, RunStore, connect
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


FETCH_SQL = (
    "SELECT run_id, sequence, timestamp_ms, type, event::VARCHAR AS event FROM run_events "
    "ORDER BY run_id, sequence"
)
"""What load_records reads of the events, fetched as plain Python tuples: the reload's baseline."""


def load_only(path: str) -> None:
    """Time load_records in this (fresh) process; print it and the GC pass that follows."""
    t_load, records = timed(lambda: load_records(path))
    t_gc, _ = timed(lambda: [[] for _ in range(10_000)], collect=False)  # the deferred pass
    assert records
    print(t_load, t_gc)


def fetch_only(path: str) -> None:
    """Time a plain fetchall() of the same event columns in this (fresh) process."""
    con = connect(path)
    try:
        t_fetch, rows = timed(lambda: con.execute(FETCH_SQL).fetchall())
    finally:
        con.close()
    assert rows
    print(t_fetch, 0.0)


def in_child(flag: str, path: Path) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, __file__, flag, str(path)], capture_output=True, text=True, check=True
    )
    first, second = (float(x) for x in done.stdout.split())
    return first, second


def time_sink(items: list[tuple[RunSnapshot, RunEventRecord]], path: Path) -> float:
    """The sink end to end: on_event for every record, then force_flush (file made before)."""
    sink = DuckDBSink(path, flush_interval=1.0)

    def feed() -> None:
        on_event = sink.on_event
        for snap, rec in items:
            on_event(snap, rec)
        assert sink.force_flush(timeout_millis=600_000)

    t_sink, _ = timed(feed)
    sink.shutdown()
    assert sink.stats.events_written == len(items), sink.stats
    return t_sink


def time_limit(ready: Any, path: Path) -> float:
    """One INSERT of the same rows, ready as Arrow with their typed columns, into a new file."""
    con = duckdb.connect(str(path))
    cols = ", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS)
    con.execute(f"CREATE TABLE run_events ({cols})")

    def arrow_insert() -> None:
        con.register("ready", ready)
        con.execute("INSERT INTO run_events SELECT * FROM ready")
        con.close()

    t_limit, _ = timed(arrow_insert)
    return t_limit


def measure(n: int = 1_000_000, runs: int = 1_000, rounds: int = 3) -> dict[str, Any]:
    """Sink and Arrow insert of the same rows, then load_records and a plain fetchall() each in a
    fresh process, interleaved round by round; medians in seconds (and the last file's path)."""
    items = build(n, runs)
    tmp = Path(tempfile.mkdtemp(prefix="runtrace-bench-"))
    sink_s: list[float] = []
    limit_s: list[float] = []
    load_s: list[float] = []
    gc_s: list[float] = []
    fetch_s: list[float] = []
    ready = None
    sink_path = tmp / "sink.duckdb"
    for r in range(rounds):
        for leftover in tmp.glob("sink.duckdb*"):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        sink_s.append(time_sink(items, sink_path))
        if ready is None:
            con = duckdb.connect(str(sink_path), read_only=True)
            ready = con.sql("SELECT * FROM run_events").to_arrow_table()
            con.close()
        limit_path = tmp / f"limit{r}.duckdb"
        limit_s.append(time_limit(ready, limit_path))
        limit_path.unlink()
        t_load, t_gc = in_child("--load-only", sink_path)
        load_s.append(t_load)
        gc_s.append(t_gc)
        fetch_s.append(in_child("--fetch-only", sink_path)[0])
    return {
        "items": items,
        "ready": ready,
        "path": sink_path,
        "sink": statistics.median(sink_s),
        "limit": statistics.median(limit_s),
        "load": statistics.median(load_s),
        "gc": statistics.median(gc_s),
        "fetch": statistics.median(fetch_s),
        "rounds": {"sink": sink_s, "limit": limit_s, "load": load_s, "fetch": fetch_s},
    }


def figures(quick: bool) -> list[Figure]:
    """For ``python -m benchmarks``: the sink's rate against a ready Arrow INSERT of the same rows
    (target >= 0.3x), and load_records against a plain fetchall() (target <= 2x)."""
    n, rounds = (200_000, 3) if quick else (1_000_000, 3)
    m = measure(n, 1_000, rounds)
    size = f"{n:,} events in 1,000 runs"
    command = f"python benchmarks/bench_duckdb.py --events {n}"
    return [
        Figure(
            f"DuckDB sink (on_event + force_flush), {size}",
            n / m["sink"],
            n / m["limit"],
            "events/s",
            "one INSERT of the ready Arrow rows",
            target=0.3,
            lower=False,
            command=command,
        ),
        Figure(
            f"load_records, {size}, fresh process",
            m["load"],
            m["fetch"],
            "s",
            "plain fetchall() of the same columns",
            target=2.0,
            command=command,
        ),
    ]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("--load-only", "--fetch-only"):
        (load_only if sys.argv[1] == "--load-only" else fetch_only)(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2_000, help="rows for executemany")
    args = parser.parse_args()
    n = args.events
    print(f"building {n:,} events in {args.runs:,} runs, {args.rounds} rounds ...", flush=True)
    m = measure(n, args.runs, args.rounds)
    items, ready, sink_path = m["items"], m["ready"], m["path"]
    t_sink, t_limit, t_load_fresh, t_gc, t_fetch = (
        m["sink"],
        m["limit"],
        m["load"],
        m["gc"],
        m["fetch"],
    )

    # The naive way: executemany of a sample, per row.
    naive_path = sink_path.with_name("naive.duckdb")
    naive = duckdb.connect(str(naive_path))
    cols = ", ".join(f"{c} {t}" for c, t in EVENT_COLUMNS)
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

    # Reload in this process too, whose heap already holds the N records it built, against a
    # fetchall() here as well (both pay for the GC over that heap), alternating.
    load_here: list[float] = []
    fetch_here: list[float] = []
    for _ in range(args.rounds):
        fetch_con = connect(sink_path)
        t, rows = timed(lambda con=fetch_con: con.execute(FETCH_SQL).fetchall())
        fetch_con.close()
        fetch_here.append(t)
        del rows
        t, records = timed(lambda: load_records(sink_path))
        load_here.append(t)
        assert sum(len(r.events) for r in records) == n
        assert isinstance(records[0], RunRecord)
        del records
    t_load, t_fetch_here = statistics.median(load_here), statistics.median(fetch_here)

    def rate(t: float) -> str:
        return f"{t:8.3f} s  {n / t:>12,.0f} events/s"

    r_limit = t_limit / t_sink
    r_many = t_many / t_sink
    r_load = t_load_fresh / t_fetch
    print()
    print(f"events: {n:,}  runs: {args.runs:,}  cpus: {os.cpu_count()}  medians of {args.rounds}")
    for name, values in m["rounds"].items():
        print(f"  rounds, {name}: " + ", ".join(f"{v:.3f}" for v in values))
    print(f"sink: on_event + force_flush     {rate(t_sink)}")
    print(f"limit: INSERT of a ready Arrow   {rate(t_limit)}")
    print(f"naive: executemany, {len(sample):,} rows   {rate(t_many)}  (scaled to {n:,})")
    print(f"load_records, fresh process      {rate(t_load_fresh)}")
    print(f"  then the first GC pass over the loaded objects: {t_gc:.3f} s")
    print(f"fetchall() of the same columns   {rate(t_fetch)}  (fresh process)")
    print(f"load_records, in this process    {rate(t_load)}  ({n:,} records already live)")
    print(f"fetchall(), in this process      {rate(t_fetch_here)}")
    print("  rounds here, load: " + ", ".join(f"{v:.3f}" for v in load_here))
    print("  rounds here, fetch: " + ", ".join(f"{v:.3f}" for v in fetch_here))
    print(
        f"  sink parts: JSON + Arrow batch {t_ser:.3f} s; typed columns in DuckDB {t_typed:.3f} s"
    )
    print()
    print(f"sink / arrow limit  = {r_limit:6.2f}x  (target >= 0.3x)  {_verdict(r_limit >= 0.3)}")
    print(f"sink / executemany  = {r_many:6.0f}x  (target >= 1000x) {_verdict(r_many >= 1000)}")
    print(f"load / fetchall     = {r_load:6.2f}x  (target <= 2x)    {_verdict(r_load <= 2)}")
    r_here = t_load / t_fetch_here
    print(f"  the same here     = {r_here:6.2f}x  ({n:,} records live) {_verdict(r_here <= 2)}")


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


if __name__ == "__main__":
    main()
