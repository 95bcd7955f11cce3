"""Hooks and sinks called through one fan-out and the fault policy (runtrace.otel.fanout): every
change in order, a failure logged and never breaking the agent, re-raised under pytest."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from otel.helpers import ListSink, Plain, Recorder, Setup

from runtrace import RunHooks, RunSnapshot, RunSpanProcessor, RunStatus, Runtrace
from runtrace.faults import Faults
from runtrace.otel.fanout import RunFanout
from runtrace.runs import RunEventRecord


def test_hooks_see_start_events_and_end(env: Setup) -> None:
    with env.rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
    assert env.hook.named("on_run_start") == [run.id]
    assert env.hook.named("on_event") == [("agent_start", run.id, "s")]
    (final,) = env.hook.named("on_run_end")
    assert final.status is RunStatus.COMPLETED and final.ended_at_ms is not None


def test_hook_that_raises_is_logged_and_never_breaks_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(RunHooks):
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
    class Broken(RunHooks):
        def on_run_start(self, snapshot: Any) -> None:
            raise RuntimeError("hook bug")

    setup = Setup(hooks=[Broken()])
    with pytest.raises(RuntimeError, match="hook bug"):
        setup.rt.begin_run("s")


def test_sinks_get_run_changes_and_every_event_in_order(plain: Plain) -> None:
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=[plain.sink]))
    with rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        run.record({"type": "turn_start", "turn": 1})
        run.cancel()
    kinds = [call for call, _ in plain.sink.calls]
    assert kinds == ["run", "event", "event", "run", "run"]
    created, *_, cancelled, ended = [args for call, args in plain.sink.calls if call == "run"]
    assert created.status is RunStatus.CREATED
    assert cancelled.status is RunStatus.CANCELLED and cancelled.ended_at_ms is None
    assert ended.status is RunStatus.CANCELLED and ended.ended_at_ms is not None
    snapshot, record = plain.sink.calls[2][1]
    assert (snapshot.event_count, record.sequence, record.event.type) == (2, 1, "turn_start")


class BrokenSink(ListSink):
    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        raise OSError("disk full")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise OSError("disk full")


def test_a_failing_sink_is_logged_and_never_breaks_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = BrokenSink()
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=[sink], raise_errors=False))
    with caplog.at_level(logging.ERROR, logger="runtrace.otel"), rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        run.record({"type": "agent_end", "text": "ok"})
    assert run.status() is RunStatus.COMPLETED
    assert rt.processor.force_flush() is False
    assert [r.message for r in caplog.records].count("runtrace: error in a sink's on_event") == 2
    assert [call for call, _ in sink.calls] == ["run", "run"]  # created, ended


def test_a_failing_sink_raises_under_pytest_by_default() -> None:
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=[BrokenSink()]))
    with pytest.raises(OSError, match="disk full"), rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})


def test_only_the_methods_a_hook_overrides_are_called() -> None:
    class OnlyEnd(RunHooks):
        def on_run_end(self, snapshot: RunSnapshot) -> None:
            pass

    fan = RunFanout([ListSink()], [OnlyEnd(), RunHooks()], Faults("runtrace.test"))
    assert [bool(f) for f in (fan.on_run_start, fan.on_event, fan.on_run_cancelled)] == [0, 0, 0]
    assert bool(fan.on_run_end) and bool(fan.on_run) and bool(fan.sink_on_event)


def test_every_hook_is_called_even_after_one_fails() -> None:
    class Broken(RunHooks):
        def on_run_start(self, snapshot: RunSnapshot) -> None:
            raise RuntimeError("hook bug")

    setup = Setup(hooks=[Broken()], raise_errors=False)  # the Recorder comes first, then Broken
    after = Recorder()
    setup2 = Setup(hooks=[Broken(), after], raise_errors=False)
    for s in (setup, setup2):
        s.rt.begin_run("s").end()
    assert len(setup.hook.named("on_run_start")) == 1
    assert len(after.named("on_run_start")) == 1
    assert setup2.rt.processor.faults.counts == {"a hook's on_run_start": 1}
    for s in (setup, setup2):
        s.provider.shutdown()
