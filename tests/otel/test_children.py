"""Child spans (runtrace.otel.children): execute_tool and invoke_agent children of a live run,
the same pairing planned over stored records for replay."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import StatusCode
from otel.helpers import Plain, Setup

from runtrace import RunCancelled, RunStatus, Runtrace, SpanSettings, record_event
from runtrace.events import parse_event
from runtrace.otel import run_spans
from runtrace.otel.children import plan_child_spans
from runtrace.runs import RunRecord, event_record


def test_plan_child_spans_pairs_tools_and_subagents_for_replay() -> None:
    raw = [
        (100, {"type": "tool_start", "id": "a", "name": "bash"}),
        (110, {"type": "tool_execution_start", "id": "a", "name": "bash", "args": {}}),
        (120, {"type": "tool_execution_start", "id": "b", "name": "grep"}),
        (150, {"type": "tool_end", "id": "a", "name": "bash", "output": "", "exit_code": 0}),
        (
            160,
            {
                "type": "subagent_start",
                "task_id": "k",
                "session_id": "sub",
                "parent_session_id": "s",
                "agent": "rev",
                "description": "",
            },
        ),
        (
            170,
            {
                "type": "subagent_end",
                "task_id": "k",
                "session_id": "sub",
                "agent": "rev",
                "output": "",
                "success": False,
                "finished_ms": 175,
            },
        ),
    ]
    records = [event_record(i, at, parse_event(e)) for i, (at, e) in enumerate(raw)]
    spans = plan_child_spans(records, "run-1", run_end_ms=200)
    assert [(s.name, s.start_ms, s.end_ms, s.finished) for s in spans] == [
        ("execute_tool bash", 100, 150, True),
        ("execute_tool grep", 120, 200, False),
        ("invoke_agent rev", 160, 175, True),
    ]
    assert spans[0].status.status_code is StatusCode.OK
    assert spans[1].status.status_code is StatusCode.UNSET
    assert spans[2].status.status_code is StatusCode.ERROR
    assert spans[2].attributes["runtrace.span.kind"] == "subagent"
    assert all(s.attributes["runtrace.run.id"] == "run-1" for s in spans)


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


def test_processor_without_tracer_keeps_tool_calls_as_events_only(plain: Plain) -> None:
    with plain.agent_span():
        record_event({"type": "tool_start", "id": "t", "name": "bash"})
        record_event({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": 0})
    assert [s.name for s in plain.exporter.get_finished_spans()] == ["invoke_agent"]
    assert len(plain.store.events(plain.only_run().id)) == 2


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


def test_with_child_spans_off_tool_calls_stay_span_events_live_and_on_replay() -> None:
    setup = Setup(settings=SpanSettings(child_spans=False))
    with setup.rt.start_run("s") as run:
        run.record({"type": "tool_start", "id": "t", "name": "bash"})
        run.record({"type": "tool_end", "id": "t", "name": "bash", "output": "", "exit_code": 0})
    assert [s.name for s in setup.spans()] == ["invoke_agent"]
    assert [e.name for e in setup.run_span(run.id).events] == ["tool_start", "tool_end"]
    record = RunRecord(snapshot=run.snapshot(), events=run.events())
    assert [s.name for s in run_spans(record, SpanSettings(child_spans=False))] == ["invoke_agent"]
    assert [s.name for s in run_spans(record)] == ["invoke_agent", "execute_tool bash"]
    setup.provider.shutdown()
