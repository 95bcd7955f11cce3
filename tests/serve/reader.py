"""A reader of the database in another process, as the CLI or a notebook reads it while the
server writes (two connections of one process to one file would share its transactions).

    python reader.py PATH    prints every run (as agent.describe has it) as JSON
"""

from __future__ import annotations

import json
import sys

from agent import describe

from runtrace.duckdb import load_records

if __name__ == "__main__":
    json.dump({r.snapshot.id: describe(r) for r in load_records(sys.argv[1])}, sys.stdout)
