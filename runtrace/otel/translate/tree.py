"""The assembler's memory of spans: which are open, which ended, what waits for which parent.

Spans arrive in two orders. In-process every span starts before its children and the processor
sees it start; out of process (OTLP) only ended spans arrive, children before their parents,
possibly over several requests. So a child whose parent is unknown (not arrived) or undecided
(an agent that may only wrap others, a wrapper not ended) is *held* under that parent's span id
until the parent is known. Every structure here is bounded; what a bound pushes out is handed back
to the caller, never dropped here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .reading import SpanReading

__all__ = ["Held", "Node", "Run", "Tree"]

State = Literal["pending", "run", "plain", "wrapper"]
"""pending: an agent or wrapper not decided yet. run: the span is a run. plain: a tool, model or
other span (its events go to the run above it). wrapper: decided not to be a run."""


@dataclass(eq=False, slots=True)
class Run:
    """A run the assembler made (or was told about: ``claimed``) and what it tracks for it."""

    run_id: str
    session_id: str
    node: Node
    claimed: bool = False
    started: bool = False  # agent_start recorded (or not ours to record)
    own: bool = False  # one of runtrace's own runs, claimed: its caller records every event
    finished: bool = False
    deferred: bool = False  # its span ended UNSET out of process: finish at the batch's end
    turns: int = 0
    open_tools: dict[int, Node] = field(default_factory=dict)  # in-process: open tool spans
    last_end_ns: int = 0
    last_cancel: str | None = None  # the last child to end signalled a cancellation
    late_cancel: str | None = None  # a child that outlived the run's span ended it
    interrupted: str | None = None  # a tool call that ended after the run's span did
    sequences: set[int] = field(default_factory=set)  # runtrace sequences already recorded
    success: bool = False
    output: str = ""
    outer: Run | None = None  # the run this one is a subagent of, waiting for its end


@dataclass(eq=False, slots=True)
class Node:
    """One span the assembler knows: its latest reading and what was decided about it."""

    reading: SpanReading
    parent_id: int | None
    state: State
    live: Any = None  # the SDK span while it is open in-process: attributes may still come
    attributes: Mapping[str, Any] | None = None  # the span's, until a run was made of it
    seen_start: bool = False
    ended: bool = False
    run: Run | None = None
    work_child: bool = False  # a tool or model span directly under it
    agent_child: bool = False  # an agent span directly under it
    inner_run: Run | None = None  # a wrapper's first run inside it
    owner: Run | None = None  # an open tool span: the run that counts it open


@dataclass(eq=False, slots=True)
class Held:
    """Something waiting for its run: an ended child span, a nested run's link, a log record."""

    kind: Literal["span", "link", "log"]
    trace_id: int
    at_ns: int
    node: Node | None = None
    log: tuple[str, Mapping[str, Any]] | None = None
    redirect: Run | None = None  # a wrapper passed on the way up holds this run: the fallback
    wrapper: Node | None = None  # the outermost wrapper passed: the run if no other comes
    was_held: bool = False


class Tree:
    """Open and ended spans, and held items by the span id they wait for."""

    def __init__(self, *, max_open: int, max_ended: int, max_held: int) -> None:
        for name, value in (("max_open", max_open), ("max_ended", max_ended)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if max_held < 0:
            raise ValueError(f"max_held must be at least 0, not {max_held}")
        self._max_open = max_open
        self._max_ended = max_ended
        self._max_held = max_held
        self.open: OrderedDict[int, Node] = OrderedDict()
        self.ended: OrderedDict[int, Node] = OrderedDict()
        self.held: OrderedDict[int, list[Held]] = OrderedDict()
        self.held_count = 0

    def get(self, span_id: int | None) -> Node | None:
        if span_id is None:
            return None
        node = self.open.get(span_id)
        return node if node is not None else self.ended.get(span_id)

    def add_open(self, node: Node) -> list[Node]:
        """Track an open span; returns the oldest open spans pushed out by ``max_open``."""
        self.open[node.reading.span_id] = node
        out: list[Node] = []
        while len(self.open) > self._max_open:
            out.append(self.open.popitem(last=False)[1])
        return out

    def add_ended(self, node: Node) -> None:
        """Remember an ended span (for children that end after it); the oldest are forgotten."""
        span_id = node.reading.span_id
        self.open.pop(span_id, None)
        self.ended[span_id] = node
        while len(self.ended) > self._max_ended:
            self.ended.popitem(last=False)

    def hold(self, span_id: int, item: Held) -> list[tuple[int, list[Held]]]:
        """Hold ``item`` until span ``span_id`` is known; returns the oldest held groups that
        ``max_held`` pushes out (the caller settles them)."""
        group = self.held.get(span_id)
        if group is None:
            group = self.held[span_id] = []
        group.append(item)
        self.held_count += 1
        out: list[tuple[int, list[Held]]] = []
        while self.held_count > self._max_held and self.held:
            out.append(self.pop_oldest())
        return out

    def pop_oldest(self) -> tuple[int, list[Held]]:
        span_id, group = self.held.popitem(last=False)
        self.held_count -= len(group)
        return span_id, group

    def release(self, span_id: int) -> list[Held]:
        """Everything held for ``span_id``, no longer held."""
        group = self.held.pop(span_id, None)
        if group is None:
            return []
        self.held_count -= len(group)
        return group

    def peek(self, span_id: int) -> list[Held]:
        return self.held.get(span_id, [])

    def resolve(self, start: int | None, item: Held) -> Run | int | None:
        """Walk up from span ``start``: the run ``item`` belongs to; else the span id to wait for
        (unknown, undecided, or the nearest still open); else None (no run above: ``item``'s
        ``redirect`` / ``wrapper`` then say where it may go)."""
        wait: int | None = None
        span_id = start
        while span_id is not None:
            node = self.get(span_id)
            if node is None or node.state == "pending":
                return wait if wait is not None else span_id
            if node.state == "run":
                return node.run
            if node.state == "wrapper" and item.kind != "link":
                if item.redirect is None:
                    item.redirect = node.inner_run
                item.wrapper = node
            if not node.ended and wait is None:
                wait = span_id
            span_id = node.parent_id
        return wait
