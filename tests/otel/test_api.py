"""Runtrace and RunHandle (runtrace.otel.api): runs as spans, live snapshots, exceptions,
cancellation, explicit times, concurrency."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode
from otel.helpers import ListSink, Recorder, Setup
from pydantic import ValidationError

from runtrace import (
    CancellationToken,
    RunCancelled,
    RunSpanProcessor,
    RunStatus,
    RunStore,
    Runtrace,
    RuntraceError,
    current_run,
    record_event,
)
from runtrace.errors import NoActiveRun


def test_snapshot_fills_span_ids_agent_and_attributes(env: Setup) -> None:
    with env.rt.start_run("s", agent_name="coder", **{"my.key": 7}) as run:
        ctx = trace.get_current_span().get_span_context()
        snap = run.snapshot()
    assert snap.trace_id == format(ctx.trace_id, "032x")
    assert snap.span_id == format(ctx.span_id, "016x")
    assert len(snap.trace_id) == 32 and len(snap.span_id) == 16
    assert snap.agent_name == "coder"
    assert snap.attributes["my.key"] == 7
    assert run.snapshot().ended_at_ms is not None


def test_snapshot_is_live_while_the_run_is_open(env: Setup) -> None:
    with env.rt.start_run("s", prompt="p") as run:
        assert run.status() is RunStatus.CREATED
        run.record({"type": "agent_start", "prompt": "p"})
        assert run.status() is RunStatus.EXECUTING
        run.record({"type": "planning_start", "prompt": "p"})
        assert env.rt.store.snapshot(run.id).status is RunStatus.PLANNING
        assert run.snapshot().ended_at_ms is None
        assert env.spans() == []  # nothing exported yet, but the store knows everything
        assert [r.event.type for r in run.events()] == ["agent_start", "planning_start"]


def test_exception_fails_the_run_records_it_and_is_reraised(env: Setup) -> None:
    with pytest.raises(ValueError, match="boom"), env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        raise ValueError("boom")
    snap = run.snapshot()
    assert snap.status is RunStatus.FAILED
    assert snap.error == "ValueError: boom"
    assert snap.ended_at_ms is not None
    span = env.run_span(run.id)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    assert [e.name for e in span.events][-1] == "exception"
    assert [r.event.type for r in run.events()] == ["agent_start"]  # exception not an event


def test_invalid_event_raises_and_leaves_the_run_untouched(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        with pytest.raises(ValidationError):
            run.record({"type": "tool_start", "id": "t1"})
        assert run.snapshot().event_count == 0
    assert env.run_span(run.id).events == ()


def test_an_event_with_a_lone_surrogate_is_refused_before_the_store_span_and_sinks() -> None:
    sink = ListSink()
    setup = Setup(sinks=[sink])
    with setup.rt.start_run("s") as run:
        with pytest.raises(ValidationError, match="text holds a lone surrogate"):
            run.record({"type": "text_delta", "text": "\udcff x"})
        run.record({"type": "text_delta", "text": "fine"})
    assert [r.sequence for r in run.events()] == [0]  # no gap in the sequences
    assert [e.name for e in setup.run_span(run.id).events] == ["text_delta"]
    assert [call for call, _ in sink.calls] == ["run", "event", "run"]
    setup.provider.shutdown()


def test_record_event_records_on_the_current_run(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        assert current_run() is run
        record_event({"type": "agent_start", "prompt": "hi"})
        with env.rt.tracer.start_as_current_span("llm call"):
            record_event({"type": "text_delta", "text": "hello"})
    assert [r.event.type for r in run.events()] == ["agent_start", "text_delta"]
    assert current_run() is None


def test_record_event_without_a_run_says_so() -> None:
    with pytest.raises(NoActiveRun, match="start_run"):
        record_event({"type": "agent_start", "prompt": "x"})
    assert issubclass(NoActiveRun, RuntraceError)


def test_nested_runs_are_parent_and_child_spans(env: Setup) -> None:
    with env.rt.start_run("outer", agent_name="lead") as outer:
        with env.rt.start_run("inner", agent_name="helper") as inner:
            record_event({"type": "agent_start", "prompt": "sub"})
        record_event({"type": "agent_start", "prompt": "main"})
    outer_span, inner_span = env.run_span(outer.id), env.run_span(inner.id)
    assert inner_span.parent is not None
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert [r.event.prompt for r in inner.events()] == ["sub"]  # type: ignore[attr-defined]
    assert [r.event.prompt for r in outer.events()] == ["main"]  # type: ignore[attr-defined]


def test_runtrace_refuses_a_provider_that_is_not_the_sdk() -> None:
    with pytest.raises(RuntraceError, match="SDK TracerProvider"):
        Runtrace(trace.NoOpTracerProvider())


def test_runtrace_shutdown_closes_its_sinks_but_not_the_provider() -> None:
    sink = ListSink()
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rt = Runtrace(provider, RunSpanProcessor(sinks=[sink]))
    assert rt.force_flush(500) is True
    assert [call for call, _ in sink.calls] == ["flush"]  # through the provider
    rt.shutdown()
    rt.shutdown()
    assert len(sink.shutdowns) == 1
    with provider.get_tracer("other").start_as_current_span("still exported"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["still exported"]


def test_begin_run_and_end_with_an_error_for_code_without_a_with_block() -> None:
    rt = Runtrace(TracerProvider())
    run = rt.begin_run("s", agent_name="cb")
    assert trace.get_current_span() is trace.INVALID_SPAN  # not made current
    run.record({"type": "agent_start", "prompt": "x"})
    final = run.end(TimeoutError("model took too long"))
    assert final.status is RunStatus.FAILED
    assert final.error == "TimeoutError: model took too long"
    assert run.end() == final  # ending twice changes nothing


# --- cancellation -------------------------------------------------------------------------------


def test_cancel_ends_the_span_as_cancelled_and_tells_hooks_once(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        assert not run.cancelled
        assert run.cancel() is True
        assert run.cancelled
        assert run.cancel() is False  # sticky: once only
        span = env.run_span(run.id)  # the built-in hook ended it already
        run.record({"type": "agent_end", "text": "too late"})  # stored, counted, not on the span
    snap = run.snapshot()
    assert snap.status is RunStatus.CANCELLED
    assert snap.error == "cancelled by host"
    assert snap.event_count == 2
    assert env.hook.named("on_run_cancelled") == [(run.id, "s", "cancelled by host")]
    assert len(env.hook.named("on_run_end")) == 1
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "cancelled: cancelled by host"
    assert span.attributes["error.type"] == "cancelled"
    assert span.attributes["runtrace.run.status"] == "cancelled"
    assert [e.name for e in span.events] == ["agent_start"]
    assert len(env.spans()) == 1


def test_cancel_only_stops_the_sessions_current_run(env: Setup) -> None:
    first = env.rt.begin_run("s")
    second = env.rt.begin_run("s")  # the session moved on
    assert first.cancel() is False
    assert env.rt.current_run("s") is not None
    assert env.rt.current_run("s").id == second.id  # type: ignore[union-attr]
    assert second.cancel() is True
    assert first.status() is RunStatus.CREATED
    first.end()
    assert first.status() is RunStatus.COMPLETED
    assert second.status() is RunStatus.CANCELLED


def test_finished_run_cannot_be_cancelled(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_end", "text": "done"})
        assert run.cancel() is False  # completed already
    assert run.cancel() is False  # span ended
    assert run.status() is RunStatus.COMPLETED
    assert env.hook.named("on_run_cancelled") == []


def test_cancelled_run_is_not_overwritten_by_a_later_error_or_exception(env: Setup) -> None:
    with pytest.raises(RuntimeError), env.rt.start_run("s") as run:
        run.cancel("user pressed stop")
        run.record({"type": "error", "message": "aborted"})
        raise RuntimeError("unwinding after cancel")
    snap = run.snapshot()
    assert snap.status is RunStatus.CANCELLED
    assert snap.error == "user pressed stop"
    assert len(env.hook.named("on_run_cancelled")) == 1
    assert env.run_span(run.id).status.description == "cancelled: user pressed stop"


def test_raise_if_cancelled_stops_the_agent_and_ends_cancelled(env: Setup) -> None:
    with pytest.raises(RunCancelled) as info, env.rt.start_run("s") as run:
        run.raise_if_cancelled()
        threading.Thread(target=run.cancel, args=("host stop",)).start()
        assert run.token.wait(5)
        run.raise_if_cancelled()
    assert info.value.reason == "host stop"
    # A cancellation is a BaseException, as asyncio.CancelledError: agent code that catches
    # runtrace's errors (or Exception) cannot swallow it by accident.
    assert not isinstance(info.value, (RuntraceError, Exception))
    assert run.status() is RunStatus.CANCELLED


def test_keyboard_interrupt_ends_the_run_cancelled(env: Setup) -> None:
    with pytest.raises(KeyboardInterrupt), env.rt.start_run("s") as run:
        raise KeyboardInterrupt
    assert run.status() is RunStatus.CANCELLED
    assert env.hook.named("on_run_cancelled") == [(run.id, "s", "KeyboardInterrupt")]
    assert env.run_span(run.id).attributes["error.type"] == "cancelled"


def test_closed_generator_ends_the_run_cancelled(env: Setup) -> None:
    def agent() -> Iterator[str]:
        with env.rt.start_run("s") as run:
            ids.append(run.id)
            while True:
                yield "step"

    ids: list[str] = []
    gen = agent()
    next(gen)
    gen.close()
    assert env.rt.store.status(ids[0]) is RunStatus.CANCELLED
    assert env.run_span(ids[0]).status.description == "cancelled: generator closed"


def test_asyncio_task_cancellation_ends_the_run_cancelled(env: Setup) -> None:
    async def agent(ready: asyncio.Event, ids: list[str]) -> None:
        async with env.rt.start_run("s") as run:
            ids.append(run.id)
            run.record({"type": "agent_start", "prompt": "x"})
            ready.set()
            await asyncio.sleep(3600)

    async def main() -> str:
        ready = asyncio.Event()
        ids: list[str] = []
        task = asyncio.create_task(agent(ready, ids))
        await ready.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ids[0]

    run_id = asyncio.run(main())
    assert env.rt.store.status(run_id) is RunStatus.CANCELLED
    span = env.run_span(run_id)
    assert span.status.description == "cancelled: asyncio task cancelled"


def test_async_context_manager_completes_a_run(env: Setup) -> None:
    async def main() -> str:
        async with env.rt.start_run("s", agent_name="a") as run:
            await asyncio.sleep(0)
            record_event({"type": "agent_end", "text": "ok"})
            return run.id

    run_id = asyncio.run(main())
    assert env.rt.store.status(run_id) is RunStatus.COMPLETED


# --- concurrency --------------------------------------------------------------------------------


def test_many_runs_on_threads_keep_their_own_events(env: Setup) -> None:
    barrier = threading.Barrier(16)
    ids: dict[int, str] = {}

    def agent(n: int) -> None:
        barrier.wait()
        with env.rt.start_run(f"sess-{n}") as run:
            ids[n] = run.id
            for i in range(50):
                record_event({"type": "turn_start", "turn": i})
            if n % 4 == 0:
                run.cancel()
            else:
                record_event({"type": "agent_end", "text": f"done {n}"})

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(env.rt.store) == 16
    for n, run_id in ids.items():
        snap = env.rt.store.snapshot(run_id)
        assert snap is not None and snap.session_id == f"sess-{n}"
        assert snap.event_count == 51 - (n % 4 == 0)
        expected = RunStatus.CANCELLED if n % 4 == 0 else RunStatus.COMPLETED
        assert snap.status is expected
        assert env.run_span(run_id).parent is None


def test_many_runs_on_asyncio_tasks_keep_their_own_context(env: Setup) -> None:
    async def agent(n: int) -> str:
        async with env.rt.start_run(f"sess-{n}") as run:
            for i in range(20):
                await asyncio.sleep(0)
                assert current_run() is run
                record_event({"type": "turn_start", "turn": i})
            return run.id

    async def main() -> list[str]:
        return await asyncio.gather(*(agent(n) for n in range(32)))

    ids = asyncio.run(main())
    assert len(set(ids)) == 32
    for n, run_id in enumerate(ids):
        events = env.rt.store.events(run_id)
        assert [r.event.turn for r in events] == list(range(20))  # type: ignore[attr-defined]
        assert env.rt.store.snapshot(run_id).session_id == f"sess-{n}"  # type: ignore[union-attr]
        assert env.run_span(run_id).parent is None


def test_run_whose_span_the_sampler_drops_is_still_kept() -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hook = Recorder()
    rt = Runtrace(provider, RunSpanProcessor(hooks=[hook]))
    with rt.start_run("s", prompt="p") as run:
        assert not run.span.is_recording()
        run.record({"type": "agent_start", "prompt": "p"})
        record_event({"type": "tool_start", "id": "t", "name": "bash"})
    with rt.start_run("s") as stopped:
        assert stopped.cancel() is True
    assert run.status() is RunStatus.COMPLETED
    assert run.snapshot().event_count == 2
    assert run.snapshot().ended_at_ms is not None
    assert stopped.status() is RunStatus.CANCELLED
    assert [s.status for s in hook.named("on_run_end")] == [
        RunStatus.COMPLETED,
        RunStatus.CANCELLED,
    ]
    assert rt.current_run("s") is None
    assert exporter.get_finished_spans() == ()


def test_explicit_times_replay_a_run_at_its_original_times(env: Setup) -> None:
    t0 = 1_700_000_000_000_000_000  # epoch ns
    second = 1_000_000_000
    run = env.rt.begin_run("s1", "p", "coder", at_ns=t0)
    run.record({"type": "agent_start", "prompt": "p"}, at_ns=t0 + second)
    run.record({"type": "tool_start", "id": "c1", "name": "bash"}, at_ns=t0 + 2 * second)
    run.record(
        {"type": "tool_end", "id": "c1", "name": "bash", "output": "", "exit_code": 0},
        at_ns=t0 + 5 * second,
    )
    final = run.end(at_ns=t0 + 9 * second)
    t0_ms = t0 // 1_000_000
    assert (final.created_at_ms, final.ended_at_ms, final.duration_ms) == (
        t0_ms,
        t0_ms + 9000,
        9000,
    )
    assert [r.timestamp_ms - t0_ms for r in run.events()] == [1000, 2000, 5000]
    span = env.run_span(run.id)
    assert (span.start_time, span.end_time) == (t0, t0 + 9 * second)
    assert [e.timestamp - t0 for e in span.events] == [second, 2 * second, 5 * second]
    (tool,) = env.spans("execute_tool bash")
    assert (tool.start_time, tool.end_time) == (t0 + 2 * second, t0 + 5 * second)


def test_a_cancel_at_an_explicit_time_ends_the_run_then(env: Setup) -> None:
    t0 = 1_700_000_000_000_000_000
    run = env.rt.begin_run("s1", "p", at_ns=t0)
    run.record({"type": "agent_start", "prompt": "p"}, at_ns=t0 + 1_000_000)
    assert run.cancel("user pressed stop", at_ns=t0 + 4_000_000)
    final = run.end(at_ns=t0 + 9_000_000)  # already ended by the cancel: no change
    assert final.status is RunStatus.CANCELLED
    assert (final.ended_at_ms - t0 // 1_000_000, final.duration_ms) == (4, 4)  # type: ignore[operator]
    assert env.run_span(run.id).end_time == t0 + 4_000_000


# --- regressions: cancel races, eviction ---------------------------------------------------------


class EndsBeforeCancel(RunStore):
    """A store where the agent's agent_end lands between cancel()'s checks and the store's
    transition (another thread, joined)."""

    run: Any = None

    def mark_cancelled(self, run_id: str, **kwargs: Any) -> Any:
        done = {"type": "agent_end", "text": "done"}
        thread = threading.Thread(target=lambda: self.run.record(done))
        thread.start()
        thread.join(5)
        assert not thread.is_alive()
        return super().mark_cancelled(run_id, **kwargs)


def test_cancel_loses_to_an_agent_end_that_lands_first_and_says_so() -> None:
    store = EndsBeforeCancel()
    setup = Setup(store=store)
    run = store.run = setup.rt.begin_run("s", prompt="p")
    assert run.cancel("user pressed stop") is False
    assert not run.cancelled
    run.raise_if_cancelled()  # the agent is not told to stop a run that completed
    assert run.status() is RunStatus.COMPLETED
    assert run.snapshot().error is None
    assert setup.hook.named("on_run_cancelled") == []
    final = run.end()
    assert final.status is RunStatus.COMPLETED
    assert setup.run_span(run.id).status.status_code is StatusCode.OK
    setup.provider.shutdown()


class _RacingLock:
    """A real lock whose first holder waits (up to 1 s) until a second caller has arrived at
    it: a check made outside the lock is then passed by both callers at once, unless the token
    makes it under the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holders = 0
        self.arrived = threading.Event()

    def __enter__(self) -> None:
        if self.holders:
            self.arrived.set()
        self._lock.acquire()
        self.holders += 1
        if self.holders == 1:
            self.arrived.wait(1)  # the second caller is at the lock (or past its own check)

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def test_token_wait_wakes_a_waiting_thread_and_answers_after_the_cancel() -> None:
    token = CancellationToken("run-1")
    assert token.wait(0) is False  # not cancelled: the wait times out
    woken: list[bool] = []
    waiter = threading.Thread(target=lambda: woken.append(token.wait(5)))
    waiter.start()
    while token._event is None and waiter.is_alive():  # until the waiter waits on its event
        time.sleep(0.001)
    assert token.cancel("stop") is True
    waiter.join(5)
    assert woken == [True]
    assert token.wait(0) is True and token.cancelled and token.reason == "stop"


