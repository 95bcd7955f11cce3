"""The DuckDB sink's counters: what it was given, wrote, and could not write (never silent)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink: what it was given, wrote, and could not write (never silent)."""

    events_received: int
    runs_received: int
    events_written: int
    run_rows_written: int
    flushes_to_file: int
    flushes_to_segments: int
    failed_attempts: int
    events_rescued: int
    events_lost: int
    received_after_shutdown: int
    pending: int
    last_error: str | None = None
    run_rows_lost: int = 0
    """Snapshots that could not be serialised (logged at ERROR); their events are kept."""
    events_spilled: int = 0
    """Events a full queue handed straight to a segment file (``when_full="spill"``)."""
    blocked: int = 0
    """Times a full queue made an agent thread wait (``when_full="block"``)."""
    spill_failures: int = 0
    """Spills that failed; their items went back to the queue (logged)."""
    database_replaced: int = 0
    """Times the file was found deleted or replaced under the sink (logged; writing goes on
    into a new database at the path)."""


@dataclass
class Counters:
    """The mutable counts behind :class:`SinkStats`, shared by the batch builder and writer.

    Changed only with the writer's export lock held, or the builder's lock.
    """

    events_received: int = 0
    runs_received: int = 0
    events_written: int = 0
    run_rows_written: int = 0
    flushes_to_file: int = 0
    flushes_to_segments: int = 0
    failed_attempts: int = 0
    events_rescued: int = 0
    events_lost: int = 0
    events_spilled: int = 0
    run_rows_spilled: int = 0
    last_error: str | None = None
    run_rows_lost: int = 0
    database_replaced: int = 0

    def reset(self) -> None:
        """Back to zero: a forked child is a new writer with counts of its own."""
        Counters.__init__(self)
