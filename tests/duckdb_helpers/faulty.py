"""A recording process whose file writes can be made to fail: ``python -m ... faulty DB``.

The fault tests run as root, where permissions do not stop a write; a file-size limit does.
With ``SIGXFSZ`` ignored, every write past ``RLIMIT_FSIZE`` fails with ``EFBIG`` (what DuckDB
and Parquet see as a failed write, as on a full disk), and the process can lift its own soft
limit again (space is back). The limit is per process, so it never touches the test runner.

It reads one command a line on stdin and answers one JSON object a line on stdout:

- ``open [KEY=VALUE ...]``: a ``DuckDBSink`` on DB (numeric keywords: ``max_retries``,
  ``flush_interval``, ``max_queue_size``, ...); answers ``{"error": ...}`` when opening fails
- ``limit BYTES`` / ``unlimit``: set or lift the file-size limit
- ``record N``: one run of N text deltas, ended
- ``flush``: ``force_flush``; answers its result and the sink's stats
- ``read``: ``runtrace.connect`` and a count of runs and events, or the error
- ``persisted``: the run ids the persisted listeners heard of so far
- ``shutdown``: ``shutdown``; answers the stats
"""

from __future__ import annotations

import dataclasses
import json
import logging
import resource
import signal
import sys
from typing import Any

from runtrace import DuckDBSink, RunStore, connect


def main(db: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="LOG %(message)s")
    store = RunStore()
    sink: DuckDBSink | None = None
    heard: list[str] = []
    for line in sys.stdin:
        command, *args = line.split()
        answer: dict[str, Any] = {}
        try:
            if command == "open":
                options = {
                    k: int(v) if v.isdigit() else float(v) for k, v in (a.split("=") for a in args)
                }
                sink = DuckDBSink(db, raise_errors=False, **options)  # type: ignore[arg-type]
                sink.add_persisted_listener(heard.extend)
            elif command == "limit":
                _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
                resource.setrlimit(resource.RLIMIT_FSIZE, (int(args[0]), hard))
            elif command == "unlimit":
                _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
                resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            elif command == "record":
                assert sink is not None
                snap = store.create_run("faulty", "prompt")
                sink.on_run(snap)
                for i in range(int(args[0])):
                    sink.on_event(*store.record(snap.id, {"type": "text_delta", "text": f"t{i}"}))
                sink.on_run(store.finish(snap.id))
                answer["run_id"] = snap.id
            elif command == "flush":
                assert sink is not None
                answer["flushed"] = sink.force_flush(10_000)
                answer["stats"] = dataclasses.asdict(sink.stats)
            elif command == "read":
                con = connect(db, lock_timeout=2.0)
                try:
                    answer["counts"] = con.execute(
                        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM run_events)"
                    ).fetchone()
                finally:
                    con.close()
            elif command == "persisted":
                answer["persisted"] = heard
            elif command == "shutdown":
                assert sink is not None
                sink.shutdown(10_000)
                answer["stats"] = dataclasses.asdict(sink.stats)
            else:
                answer["error"] = f"unknown command {command!r}"
        except Exception as exc:
            answer["error"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
