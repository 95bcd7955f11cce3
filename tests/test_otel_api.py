"""Runtrace and RunHandle: runs as spans, live snapshots, exceptions, cancellation, concurrency."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode
from pydantic import ValidationError

from runtrace.errors import NoActiveRun, RuntraceError
from runtrace.events import AgentEnd, TokenUsage
from runtrace.otel import (
    RunCancelled,
    Runtrace,
    SpanSettings,
    current_run,
    record_event,
)
from runtrace.otel.hooks import CancellationToken
from runtrace.runs import RunStatus
from runtrace.store import RunStore


class Recorder:
    """A hook and a sink at once, remembering every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_run_start(self, snapshot: Any) -> None:
        self.calls.append(("on_run_start", snapshot.id))

    def on_event(self, event: Any, run_id: str, session_id: str) -> None:
        self.calls.append(("on_event", (event.type, run_id, session_id)))

    def on_run_cancelled(self, run_id: str, session_id: str, reason: str) -> None:
        self.calls.append(("on_run_cancelled", (run_id, session_id, reason)))

    def on_run_end(self, snapshot: Any) -> None:
        self.calls.append(("on_run_end", snapshot))

    def named(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]


class Setup:
    def __init__(self, **kwargs: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(span_limits=kwargs.pop("span_limits", None))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.hook = Recorder()
        self.rt = Runtrace(self.provider, hooks=[self.hook, *kwargs.pop("hooks", ())], **kwargs)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = self.exporter.get_finished_spans()
        return [s for s in spans if name is None or s.name == name]

    def run_span(self, run_id: str) -> ReadableSpan:
        (span,) = [
            s
            for s in self.exporter.get_finished_spans()
            if s.attributes.get("runtrace.run.id") == run_id
            and s.attributes.get("runtrace.span.kind") == "run"
        ]
        return span


@pytest.fixture
def env() -> Iterator[Setup]:
    setup = Setup()
    yield setup
    setup.provider.shutdown()


def test_run_span_is_named_after_the_agent_and_carries_genai_attributes(env: Setup) -> None:
    with env.rt.start_run("sess-1", prompt="fix tests", agent_name="coder", team="core") as run:
        run.record({"type": "agent_start", "prompt": "fix tests"})
        run.record(
            {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 10, "completion_tokens": 3}}
        )
        run.record(
            {"type": "turn_end", "turn": 2, "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
        )
        run.record({"type": "agent_end", "text": "done"})
    span = env.run_span(run.id)
    assert span.name == "invoke_agent coder"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "coder"
    assert attrs["gen_ai.conversation.id"] == "sess-1"
    assert attrs["team"] == "core"
    assert attrs["gen_ai.usage.input_tokens"] == 15
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["runtrace.run.status"] == "completed"
    assert attrs["runtrace.run.event_count"] == 4
    assert span.status.status_code is StatusCode.OK
    assert [e.name for e in span.events] == ["agent_start", "turn_end", "turn_end", "agent_end"]


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


def test_run_without_terminal_event_completes_at_end(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
    assert run.status() is RunStatus.COMPLETED
    assert env.run_span(run.id).status.status_code is StatusCode.OK


def test_error_event_fails_the_run_and_the_span(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "error", "message": "model unavailable"})
    span = env.run_span(run.id)
    assert run.snapshot().error == "model unavailable"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "model unavailable"
    assert span.attributes["error.type"] == "agent_error"
    assert span.attributes["runtrace.run.status"] == "failed"


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


def test_tool_calls_and_subagents_become_child_spans(env: Setup) -> None:
    with env.rt.start_run("s", agent_name="lead") as run:
        run.record({"type": "tool_start", "id": "t1", "name": "bash"})
        run.record({"type": "tool_execution_start", "id": "t1", "name": "bash", "args": {"c": 1}})
        run.record({"type": "tool_end", "id": "t1", "name": "bash", "output": "no", "exit_code": 2})
        run.record(
            {
                "type": "subagent_start",
                "task_id": "k1",
                "session_id": "sub-sess",
                "parent_session_id": "s",
                "agent": "reviewer",
                "description": "review the diff",
            }
        )
        run.record(
            {
                "type": "subagent_end",
                "task_id": "k1",
                "session_id": "sub-sess",
                "agent": "reviewer",
                "output": "lgtm",
                "success": True,
            }
        )
    run_span = env.run_span(run.id)
    (tool,) = env.spans("execute_tool bash")
    (sub,) = env.spans("invoke_agent reviewer")
    for child in (tool, sub):
        assert child.parent is not None and child.parent.span_id == run_span.context.span_id
        assert child.attributes["runtrace.run.id"] == run.id
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.call.id"] == "t1"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes["error.type"] == "tool_error"
    assert sub.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert sub.attributes["gen_ai.conversation.id"] == "sub-sess"
    assert sub.status.status_code is StatusCode.OK
    # the subagent's invoke_agent span is runtrace's own child span, not a new run
    assert [s.id for s in env.rt.store.list()] == [run.id]


def test_child_span_left_open_ends_with_the_run(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "tool_start", "id": "t9", "name": "sleep"})
    (tool,) = env.spans("execute_tool sleep")
    assert tool.attributes["runtrace.span.unfinished"] is True
    assert tool.end_time <= env.run_span(run.id).end_time


