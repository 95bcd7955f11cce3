"""Readers while processes record: every ``connect()`` sees one consistent state of the file and
its segments (no event without its run's row, no run behind its events, no count going down).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtrace import DuckDBSink, connect

ROOT = Path(__file__).resolve().parents[2]
RECORDER = ROOT / "tests" / "duckdb_helpers" / "recorder.py"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses fork-safe subprocesses")

CHECK = """
SELECT
    (SELECT count(*) FROM runs),
    (SELECT count(*) FROM run_events),
    (SELECT count(*) FROM (SELECT DISTINCT run_id FROM run_events) e
        ANTI JOIN runs r USING (run_id)),
    (SELECT count(*) FROM (SELECT run_id, count(*) AS n FROM run_events GROUP BY run_id) e
        JOIN runs r USING (run_id) WHERE e.n > r.event_count),
    (SELECT count(*) FROM runs WHERE status = 'completed')
"""
"""Runs, events, runs with events but no row, runs whose row counts fewer events than shown,
completed runs: all in one query, so on one state."""


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(RECORDER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_polling_reader_sees_a_consistent_growing_view_while_two_processes_record(
    tmp_path: Path,
) -> None:
    db = tmp_path / "readers.duckdb"
    DuckDBSink(db).shutdown()
    runs, events = 6, 300
    writers = [spawn("runtrace", str(db), tag, str(runs), str(events)) for tag in ("a", "b")]
    seen: list[tuple[int, int, int]] = []
    try:
        while any(w.poll() is None for w in writers):
            con = connect(db)
            try:
                row = con.execute(CHECK).fetchone()
            finally:
                con.close()
            assert row is not None
            n_runs, n_events, orphans, behind, completed = row
            assert orphans == 0, row  # never a run's events without its run row
            assert behind == 0, row  # never a run's row behind the events shown
            if seen:
                last = seen[-1]
                assert n_runs >= last[0] and n_events >= last[1] and completed >= last[2], row
            seen.append((n_runs, n_events, completed))
    finally:
        for w in writers:
            _, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
    assert len(seen) > 1
    con = connect(db)
    try:
        final = con.execute(CHECK).fetchone()
        per_session = con.execute(
            "SELECT session_id, count(*), sum(event_count) FROM runs GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert final == (2 * runs, 2 * runs * events, 0, 0, 2 * runs)
    assert per_session == [("a", runs, runs * events), ("b", runs, runs * events)]
