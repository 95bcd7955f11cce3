"""RunSpanProcessor (runtrace.otel.processor) with plain OpenTelemetry code: run detection, error
status, cancel, flush and shutdown, and runs forwarded by the standard OTLP exporter beside it."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from opentelemetry import trace
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Status, StatusCode
from otel.helpers import ListSink, Plain, Setup, agent_span_attributes, otlp_runtrace
from otlp_receiver import Receiver, attributes

import runtrace.sink
from runtrace import RunSpanProcessor, RunStatus, Runtrace, record_event
from runtrace.sink import RunSink


def test_list_sink_is_a_run_sink() -> None:
    assert isinstance(ListSink(), RunSink)


def test_plain_invoke_agent_span_becomes_a_run(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent coder", attributes=agent_span_attributes(team="core")
    ) as span:
        run = plain.only_run()
        assert run.status is RunStatus.CREATED
        assert run.session_id == "conv-1"
        assert run.agent_name == "coder"
        assert run.trace_id == format(span.get_span_context().trace_id, "032x")
        assert run.attributes["team"] == "core"
    exported = plain.span("invoke_agent coder")
    context = exported.get_span_context()
    # nothing is written onto a framework's span; its run id is made of its trace and span ids,
    # the same when the span is received over OTLP
    assert not any(key.startswith("runtrace.") for key in exported.attributes)
    assert run.id == f"run-{context.trace_id:032x}-{context.span_id:016x}"
    final = plain.only_run()
    assert final.status is RunStatus.COMPLETED
    assert final.ended_at_ms is not None


def test_spans_that_are_not_runs_are_ignored(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "chat gpt-4", attributes={"gen_ai.operation.name": "chat"}
    ):
        pass
    with plain.tracer.start_as_current_span(
        "invoke_agent sub",
        attributes={"gen_ai.operation.name": "invoke_agent", "runtrace.span.kind": "subagent"},
    ):
        pass
    assert len(plain.store) == 0
    assert plain.sink.calls == []


def test_plain_run_without_conversation_id_uses_its_trace_as_session(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as span:
        trace_hex = format(span.get_span_context().trace_id, "032x")
    assert plain.only_run().session_id == trace_hex


def test_plain_run_keeps_a_given_run_id(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes(**{"runtrace.run.id": "run-mine"})
    ):
        pass
    assert plain.only_run().id == "run-mine"


def test_a_framework_run_whose_id_is_taken_is_kept_under_the_id_and_its_span(
    plain: Plain,
) -> None:
    spans = []
    for _ in range(2):
        with plain.tracer.start_as_current_span(
            "invoke_agent", attributes=agent_span_attributes(**{"runtrace.run.id": "run-same"})
        ) as span:
            spans.append(span.get_span_context().span_id)
    ids = {run.id for run in plain.store.list()}
    assert ids == {"run-same", f"run-same-{spans[1]:016x}"}  # the translator's rule
    assert plain.processor.faults.counts == {}
    assert {run.status.value for run in plain.store.list()} == {"completed"}


def test_error_status_without_terminal_event_fails_the_plain_run(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        span.add_event("agent_start", {"prompt": "x"})
        span.set_status(Status(StatusCode.ERROR, "model timed out"))
    run = plain.only_run()
    assert run.status is RunStatus.FAILED
    assert run.error == "model timed out"


def test_exception_leaving_a_plain_span_fails_it_and_is_not_an_event(plain: Plain) -> None:
    with (
        pytest.raises(KeyError),
        plain.tracer.start_as_current_span("invoke_agent", attributes=agent_span_attributes()),
    ):
        raise KeyError("missing")
    run = plain.only_run()
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "KeyError" in run.error
    assert plain.store.events(run.id) == []


def test_error_status_after_agent_end_keeps_the_run_completed(plain: Plain) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        span.add_event("agent_end", {"text": "done"})
        span.set_status(Status(StatusCode.ERROR, "late"))
    assert plain.only_run().status is RunStatus.COMPLETED


class FakeClock:
    """``time.monotonic`` for the sinks' shared deadline: each reading moves on by ``step``."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def monotonic(self) -> float:
        value = self.now
        self.now += self.step
        return value


def test_processor_flushes_and_shuts_down_its_sinks_once(
    plain: Plain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtrace.sink, "time", FakeClock(step=0.0))  # no time passes
    assert plain.processor.force_flush(1234) is True
    assert ("flush", 1234) in plain.sink.calls
    plain.provider.shutdown()
    plain.processor.shutdown()
    assert plain.sink.shutdowns == [30_000]  # a deadline even without one given