def test_thousand_events_are_all_kept_while_the_span_holds_128(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "long"})
        for i in range(998):
            run.record({"type": "text_delta", "text": f"chunk {i}"})
        run.record({"type": "agent_end", "text": "done"})
    events = run.events()
    assert len(events) == 1000 == run.snapshot().event_count
    assert [r.sequence for r in events] == list(range(1000))
    assert events[0].event.type == "agent_start"
    span = env.run_span(run.id)
    assert len(span.events) == 128
    assert span.dropped_events == 872
    assert span.attributes["runtrace.run.event_count"] == 1000
    assert span.attributes["runtrace.run.span_dropped_events"] == 872
    assert span.events[-1].attributes["runtrace.record.sequence"] == 999


def test_raised_span_event_limit_keeps_every_event_on_the_span() -> None:
    setup = Setup(span_limits=SpanLimits(max_events=2000))
    with setup.rt.start_run("s") as run:
        for i in range(1000):
            run.record({"type": "text_delta", "text": str(i)})
    span = setup.run_span(run.id)
    assert len(span.events) == 1000
    assert span.attributes["runtrace.run.span_dropped_events"] == 0


def test_content_is_off_spans_by_default_and_kept_in_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    setup = Setup()
    with setup.rt.start_run("s", prompt="secret prompt") as run:
        run.record({"type": "agent_start", "prompt": "secret prompt"})
        run.record(
            {"type": "tool_end", "id": "t", "name": "cat", "output": "secret", "exit_code": 0}
        )
        run.record({"type": "agent_end", "text": "secret answer"})
    span = setup.run_span(run.id)
    everything = repr(span.to_json()) + repr([s.to_json() for s in setup.spans()])
    assert "secret" not in everything
    assert span.events[0].attributes["runtrace.record.omitted"] == ("prompt",)
    assert run.snapshot().prompt == "secret prompt"
    assert run.snapshot().result_text == "secret answer"
    assert run.events()[1].event.output == "secret"  # type: ignore[attr-defined]


def test_content_capture_setting_puts_content_on_spans_truncated() -> None:
    setup = Setup(settings=SpanSettings(capture_content=True, max_value_length=64))
    long_text = "x" * 500
    with setup.rt.start_run("s", prompt="the prompt") as run:
        run.record({"type": "agent_start", "prompt": "the prompt"})
        run.record(AgentEnd(text=long_text, usage=TokenUsage(prompt_tokens=1)))
    span = setup.run_span(run.id)
    assert span.attributes["runtrace.run.prompt"] == "the prompt"
    assert span.events[0].attributes["runtrace.event.prompt"] == "the prompt"
    shown = span.events[1].attributes["runtrace.event.text"]
    assert len(shown) <= 64 and "truncated, 500 chars" in shown
    assert span.attributes["runtrace.run.result"].endswith("truncated, 500 chars]")
    assert run.snapshot().result_text == long_text  # never truncated in the store


def test_content_capture_env_var_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    setup = Setup()
    with setup.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "visible"})
    assert setup.run_span(run.id).events[0].attributes["runtrace.event.prompt"] == "visible"


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
    assert isinstance(info.value, RuntraceError)
    assert run.status() is RunStatus.CANCELLED


def test_cancelled_status_can_be_unset() -> None:
    setup = Setup(settings=SpanSettings(cancelled_status="unset"))
    with setup.rt.start_run("s") as run:
        run.cancel()
    span = setup.run_span(run.id)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["error.type"] == "cancelled"
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


def test_hook_that_raises_is_logged_and_never_breaks_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def on_event(self, event: Any, run_id: str, session_id: str) -> None:
            raise RuntimeError("hook bug")

        def on_run_cancelled(self, run_id: str, session_id: str, reason: str) -> None:
            raise RuntimeError("hook bug")

    setup = Setup(hooks=[Broken()], raise_errors=False)
    with setup.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        assert run.cancel() is True
    assert run.status() is RunStatus.CANCELLED
    assert setup.run_span(run.id).attributes["runtrace.run.status"] == "cancelled"
    logged = [
        r.exc_info[1]
        for r in caplog.records
        if r.name == "runtrace.otel" and r.exc_info and r.exc_info[1] is not None
    ]
    assert [str(e) for e in logged] == ["hook bug", "hook bug"]


