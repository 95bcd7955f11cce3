"""The live side of runs: what the processor knows about a run whose span is still open.

:class:`LiveRun` is one open run (its span, token, child spans, pickup bookkeeping);
:class:`LiveRuns` is the processor's table of them, by run id, by span and by session, under one
lock, so that "the session's current run" and "this span's run" always agree.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan

from ..hooks import CancellationToken
from ..runs import RunSnapshot
from . import semconv as sc
from .sdk_span import clean_event_limit

__all__ = ["ChildKey", "LiveRun", "LiveRuns"]

ChildKey = tuple[str, str]
"""Pairs a child span's opening and closing events: (``"tool"``, call id) or
(``"subagent"``, task id)."""


_NONE: Mapping[str, Any] = MappingProxyType({})

_Expected = tuple[str, Mapping[str, Any], Mapping[str, Any] | None]

_Outline = tuple[Any, ...]
"""What the translator needs of an ended run span (no events: the run has them all)."""


_OUTLINE_KEYS = (
    sc.SPAN_KIND,
    sc.RUN_ID,
    sc.GEN_AI_CONVERSATION_ID,
    sc.GEN_AI_AGENT_NAME,
    sc.RUN_STATUS,
    sc.ERROR_TYPE,
)
"""The attributes of an ended run span the translator reads (the prompt and result are the
store's already)."""


def _outline(span: ReadableSpan) -> _Outline:
    # The ended span's own attribute mapping, by reference (it no longer changes), filtered
    # only if the translator ever asks: copying it costs a Python call per key at every own
    # run's end, and few ended runs are ever claimed. The span (with its events) is not kept.
    return (
        span.name,
        span.context,
        span.parent,
        span.resource,
        span.attributes,
        span.kind,
        span.status,
        span.start_time,
        span.end_time,
    )


def _readable(outline: _Outline) -> ReadableSpan:
    name, context, parent, resource, attributes, kind, status, start, end = outline
    attributes = dict(attributes or {})
    kept = {key: attributes[key] for key in _OUTLINE_KEYS if key in attributes}
    return ReadableSpan(
        name,
        context,
        parent,
        resource=resource,
        attributes=kept,
        kind=kind,
        status=status,
        start_time=start,
        end_time=end,
    )


class LiveRun:
    """One run whose span has not ended yet (kept past the end by its handle)."""

    __slots__ = (
        "cancel_ns",
        "children",
        "claimed",
        "context",
        "drops_reported",
        "error_type",
        "event_limit",
        "final",
        "lock",
        "owned",
        "picked",
        "recorded",
        "run_id",
        "session_id",
        "settled",
        "span",
        "span_added",
        "token",
    )

    def __init__(self, run_id: str, session_id: str, span: trace.Span, owned: bool) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.span = span
        self.context: Context | None = None  # the span as a parent of child spans, made once
        self.owned = owned  # started through Runtrace, which ends it
        self.claimed = not owned  # known to the translator (a framework's span: from its start)
        self.recorded = span.is_recording()  # False when the sampler dropped the span
        # How many attributes a span event may have to skip the SDK's second cleaning.
        self.event_limit = clean_event_limit(span) if self.recorded else 0
        self.token = CancellationToken(run_id)
        self.settled = False  # final status and attributes are on the span; no more span events
        self.error_type: str | None = None
        self.children: dict[ChildKey, trace.Span | None] = {}  # None: the span is starting
        self.picked: set[object] = set()  # plain span events already recorded (by identity)
        self.lock = threading.Lock()  # guards children
        self.cancel_ns: int | None = None  # an explicit cancel time: the span ends then
        self.final: RunSnapshot | None = None  # the finished snapshot, kept past eviction
        # One item per span event runtrace added (list.append is atomic, a counter is not), so
        # that a pickup can tell plain events the span dropped from runtrace's own.
        self.span_added: list[None] = []
        self.drops_reported = 0  # plain span events reported lost (span_events_dropped)


class LiveRuns:
    """The open runs of one processor. ``lock`` also serialises a cancel's check of "current
    run" with the store's transition (see ``RunSpanProcessor.cancel``). The last ``max_ended``
    own runs that ended unclaimed are remembered in outline, so that a foreign span or log
    record that turns up under one after its end still attaches to it."""

    __slots__ = ("_by_span", "_current", "_ended", "_expected", "_live", "lock", "max_ended")

    def __init__(self, max_ended: int = 4096) -> None:
        self.lock = threading.Lock()
        self._live: dict[str, LiveRun] = {}
        self._by_span: dict[int, LiveRun] = {}
        self._current: dict[str, str] = {}  # session id -> its latest open run
        # run id -> (prompt, the caller's attributes, the span's attributes or None), for runs
        # Runtrace is starting
        self._expected: dict[str, _Expected] = {}
        # span id -> (the ended span's outline, run id): own runs the translator never claimed
        self._ended: OrderedDict[int, tuple[_Outline, str]] = OrderedDict()
        self.max_ended = max_ended

    def expect(
        self,
        run_id: str,
        prompt: str,
        attributes: Mapping[str, Any] | None,
        span_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        with self.lock:
            self._expected[run_id] = (prompt, attributes or _NONE, span_attributes)

    def take_expected(self, run_id: str) -> _Expected | None:
        """The prompt, the caller's attributes and the attributes given to the span (None if
        not known) of a run Runtrace announced (None: a plain OpenTelemetry run span)."""
        with self.lock:
            return self._expected.pop(run_id, None)

    def add(self, live: LiveRun, span_id: int) -> None:
        with self.lock:
            self._live[live.run_id] = live
            self._by_span[span_id] = live
            self._current[live.session_id] = live.run_id

    def get(self, run_id: str) -> LiveRun | None:
        return self._live.get(run_id)

    def has(self, span_id: int) -> bool:
        """Whether span ``span_id`` is an open run's (no lock: a span becomes one only at its
        start, so a span that is not one when it ends never will be)."""
        return span_id in self._by_span

    def for_span(self, span_id: int) -> LiveRun | None:
        return self._by_span.get(span_id)

    def current(self, session_id: str) -> str | None:
        return self._current.get(session_id)

    def is_current(self, live: LiveRun) -> bool:
        """Call under ``lock``: whether ``live`` is its session's current run."""
        return self._current.get(live.session_id) == live.run_id

    def end(self, span: ReadableSpan, span_id: int) -> tuple[LiveRun, bool] | None:
        """The span ended: forget its run and mark it settled. Returns the run and whether it
        was settled before (by a cancel), or None for a span that is no run of ours. An own run
        the translator has not claimed is remembered (:meth:`claim_own`, bounded)."""
        with self.lock:
            live = self._by_span.pop(span_id, None)
            if live is None:
                return None
            self._forget(live)
            settled = live.settled
            live.settled = True
            if not live.claimed:
                ended = self._ended
                ended[span_id] = (_outline(span), live.run_id)
                if len(ended) > self.max_ended:
                    ended.popitem(last=False)
        return live, settled

    def claim_own(self, span_id: int) -> tuple[ReadableSpan, str, bool] | None:
        """The translator's ``claimer``: the own run span ``span_id`` is, not claimed yet, as
        ``(span, run id, ended)`` (an ended one as the outline of its span); it counts as
        claimed from now on. None for any other span."""
        with self.lock:
            live = self._by_span.get(span_id)
            if live is not None:
                if live.claimed or not isinstance(live.span, ReadableSpan):
                    return None
                live.claimed = True
                return live.span, live.run_id, False
            found = self._ended.pop(span_id, None)
        if found is None:
            return None
        outline, run_id = found
        return _readable(outline), run_id, True

    def discard(self, live: LiveRun, span_id: int) -> None:
        """Forget a run whose span the sampler dropped (no ``on_end`` will come)."""
        with self.lock:
            self._by_span.pop(span_id, None)
            self._forget(live)

    def _forget(self, live: LiveRun) -> None:
        self._live.pop(live.run_id, None)
        if self._current.get(live.session_id) == live.run_id:
            del self._current[live.session_id]