def test_token_cancel_is_atomic_the_first_caller_wins() -> None:
    token = CancellationToken("run-1")
    token._lock = _RacingLock()  # type: ignore[assignment]
    results: dict[str, bool] = {}

    def cancel(reason: str) -> None:
        results[reason] = token.cancel(reason)

    threads = [threading.Thread(target=cancel, args=(r,)) for r in ("first", "second")]
    threads[0].start()
    threads[1].start()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert sorted(results.values()) == [False, True]
    (winner,) = [reason for reason, won in results.items() if won]
    assert token.reason == winner
    assert token.cancel("third") is False
    assert token.reason == winner


def test_a_token_set_by_hand_ends_the_run_cancelled_on_exit_with_hooks_once(env: Setup) -> None:
    with pytest.raises(RunCancelled), env.rt.start_run("s") as run:
        run.token.cancel("stop requested")
        run.raise_if_cancelled()
    assert run.status() is RunStatus.CANCELLED
    assert run.snapshot().error == "stop requested"
    assert env.hook.named("on_run_cancelled") == [(run.id, "s", "stop requested")]
    assert run.cancel() is False


def test_host_cancel_and_cancel_on_exit_call_hooks_once(env: Setup) -> None:
    for _ in range(50):
        run = env.rt.begin_run("s")
        barrier = threading.Barrier(2)

        def host(run: Any = run, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(5)
            run.cancel("host")

        thread = threading.Thread(target=host)
        thread.start()
        barrier.wait(5)
        run.end(KeyboardInterrupt())
        thread.join(5)
        assert not thread.is_alive()
        assert run.status() is RunStatus.CANCELLED
    calls = env.hook.named("on_run_cancelled")
    assert len(calls) == 50
    assert len({run_id for run_id, _, _ in calls}) == 50


def test_a_run_evicted_as_it_ends_still_ends_cleanly_and_keeps_its_final_snapshot() -> None:
    setup = Setup(store=RunStore(max_finished_runs=0))
    with setup.rt.start_run("s", prompt="p") as run:
        run.record({"type": "agent_end", "text": "ok"})
    assert run.id not in setup.rt.store  # evicted at once
    assert setup.rt.store.evicted_runs == 1
    assert run.status() is RunStatus.COMPLETED
    assert run.snapshot().ended_at_ms is not None
    assert run.end().status is RunStatus.COMPLETED  # ending twice: the same final snapshot

    # The body's own error comes out, not masked by the eviction.
    with (
        pytest.raises(ValueError, match="the body's own error"),
        setup.rt.start_run("s") as failing,
    ):
        raise ValueError("the body's own error")
    assert failing.status() is RunStatus.FAILED
    assert [s.status for s in setup.hook.named("on_run_end")] == [
        RunStatus.COMPLETED,
        RunStatus.FAILED,
    ]
    setup.provider.shutdown()


def test_runtrace_takes_one_run_span_processor_per_provider() -> None:
    processor = RunSpanProcessor()
    rt = Runtrace(TracerProvider(), processor)
    assert rt.processor is processor and rt.store is processor.store
    assert rt.settings is processor.settings
    with pytest.raises(RuntraceError, match="already belongs to a Runtrace"):
        Runtrace(TracerProvider(), processor)
    with pytest.raises(RuntraceError, match="processor must be a runtrace RunSpanProcessor"):
        Runtrace(TracerProvider(), SimpleSpanProcessor(InMemorySpanExporter()))  # type: ignore[arg-type]
