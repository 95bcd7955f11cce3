"""What the assembler counts: every span and log record it saw, and where each one went."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["AssemblerStats", "Counters"]


@dataclass(frozen=True, slots=True)
class AssemblerStats:
    """A snapshot of the assembler's counters."""

    spans_seen: int = 0
    """Spans that ended (on_end calls)."""
    logs_seen: int = 0
    runs_made: int = 0
    """Runs created from spans (agents, wrappers doing work, incomplete traces)."""
    runs_claimed: int = 0
    """Run spans the caller records itself (the processor's own)."""
    runs_open: int = 0
    """Runs made and not finished yet."""
    children_held: int = 0
    """Child spans and log records that had to wait for their run's span."""
    held: int = 0
    """Items waiting right now."""
    children_attached_late: int = 0
    """Child spans and log records that attached after their run had ended."""
    orphans_reported: int = 0
    """Held items whose parent span never came (attached to their trace's run, or made into a
    failed run of their own)."""
    held_evicted: int = 0
    """Held items pushed out by ``max_held`` (reported as orphans)."""
    outside_runs: int = 0
    """Tool and model spans and log records with no run anywhere above them."""
    events_lost: int = 0
    """Events the target refused because their run was gone (e.g. evicted from a bounded store)."""
    duplicate_spans: int = 0
    """Spans that ended a second time (a resent batch): ignored."""
    runs_unended: int = 0
    """Runs whose span had not ended at shutdown (ended cancelled)."""
    open_forgotten: int = 0
    """Open spans forgotten because of ``max_open`` (their children may end up outside runs)."""


class Counters:
    """The mutable counters behind :class:`AssemblerStats`."""

    def __init__(self) -> None:
        for field in fields(AssemblerStats):
            setattr(self, field.name, 0)

    spans_seen: int
    logs_seen: int
    runs_made: int
    runs_claimed: int
    runs_open: int
    children_held: int
    children_attached_late: int
    orphans_reported: int
    held_evicted: int
    outside_runs: int
    events_lost: int
    duplicate_spans: int
    runs_unended: int
    open_forgotten: int

    def snapshot(self, *, held: int) -> AssemblerStats:
        values = {f.name: getattr(self, f.name) for f in fields(AssemblerStats) if f.name != "held"}
        return AssemblerStats(held=held, **values)
