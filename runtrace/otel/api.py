"""The recording API: ``Runtrace``, ``RunHandle``, and module-level ``record_event``.

``Runtrace`` adds a :class:`~runtrace.otel.processor.RunSpanProcessor` to a tracer provider and
starts runs as ``invoke_agent`` spans. Inside ``with rt.start_run(...) as run`` the run's span is
the current span, ``run.record(event)`` records on it, and leaving the block ends it: normally
(completed unless an event said otherwise), with an exception (failed, re-raised), or with a
cancellation (``asyncio.CancelledError``, ``KeyboardInterrupt``, ``GeneratorExit``, or anything
raised after ``run.cancel()``: cancelled).
"""

from __future__ import annotations

import asyncio
import contextvars
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from ..errors import NoActiveRun, RunCancelled, RuntraceError
from ..hooks import CancellationToken
from ..runs import RunEventRecord, RunSnapshot, RunStatus, check_run_fields, new_run_id
from ..store import RunStore
from ..version import __version__
from .live import LiveRun
from .processor import EventInput, RunSpanProcessor, find_live_run
from .run_span import run_span_name, run_start_attributes
from .settings import SpanSettings

__all__ = ["RunHandle", "RunScope", "Runtrace", "current_run", "record_event"]

_CURRENT: contextvars.ContextVar[RunHandle | None] = contextvars.ContextVar(
    "runtrace_current_run", default=None
)

_CANCELLATIONS: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    KeyboardInterrupt,
    GeneratorExit,
)


def _exit_reason(error: BaseException) -> str:
    if isinstance(error, RunCancelled):
        return error.reason
    if isinstance(error, asyncio.CancelledError):
        return "asyncio task cancelled"
    if isinstance(error, KeyboardInterrupt):
        return "KeyboardInterrupt"
    if isinstance(error, GeneratorExit):
        return "generator closed"
    return type(error).__name__


def _type_name(error: BaseException) -> str:
    cls = type(error)
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


class RunHandle:
    """One run: record its events, read its live snapshot, cancel it.

    Thread-safe. After the run ended, ``record`` still adds events to the store (and sinks), not
    to the ended span.
    """

    __slots__ = ("_live", "_processor", "id", "session_id")

    def __init__(self, processor: RunSpanProcessor, live: LiveRun) -> None:
        self._processor = processor
        self._live = live
        self.id = live.run_id
        self.session_id = live.session_id

    def __repr__(self) -> str:
        return f"RunHandle(id={self.id!r}, session_id={self.session_id!r})"

    def record(self, event: EventInput, *, at_ns: int | None = None) -> None:
        """Validate ``event`` (a dict, JSON text or event model) and add it to the run. Raises
        ``pydantic.ValidationError`` for a malformed core event, leaving the run untouched.
        ``at_ns`` (epoch nanoseconds, now by default) is for events replayed from an agent's own
        log. The run's state after it is :meth:`snapshot`, made when asked for: recording is
        the hot path, and most events only move a count."""
        self._processor.record_live(self._live, event, at_ns=at_ns)

    def snapshot(self) -> RunSnapshot:
        """The run's current snapshot; once the store evicted the finished run
        (``max_finished_runs``), the final snapshot it had when it ended."""
        snapshot = self._processor.store.snapshot(self.id)
        if snapshot is None:
            snapshot = self._live.final
            if snapshot is None:  # the store was replaced under the open run
                raise RuntraceError(f"run {self.id!r} is no longer in the store")
        return snapshot

    def status(self) -> RunStatus:
        return self.snapshot().status

    def events(self) -> list[RunEventRecord]:
        """Every event recorded on the run, in order (the span may hold fewer)."""
        return self._processor.store.events(self.id)

    def cancel(self, reason: str = "cancelled by host", *, at_ns: int | None = None) -> bool:
        """Cancel the run if it is its session's current, unfinished run; False otherwise.

        The token is set, the run marked cancelled, hooks told, and the span ended with the
        cancelled status, at ``at_ns`` (epoch nanoseconds, now by default). The agent sees it
        through ``cancelled`` / ``raise_if_cancelled()``.
        """
        return self._processor.cancel(self.id, reason, at_ns)

    @property
    def token(self) -> CancellationToken:
        return self._live.token

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled; the agent should stop at its next check."""
        return self._live.token.cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~runtrace.errors.RunCancelled` if the run was cancelled."""
        self._live.token.raise_if_cancelled()

    @property
    def span(self) -> trace.Span:
        """The run's OpenTelemetry span."""
        return self._live.span

    def end(self, error: BaseException | None = None, *, at_ns: int | None = None) -> RunSnapshot:
        """End the run (what leaving ``start_run`` does): ``error`` is what escaped, if anything.

        A cancellation, or any error once the token was set, ends it cancelled; another error
        ends it failed (recorded on the span); otherwise its events decide, completed by default.
        The span ends at ``at_ns`` (epoch nanoseconds), now by default. Ending twice does nothing
        more.
        """
        live = self._live
        processor = self._processor
        if error is not None and not live.settled:
            if isinstance(error, (*_CANCELLATIONS, RunCancelled)) or live.token.cancelled:
                processor.cancel_on_exit(live, live.token.reason or _exit_reason(error), at_ns)
            else:
                span = live.span
                if span.is_recording():
                    span.record_exception(error, escaped=True)
                processor.mark_failed(
                    live, f"{type(error).__name__}: {error}", _type_name(error), at_ns
                )
        processor.end_run(self.id, at_ns)
        final = live.final  # set when the span ended; the store may have evicted the run since
        return final if final is not None else self.snapshot()