def test_sinks_share_one_flush_and_shutdown_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = ListSink(), ListSink()
    processor = RunSpanProcessor(sinks=[first, second])
    # Half a second passes between two readings of the clock: the second sink gets what the
    # first left of the one deadline, not a full timeout of its own.
    monkeypatch.setattr(runtrace.sink, "time", FakeClock(step=0.5))
    assert processor.force_flush(1500) is True
    assert (first.calls, second.calls) == ([("flush", 1000)], [("flush", 500)])
    processor.shutdown(1500)
    processor.shutdown(1500)  # once only
    assert (first.shutdowns, second.shutdowns) == ([1000], [500])


def test_cancelling_a_plain_run_sets_the_status_and_leaves_ending_to_its_owner(
    plain: Plain,
) -> None:
    with plain.tracer.start_as_current_span(
        "invoke_agent", attributes=agent_span_attributes()
    ) as span:
        run_id = plain.only_run().id
        assert plain.processor.current_run_id("conv-1") == run_id
        assert plain.processor.cancel(run_id, "stop") is True
        assert span.is_recording()  # still open: its `with` ends it
        assert plain.processor.live_run(run_id).token.cancelled  # type: ignore[union-attr]
    run = plain.only_run()
    assert run.status is RunStatus.CANCELLED
    exported = plain.span("invoke_agent")
    assert exported.status.description == "cancelled: stop"
    assert exported.attributes["runtrace.run.status"] == "cancelled"


def test_cancel_of_an_unknown_or_ended_run_is_false(plain: Plain) -> None:
    assert plain.processor.cancel("run-nope") is False
    with plain.agent_span():
        run_id = plain.only_run().id
    assert plain.processor.cancel(run_id) is False
    assert plain.processor.current_run_id("conv-1") is None


def test_runs_from_two_providers_stay_apart() -> None:
    first, second = Plain(), Plain()
    with first.agent_span():
        record_event({"type": "agent_start", "prompt": "one"})
    with second.agent_span():
        record_event({"type": "agent_start", "prompt": "two"})
    assert first.only_run().prompt == "one"
    assert second.only_run().prompt == "two"
    assert trace.get_current_span() is trace.INVALID_SPAN


# --- with the standard OTLP/HTTP exporter on the same provider (a loopback receiver) ------------


def test_run_span_events_child_spans_and_cancel_arrive_over_otlp(receiver: Receiver) -> None:
    provider, rt = otlp_runtrace(receiver.endpoint)
    with rt.start_run("sess-1", prompt="fix it", agent_name="coder") as run:
        run.record({"type": "agent_start", "prompt": "fix it"})
        run.record({"type": "tool_start", "id": "t1", "name": "bash"})
        run.record({"type": "tool_end", "id": "t1", "name": "bash", "output": "ok", "exit_code": 0})
        run.record(
            {"type": "turn_end", "turn": 1, "usage": {"prompt_tokens": 7, "completion_tokens": 2}}
        )
        run.record({"type": "agent_end", "text": "fixed"})
    with rt.start_run("sess-2", agent_name="coder") as stopped:
        stopped.record({"type": "agent_start", "prompt": "long job"})
        stopped.cancel("user pressed stop")
    assert rt.force_flush(10_000)
    provider.shutdown()

    runs = {attributes(s)["runtrace.run.id"]: s for s in receiver.named("invoke_agent coder")}
    done, cancelled = runs[run.id], runs[stopped.id]
    done_attrs = attributes(done)
    assert done_attrs["gen_ai.operation.name"] == "invoke_agent"
    assert done_attrs["gen_ai.conversation.id"] == "sess-1"
    assert done_attrs["gen_ai.usage.input_tokens"] == 7
    assert done_attrs["runtrace.run.event_count"] == 5
    assert done.status.code == ProtoStatus.STATUS_CODE_OK
    assert [e.name for e in done.events] == [
        "agent_start",
        "tool_start",
        "tool_end",
        "turn_end",
        "agent_end",
    ]
    assert attributes(done.events[1])["gen_ai.tool.name"] == "bash"
    assert "fix it" not in repr(done)  # content stays local by default
    assert done.trace_id.hex() == run.snapshot().trace_id
    assert done.span_id.hex() == run.snapshot().span_id

    (tool,) = receiver.named("execute_tool bash")
    assert tool.parent_span_id == done.span_id
    assert tool.trace_id == done.trace_id
    assert attributes(tool)["gen_ai.tool.call.id"] == "t1"

    assert cancelled.status.code == ProtoStatus.STATUS_CODE_ERROR
    assert cancelled.status.message == "cancelled: user pressed stop"
    assert attributes(cancelled)["error.type"] == "cancelled"
    assert attributes(cancelled)["runtrace.run.status"] == "cancelled"


