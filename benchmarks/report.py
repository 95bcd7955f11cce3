"""One line per figure: what was measured, its baseline from the same run, the ratio, the target."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Figure", "table"]


@dataclass(frozen=True)
class Figure:
    """A measured ``value`` against a ``baseline`` measured in the same run, in ``unit``.

    ``target`` is the ratio ``value / baseline`` to stay at or under (``lower`` is True: a cost)
    or to reach (``lower`` is False: a rate); ``bound`` is the same for ``value`` itself, in
    ``unit``, for targets stated absolutely (queries under 1 s); None when only reported.
    """

    name: str
    value: float
    baseline: float | None
    unit: str
    baseline_name: str = ""
    target: float | None = None
    lower: bool = True
    command: str = ""
    bound: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        checks = []
        ratio = self.ratio
        if self.target is not None and ratio is not None:
            checks.append(ratio <= self.target if self.lower else ratio >= self.target)
        if self.bound is not None:
            checks.append(self.value <= self.bound if self.lower else self.value >= self.bound)
        return all(checks) if checks else None

    @property
    def target_text(self) -> str:
        sign = "<=" if self.lower else ">="
        parts = [f"{sign} {self.target:g}x"] if self.target is not None else []
        if self.bound is not None:
            parts.append(f"{sign} {_number(self.bound, self.unit)}")
        return ", ".join(parts) or "-"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(figures: Iterable[Figure]) -> str:
    """A Markdown table of ``figures``: figure, baseline, ratio, absolute, target, met."""
    lines = [
        "| figure | baseline | ratio | absolute | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        target = f.target_text
        met = {None: "-", True: "yes", False: "**no**"}[f.met]
        base = f"{f.baseline_name}: {_number(f.baseline, f.unit)}" if f.baseline else "-"
        lines.append(
            f"| {f.name} | {base} | {ratio} | {_number(f.value, f.unit)} | {target} | {met} |"
        )
    return "\n".join(lines)
