"""Every benchmark, each with its baseline measured in the same run, as one table.

Run: python -m benchmarks [--quick] [--only NAME ...] [--out FILE.md]

Each ``bench_*.py`` module offers ``figures(quick) -> list[Figure]``; this runs them one after
another (they are also scripts of their own, with more options) and prints one Markdown table:
figure, baseline, ratio, absolute, target, met. ``--quick`` runs smaller workloads (minutes, not
tens of minutes); README's Performance table comes from a full run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from report import Figure, table

BENCHMARKS = (
    "bench_agent",
    "bench_record",
    "bench_store",
    "bench_frameworks",
    "bench_duckdb",
    "bench_queries",
    "bench_memory",
    "bench_load",
    "bench_faults",
    "bench_serve",
)


def machine() -> str:
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {python}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME", help="e.g. bench_agent")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()
    figures: list[Figure] = []
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(name)
        run = getattr(module, "figures", None)
        if run is None:
            print(f"{name}: no figures() yet; run it as a script", file=sys.stderr)
            continue
        started = time.perf_counter()
        print(f"{name} ...", file=sys.stderr, flush=True)
        figures.extend(run(args.quick))
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    text = f"{machine()}; `python -m benchmarks{' --quick' if args.quick else ''}`\n\n"
    text += table(figures)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