def test_stalled_backend_does_not_hold_up_the_agent(receiver: Receiver) -> None:
    receiver.hold.clear()  # the backend accepts requests and never answers, until released
    provider, rt = otlp_runtrace(receiver.endpoint)
    finished = threading.Event()

    def agent() -> None:
        for n in range(3):
            with rt.start_run(f"s{n}") as run:
                run.record({"type": "agent_start", "prompt": "x"})
        finished.set()

    with rt.start_run("first") as first:
        first.record({"type": "agent_start", "prompt": "x"})
    # Wake the exporter thread and wait until its request is stuck inside the backend.
    flusher = threading.Thread(target=provider.force_flush, daemon=True)
    flusher.start()
    assert receiver.arrived.wait(30)
    worker = threading.Thread(target=agent)
    worker.start()
    worker.join(30)  # a liveness guard, not a speed check: export must not block the agent
    assert finished.is_set()
    assert receiver.requests == 0  # nothing answered yet: the runs finished without the backend
    assert [s.status for s in rt.store.list()] == [RunStatus.COMPLETED] * 4
    receiver.hold.set()
    provider.shutdown()
    assert receiver.requests >= 1


def test_dead_backend_never_breaks_the_agent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    provider, rt = otlp_runtrace(f"http://127.0.0.1:{port}/v1/traces")
    with rt.start_run("s") as run:
        run.record({"type": "agent_start", "prompt": "x"})
        run.record({"type": "agent_end", "text": "ok"})
    assert run.status() is RunStatus.COMPLETED
    assert run.snapshot().ended_at_ms is not None
    provider.shutdown()
    assert rt.store.events(run.id)[-1].event.type == "agent_end"