class RunScope:
    """What ``Runtrace.start_run`` returns: a sync and async context manager around one run.

    Entering starts the run's span and makes it current; leaving ends it (see
    :meth:`RunHandle.end`) and re-raises whatever escaped.
    """

    __slots__ = ("_args", "_context_token", "_handle", "_rt", "_var_token")

    def __init__(self, rt: Runtrace, args: dict[str, Any]) -> None:
        self._rt = rt
        self._args = args
        self._handle: RunHandle | None = None
        self._context_token: object | None = None
        self._var_token: contextvars.Token[RunHandle | None] | None = None

    def __enter__(self) -> RunHandle:
        if self._handle is not None:
            raise RuntraceError("a run scope can be entered only once")
        handle = self._handle = self._rt.begin_run(**self._args)
        self._context_token = otel_context.attach(trace.set_span_in_context(handle.span))
        self._var_token = _CURRENT.set(handle)
        return handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        handle = self._handle
        assert handle is not None
        try:
            handle.end(exc)
        finally:
            if self._var_token is not None:
                try:
                    _CURRENT.reset(self._var_token)
                except ValueError:  # left in another context (a generator closed elsewhere)
                    _CURRENT.set(None)
            if self._context_token is not None:
                otel_context.detach(self._context_token)  # type: ignore[arg-type]

    async def __aenter__(self) -> RunHandle:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Runtrace:
    """runtrace on an OpenTelemetry tracer provider: the entry point for agent code.

    Adds ``processor`` (a :class:`RunSpanProcessor`, which carries the configuration: store,
    sinks, hooks, settings; a default one if None) to ``tracer_provider`` (the global one by
    default, which must be an SDK ``TracerProvider``), and starts runs on it:
    ``Runtrace(provider, RunSpanProcessor(store, sinks=[DuckDBSink("runs.duckdb")]))``.
    Other processors on the provider, an OTLP exporter for one, see the run spans as usual.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        processor: RunSpanProcessor | None = None,
    ) -> None:
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        if not callable(getattr(provider, "add_span_processor", None)):
            raise RuntraceError(
                f"Runtrace needs an OpenTelemetry SDK TracerProvider, got {type(provider).__name__}"
                "; pass tracer_provider=opentelemetry.sdk.trace.TracerProvider() or set one"
                " with opentelemetry.trace.set_tracer_provider()"
            )
        if processor is not None and not isinstance(processor, RunSpanProcessor):
            raise RuntraceError(
                f"processor must be a runtrace RunSpanProcessor, not {type(processor).__name__}"
            )
        processor = processor if processor is not None else RunSpanProcessor()
        if processor.tracer is not None:
            raise RuntraceError(
                "this RunSpanProcessor already belongs to a Runtrace; make one per provider"
            )
        self.tracer_provider = provider
        self.processor = processor
        provider.add_span_processor(processor)  # type: ignore[attr-defined]
        self.tracer = provider.get_tracer("runtrace", __version__)
        processor.tracer = self.tracer

    @property
    def store(self) -> RunStore:
        return self.processor.store

    @property
    def settings(self) -> SpanSettings:
        return self.processor.settings

    def start_run(
        self,
        session_id: str,
        prompt: str = "",
        agent_name: str | None = None,
        **attributes: Any,
    ) -> RunScope:
        """A context manager (``with`` or ``async with``) that runs one agent run as a span.

        The span is ``invoke_agent {agent_name}`` with the GenAI attributes; ``attributes`` are
        added to it as given (pass dotted names with ``**{"my.key": 1}``).
        """
        return RunScope(
            self,
            {
                "session_id": session_id,
                "prompt": prompt,
                "agent_name": agent_name,
                "attributes": attributes,
            },
        )

    def begin_run(
        self,
        session_id: str,
        prompt: str = "",
        agent_name: str | None = None,
        attributes: dict[str, Any] | None = None,
        *,
        at_ns: int | None = None,
    ) -> RunHandle:
        """Start a run without making its span current; end it with :meth:`RunHandle.end`.

        For agents whose run does not fit one ``with`` block (callbacks, generators), and for
        runs replayed from an agent's log (``at_ns``: its start, epoch nanoseconds, now by
        default). The span's parent is the current span, if any. A field the database or
        OTLP could not keep raises :class:`~runtrace.errors.InvalidRun`, before any span starts.
        """
        check_run_fields(session_id, prompt, agent_name, attributes)
        run_id = new_run_id()
        span_attributes = run_start_attributes(
            run_id=run_id,
            session_id=session_id,
            agent_name=agent_name,
            prompt=prompt,
            settings=self.settings,
            extra=attributes,
        )
        self.processor.expect_run(run_id, prompt, attributes, span_attributes=span_attributes)
        span = self.tracer.start_span(
            run_span_name(agent_name),
            kind=trace.SpanKind.INTERNAL,
            attributes=span_attributes,
            start_time=at_ns,
        )
        live = self.processor.live_run(run_id)
        if live is None:
            if span.is_recording():  # recorded, yet not seen: the processor failed on it
                span.end()
                raise RuntraceError(f"run {run_id} could not be started; see the log")
            # The sampler dropped the span: the run is kept all the same, without a span.
            live = self.processor.start_unrecorded(span, span_attributes, prompt, attributes)
        return RunHandle(self.processor, live)

    def current_run(self, session_id: str) -> RunHandle | None:
        """The session's current run (the one ``cancel`` may stop), if it is still open."""
        run_id = self.processor.current_run_id(session_id)
        live = None if run_id is None else self.processor.live_run(run_id)
        return None if live is None else RunHandle(self.processor, live)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the provider: runtrace's sinks and every other processor (exporters)."""
        return bool(self.tracer_provider.force_flush(timeout_millis))  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        """Flush and close runtrace's sinks. The provider itself belongs to its owner."""
        self.processor.shutdown()


def current_run() -> RunHandle | None:
    """The run recording in this context: the innermost ``start_run`` block, else the current
    span if it is a run span (including ones started with the plain OpenTelemetry API)."""
    handle = _CURRENT.get()
    if handle is not None:
        return handle
    found = find_live_run(trace.get_current_span())
    if found is None:
        return None
    return RunHandle(*found)


def record_event(event: EventInput) -> None:
    """Record ``event`` on the current run (see :func:`current_run`).

    Raises :class:`~runtrace.errors.NoActiveRun` when there is none.
    """
    handle = current_run()
    if handle is None:
        raise NoActiveRun(
            "no run is active in this context: record inside `with rt.start_run(...)`"
            " or while an invoke_agent span is current"
        )
    handle.record(event)
