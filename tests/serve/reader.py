"""A reader of databases in another process, as the CLI or a notebook reads one while the
server writes it (two connections of one process to one file share its transactions).

    python reader.py        then one path a line on stdin: one line of JSON on stdout each,
                            every run in that file as agent.describe has it
"""

from __future__ import annotations

import json
import sys

from agent import describe

from runtrace.duckdb import load_records

if __name__ == "__main__":
    for line in sys.stdin:
        runs = {r.snapshot.id: describe(r) for r in load_records(line.strip())}
        print(json.dumps(runs), flush=True)