def test_foreign_spans_are_read_by_the_translator_and_runtraces_own_spans_never_are(
    env: Setup,
) -> None:
    tracer = env.rt.tracer
    with env.rt.start_run("s", agent_name="lead") as run:
        run.record({"type": "tool_start", "id": "t", "name": "bash"})
        with tracer.start_as_current_span("chat gpt", attributes={"gen_ai.operation.name": "chat"}):
            pass  # a framework's model call inside runtrace's run: a turn of that run
        run.record({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": 0})
        with tracer.start_as_current_span(
            "invoke_agent adopted", attributes=agent_span_attributes()
        ):
            pass  # a plain GenAI agent span: a run runtrace adopts and marks as its own
    with tracer.start_as_current_span("late", attributes={}) as late:
        late.set_attribute("gen_ai.operation.name", "invoke_agent")  # a run only at its end
    kinds = {s.name: (s.attributes or {}).get("runtrace.span.kind") for s in env.spans()}
    assert kinds == {
        "invoke_agent lead": "run",
        "execute_tool bash": "tool",
        "chat gpt": None,
        "invoke_agent adopted": None,  # adopted as a live run, nothing written onto it
        "late": None,
    }
    store = env.rt.store
    assert len(store) == 3
    lead = [r.event.type for r in store.events(run.id)]
    # runtrace's own tool span is not read again; the chat span is a turn; the adopted agent
    # inside the run is its subagent
    assert lead.count("tool_start") == 1 and lead.count("tool_end") == 1
    assert [t for t in lead if t.startswith("turn_")] == ["turn_start", "turn_end"]
    assert "subagent_start" in lead and "subagent_end" in lead
    late_run = next(s for s in store.list() if s.id != run.id and s.agent_name is None)
    assert late_run.status.value == "completed"


def test_own_runs_reach_the_translator_only_once_a_foreign_span_is_under_one(env: Setup) -> None:
    foreign = env.rt.processor.foreign
    with env.rt.start_run("s", agent_name="lead") as run:
        run.record({"type": "tool_start", "id": "t", "name": "bash"})
        run.record({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": 0})
    assert (foreign.stats.spans_seen, foreign.stats.runs_claimed) == (0, 0)
    chat = {"gen_ai.operation.name": "chat"}
    with env.rt.start_run("s", agent_name="lead") as run:
        env.rt.tracer.start_span("chat m", attributes=chat).end()  # under the current run span
    assert (foreign.stats.spans_seen, foreign.stats.runs_claimed) == (2, 1)  # chat, run span
    assert [r.event.type for r in env.rt.store.events(run.id)] == ["turn_start", "turn_end"]


def test_a_foreign_span_or_log_after_an_own_run_ended_still_attaches_to_it(env: Setup) -> None:
    handle = env.rt.begin_run("s", agent_name="lead")
    handle.record({"type": "agent_end", "text": "done"})
    final = handle.end()
    context = trace.set_span_in_context(handle.span)
    with env.rt.tracer.start_as_current_span(
        "chat m", context=context, attributes={"gen_ai.operation.name": "chat"}
    ):
        pass
    ids = handle.span.get_span_context()
    step = {"step_id": "s1", "description": "d", "step_number": 1, "total_steps": 1}
    env.rt.processor.foreign.on_log(ids.trace_id, ids.span_id, "step_start", step, time.time_ns())
    store = env.rt.store
    assert len(store) == 1  # attached to the ended run, not made into runs of their own
    types = [r.event.type for r in store.events(handle.id)]
    assert types == ["agent_end", "turn_start", "turn_end", "step_start"]
    after = store.snapshot(handle.id)
    assert after is not None
    assert (after.status, after.ended_at_ms) == (final.status, final.ended_at_ms)  # not reopened
    assert env.rt.processor.foreign.stats.children_attached_late == 2


def test_a_failing_translator_is_a_reported_fault(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtrace.otel.foreign import ForeignRuns

    def broken(self: ForeignRuns, span: ReadableSpan) -> None:
        raise RuntimeError("translator bug")

    monkeypatch.setattr(ForeignRuns, "on_end", broken)
    setup = Setup(raise_errors=False)
    with setup.rt.tracer.start_as_current_span(
        "chat", attributes={"gen_ai.operation.name": "chat"}
    ):
        pass
    assert setup.rt.processor.faults.counts == {"a foreign span's end": 1}
    assert "runtrace: error in a foreign span's end" in caplog.text
    setup.provider.shutdown()


def test_a_hung_sink_cannot_hold_flush_or_shutdown_past_the_deadline() -> None:
    import threading
    import time

    release = threading.Event()

    class Hung(ListSink):
        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            release.wait(30)  # ignores its timeout, as a hung disk would
            return True

        def shutdown(self, timeout_millis: int = 30_000) -> None:
            release.wait(30)

    after = ListSink()
    processor = RunSpanProcessor(sinks=[Hung(), after])
    started = time.monotonic()
    assert processor.force_flush(300) is False
    processor.shutdown(300)
    took = time.monotonic() - started
    release.set()
    assert took < 5  # two deadlines of 0.3 s, not the hung sink's 30 s each
    assert after.shutdowns == [0]  # the sink after it still got a call, with what was left


def test_a_sink_whose_flush_raises_is_a_reported_fault(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(ListSink):
        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            raise OSError("disk gone")

    processor = RunSpanProcessor(sinks=[Broken(), ListSink()], raise_errors=False)
    assert processor.force_flush(1000) is False
    assert processor.faults.counts == {"flushing a sink": 1}
    assert "disk gone" in caplog.text


class ReadingSink(ListSink):
    """A sink that reads runs' newest snapshots itself (SnapshotReadingSink)."""

    def __init__(self) -> None:
        super().__init__()
        self.source: runtrace.sink.SnapshotSource | None = None

    def read_snapshots_from(self, source: runtrace.sink.SnapshotSource) -> None:
        self.source = source


def _record_deltas(sinks: list[ListSink]) -> str:
    rt = Runtrace(TracerProvider(), RunSpanProcessor(sinks=sinks))
    with rt.start_run("s", prompt="p") as run:
        run.record({"type": "agent_start", "prompt": "p"})
        for i in range(5):
            run.record({"type": "text_delta", "text": f"t{i}"})
        run_id = run.id
    return run_id


def test_a_sink_reading_snapshots_itself_gets_no_snapshot_made_per_counted_event() -> None:
    sink = ReadingSink()
    assert isinstance(sink, runtrace.sink.SnapshotReadingSink)
    run_id = _record_deltas([sink])
    assert sink.source is not None
    given = [payload[0] for kind, payload in sink.calls if kind == "event"]
    # Each is an earlier snapshot at most: its status current, its count never ahead.
    assert [s.status for s in given] == [RunStatus.EXECUTING] * 6
    assert all(s.event_count <= i + 1 for i, s in enumerate(given))
    assert len({id(s) for s in given[1:]}) == 1  # the deltas shared the one made at agent_start
    newest = sink.source(run_id)
    assert newest is not None and (newest.event_count, newest.status) == (6, RunStatus.COMPLETED)
    final = [snap for kind, snap in sink.calls if kind == "run"][-1]
    assert (final.event_count, final.status) == (6, RunStatus.COMPLETED)  # on_run stays exact


def test_a_sink_that_needs_each_snapshot_gets_it_exact_beside_a_reading_sink() -> None:
    exact, reading = ListSink(), ReadingSink()
    _record_deltas([exact, reading])
    for sink in (exact, reading):
        counts = [payload[0].event_count for kind, payload in sink.calls if kind == "event"]
        assert counts == [1, 2, 3, 4, 5, 6]
