"""How the CLI prints: tables, CSV and JSON from Arrow tables; progress bars on a terminal."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TextIO

import pyarrow as pa
from tqdm import tqdm

__all__ = ["Progress", "cell", "json_value", "progress", "write_table"]

Progress = Callable[[int, int], None]
"""A progress callback: ``(done, total)``."""


def progress(
    label: str, unit: str = "run", stream: TextIO | None = None, *, scale: bool = False
) -> tuple[Progress, Callable[[], None]]:
    """A progress callback drawing a tqdm bar on ``stream`` (stderr), and the function that
    closes it. The bar shows only on a terminal (tqdm's ``disable=None``), so pipes and CI logs
    stay quiet. ``scale`` shows large counts as k/M/G (for bytes)."""
    bar: tqdm[Any] | None = None
    file = sys.stderr if stream is None else stream

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total,
                desc=label,
                unit=unit,
                unit_scale=scale,
                unit_divisor=1024 if scale else 1000,
                file=file,
                disable=None,
            )
        if total != bar.total:  # a stream of unknown length, or a file that grew
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


def cell(value: Any, width: int | None = None) -> str:
    if value is None:
        text = ""
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ", timespec="milliseconds")
    elif isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1_000 else f"{value:.0f}"  # no 5.177e+04
    elif isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = text.replace("\n", " ")
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def json_value(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def write_table(table: pa.Table, out: TextIO, fmt: str = "table", max_width: int = 60) -> None:
    """Print ``table`` as aligned text, CSV, or JSON (an array of objects)."""
    rows = table.to_pylist()
    names = table.column_names
    if fmt == "json":
        json.dump(rows, out, default=json_value, ensure_ascii=False, indent=1)
        out.write("\n")
        return
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([cell(row[n]) for n in names])
        return
    cells = [[cell(row[n], max_width) for n in names] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out.write(line(names) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write(line(row) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
