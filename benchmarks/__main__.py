"""Every benchmark, each with its baseline measured in the same run, as one table.

Run: python -m benchmarks [--quick] [--only NAME ...] [--out FILE.md]

Every ``bench_*.py`` module beside this file that has ``figures(quick) -> list[Figure]`` is run,
in name order (a new benchmark joins by having one; the others are scripts only and are named on
stderr), each in turn (they are also scripts of their own, with more options), and one Markdown
table is printed: figure, baseline, ratio, absolute, target, met. ``--quick`` runs smaller
workloads (about five minutes on 2 cores in all). A benchmark that fails is reported on stderr
and in the table, and the exit status is 1; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import Figure, table

HERE = Path(__file__).resolve().parent


def benchmarks() -> list[str]:
    """The ``bench_*`` modules beside this file, by name."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def machine() -> str:
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {python}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="e.g. bench_agent")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args()
    known = benchmarks()
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (there are {', '.join(known)})")
    figures: list[Figure] = []
    failed: list[str] = []
    scripts: list[str] = []
    timings: list[str] = []
    for name in args.only or known:
        module = importlib.import_module(name)
        run = getattr(module, "figures", None)
        if run is None:
            scripts.append(name)
            continue
        started = time.perf_counter()
        print(f"{name} ...", file=sys.stderr, flush=True)
        try:
            figures.extend(run(args.quick))
        except Exception:  # one broken benchmark must not cost the others' figures
            traceback.print_exc()
            failed.append(name)
        seconds = time.perf_counter() - started
        timings.append(f"{name} {seconds:.0f} s")
        print(f"{name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    if scripts:
        print(f"no figures() (scripts only): {', '.join(scripts)}", file=sys.stderr)
    text = f"{machine()}; `python -m benchmarks{' --quick' if args.quick else ''}`\n\n"
    text += table(figures)
    if failed:
        text += f"\n\n**failed** (see stderr): {', '.join(failed)}"
    print(text)
    print("took: " + ", ".join(timings), file=sys.stderr)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
