"""The ``runtrace`` command: a thin layer over the library, one subcommand per task.

Every command takes ``--db PATH`` (default ``$RUNTRACE_DB``, else ``runtrace.duckdb``). Read
commands open the file read-only through :func:`runtrace.connect`, so they work while agents are
recording into it. Expected failures (a missing file, an unknown run, bad SQL, a query parameter
of the wrong type) print one line to stderr and exit with status 1; usage errors (an option's
value that cannot be right: text that is not UTF-8, a path with NUL, a negative --limit) exit
with 2, also in one line.
"""

from __future__ import annotations

import sys
from argparse import ArgumentTypeError
from collections.abc import Sequence

import duckdb

from ..errors import RuntraceError
from .commands import default_db
from .parser import build_parser, path

__all__ = ["main"]

_MAX_MESSAGE = 500
"""Characters of an error line at most."""

_REPEATED = frozenset({"param", "header"})
"""The options given once per value (``action="append"``): lists of strings."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runtrace`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for dest, value in vars(args).items():
        # argparse (3.11, 3.12) turns `--endpoint=--` into [] without calling the option's type
        items = value if dest in _REPEATED else [value]
        if isinstance(value, list) and any(isinstance(item, list) for item in items):
            parser.error(f"argument --{dest.replace('_', '-')}: expected a value, got '--'")
    if not hasattr(args, "db"):
        try:
            args.db = path(default_db())
        except ArgumentTypeError as exc:
            parser.error(f"$RUNTRACE_DB: {exc}")
    if args.command == "demo":
        from ..demo import DEFAULT_RUNS, DEFAULT_SEED

        args.runs = DEFAULT_RUNS if args.runs is None else args.runs
        args.seed = DEFAULT_SEED if args.seed is None else args.seed
    try:
        return int(args.handler(args, sys.stdout))
    except BrokenPipeError:  # `runtrace runs | head`
        return 0
    except (RuntraceError, OSError, ValueError, duckdb.Error) as exc:
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        if len(message) > _MAX_MESSAGE:  # a huge value echoed back helps nobody
            message = message[: _MAX_MESSAGE - 1] + "…"
        print(f"runtrace {args.command}: error: {message}", file=sys.stderr)
        return 1