def test_hook_errors_are_raised_under_pytest_by_default() -> None:
    class Broken:
        def on_run_start(self, snapshot: Any) -> None:
            raise RuntimeError("hook bug")

    setup = Setup(hooks=[Broken()])
    with pytest.raises(RuntimeError, match="hook bug"):
        setup.rt.begin_run("s")


def test_hooks_see_start_events_and_end(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
    assert env.hook.named("on_run_start") == [run.id]
    assert env.hook.named("on_event") == [("agent_start", run.id, "s")]
    (final,) = env.hook.named("on_run_end")
    assert final.status is RunStatus.COMPLETED and final.ended_at_ms is not None


def test_runtrace_refuses_a_provider_that_is_not_the_sdk() -> None:
    with pytest.raises(RuntraceError, match="SDK TracerProvider"):
        Runtrace(trace.NoOpTracerProvider())


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
    rt = Runtrace(provider, hooks=[hook])
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
    run = env.rt.begin_run("s1", "p", "coder", start_time_ns=t0)
    run.record({"type": "agent_start", "prompt": "p"}, timestamp_ns=t0 + second)
    run.record({"type": "tool_start", "id": "c1", "name": "bash"}, timestamp_ns=t0 + 2 * second)
    run.record(
        {"type": "tool_end", "id": "c1", "name": "bash", "output": "", "exit_code": 0},
        timestamp_ns=t0 + 5 * second,
    )
    final = run.end(end_time_ns=t0 + 9 * second)
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
    run = env.rt.begin_run("s1", "p", start_time_ns=t0)
    run.record({"type": "agent_start", "prompt": "p"}, timestamp_ns=t0 + 1_000_000)
    assert run.cancel("user pressed stop", at_ns=t0 + 4_000_000)
    final = run.end(end_time_ns=t0 + 9_000_000)  # already ended by the cancel: no change
    assert final.status is RunStatus.CANCELLED
    assert (final.ended_at_ms - t0 // 1_000_000, final.duration_ms) == (4, 4)  # type: ignore[operator]
    assert env.run_span(run.id).end_time == t0 + 4_000_000


# --- regressions: cancel races, eviction ---------------------------------------------------------


class CancelOnToolStart(SpanProcessor):
    """A span processor (a policy guard) that cancels the run when a forbidden tool starts."""

    def __init__(self, rt: Runtrace, tool: str) -> None:
        super().__init__()
        self.rt = rt
        self.tool = tool
        self.cancelled: list[bool] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.name == f"execute_tool {self.tool}":
            run = self.rt.current_run("s")
            assert run is not None
            self.cancelled.append(run.cancel("forbidden tool"))


def test_cancelling_from_a_processor_while_a_child_span_starts_does_not_deadlock(
    env: Setup,
) -> None:
    guard = CancelOnToolStart(env.rt, "rm")
    env.provider.add_span_processor(guard)
    ids: list[str] = []
    errors: list[BaseException] = []

    def agent() -> None:
        try:
            with env.rt.start_run("s") as run:
                ids.append(run.id)
                run.record({"type": "tool_start", "id": "1", "name": "rm"})
                run.raise_if_cancelled()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the agent deadlocked on the run's lock"
    assert guard.cancelled == [True]
    assert [type(e) for e in errors] == [RunCancelled]
    assert env.rt.store.snapshot(ids[0]).status is RunStatus.CANCELLED  # type: ignore[union-attr]
    (tool,) = env.spans("execute_tool rm")  # ended at once, since the run was settled meanwhile
    assert tool.attributes["runtrace.span.unfinished"] is True
    assert env.run_span(ids[0]).status.description == "cancelled: forbidden tool"


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


class _RacingEvent(threading.Event):
    """The first is_set() waits until a second caller arrives (or 1 s passes): both callers are
    then past the check at once, unless the token serialises them."""

    def __init__(self) -> None:
        super().__init__()
        self.callers = 0
        self.second = threading.Event()

    def is_set(self) -> bool:
        answer = super().is_set()
        self.callers += 1
        if self.callers == 1:
            self.second.wait(1)  # still answers what it saw before waiting, as a slow check
        else:
            self.second.set()
        return answer


def test_token_cancel_is_atomic_the_first_caller_wins() -> None:
    token = CancellationToken("run-1")
    token._event = _RacingEvent()  # type: ignore[misc]
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


def test_content_of_unknown_event_types_stays_off_the_span(env: Setup) -> None:
    event = {"type": "user_message", "content": "secret", "messages": ["x"], "message_id": "m1"}
    with env.rt.start_run("s") as run:
        run.record(event)
    (span_event,) = env.run_span(run.id).events
    assert span_event.name == "user_message"
    assert "runtrace.event.content" not in span_event.attributes
    assert span_event.attributes["runtrace.event.message_id"] == "m1"
    assert set(span_event.attributes["runtrace.record.omitted"]) == {"content", "messages"}
    assert run.events()[0].event.content == "secret"  # type: ignore[attr-defined]  # store: whole
