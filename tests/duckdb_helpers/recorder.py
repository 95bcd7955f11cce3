"""A recording process for the multi-process tests: ``python -m ... recorder MODE DB [ARGS]``.

Modes:
- ``batch DB TAG RUNS EVENTS``: record RUNS runs of EVENTS events each, end them, shut down.
- ``forever DB``: end one run completed and one cancelled, then record events into a third
  run forever, printing ``flushed N`` after each force_flush, until it is killed.
- ``trickle DB EVENTS``: record EVENTS events into one run, a few at a time, then end it.
- ``runtrace DB TAG RUNS EVENTS``: RUNS runs of EVENTS events each through ``Runtrace`` on an
  SDK provider (``agent_start``, text deltas, ``agent_end``), one after another, a pause now and
  then so that readers and the other writer interleave; then shut down.
"""

from __future__ import annotations

import sys
import time

from runtrace import DuckDBSink, RunStore


def through_runtrace(db: str, tag: str, runs: int, events: int) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from runtrace import RunSpanProcessor, Runtrace

    sink = DuckDBSink(db, flush_interval=0.05)
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=[sink]))
    for r in range(runs):
        with rt.start_run(tag, prompt="p") as run:
            run.record({"type": "agent_start", "prompt": "p"})
            for i in range(events - 2):
                run.record({"type": "text_delta", "text": f"{tag} {r} {i}"})
                if i % 100 == 0:
                    time.sleep(0.005)
            run.record({"type": "agent_end", "text": "done"})
    rt.shutdown()
    print("done", flush=True)


def main(argv: list[str]) -> None:
    mode, db = argv[0], argv[1]
    if mode == "runtrace":
        through_runtrace(db, argv[2], int(argv[3]), int(argv[4]))
        return
    store = RunStore()
    sink = DuckDBSink(db, flush_interval=0.05)

    def record(run_id: str, event: dict[str, object]) -> None:
        snap, rec = store.record(run_id, event)
        sink.on_event(snap, rec)

    def start(session: str, run_id: str | None = None) -> str:
        snap = store.create_run(session, "prompt", run_id=run_id)
        sink.on_run(snap)
        record(snap.id, {"type": "agent_start", "prompt": "prompt"})
        return snap.id

    if mode == "batch":
        tag, runs, events = argv[2], int(argv[3]), int(argv[4])
        ids = [start(tag, f"{tag}-{r}") for r in range(runs)]
        for i in range(events - 1):
            for run_id in ids:
                record(run_id, {"type": "text_delta", "text": f"{tag} {i}"})
            if i % 50 == 0:
                time.sleep(0.01)  # let the other process and the flusher interleave
        for run_id in ids:
            sink.on_run(store.finish(run_id))
        sink.shutdown()
        print("done", flush=True)
    elif mode == "forever":
        done = start("s", "completed-run")
        record(done, {"type": "agent_end", "text": "ok"})
        sink.on_run(store.finish(done))
        cancelled = start("s", "cancelled-run")
        store.mark_cancelled(cancelled)
        sink.on_run(store.finish(cancelled))
        live = start("s", "live-run")
        n = 1
        while True:
            for _ in range(100):
                record(live, {"type": "text_delta", "text": f"chunk {n}"})
                n += 1
            sink.force_flush()
            print(f"flushed {n}", flush=True)
            time.sleep(0.01)
    elif mode == "trickle":
        total = int(argv[2])
        run_id = start("s", "trickle-run")
        for i in range(total - 1):
            record(run_id, {"type": "text_delta", "text": f"t{i}"})
            if i % 20 == 0:
                time.sleep(0.01)
        sink.on_run(store.finish(run_id))
        sink.shutdown()
        print("done", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
