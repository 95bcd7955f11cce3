"""RunAssembler on hand-built spans: which spans are runs, where children's events go, outcomes,
and every order spans arrive in (in-process, and OTLP: ended spans, children first)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from opentelemetry.trace import StatusCode
from otel.translate.helpers import Assembled, Traced, at, by_name, end, feed

from runtrace.otel.translate import RunAssembler, StoreTarget
from runtrace.store import RunStore

AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coder"}
CHAT: dict[str, str | int] = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10}
TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "bash"}


def agent_with_children(t: Traced, *, conversation: str | None = "conv-1") -> None:
    """invoke_agent coder [0, 10] > chat [1, 2], execute_tool bash [3, 4], chat [5, 6]."""
    attrs = {**AGENT, "gen_ai.conversation.id": conversation} if conversation else AGENT
    run = t.start("invoke_agent coder", attrs, ms=0)
    t.span("chat", {**CHAT, "gen_ai.usage.output_tokens": 1}, parent=run, ms=(1, 2))
    t.span("execute_tool bash", {**TOOL, "gen_ai.tool.call.id": "c1"}, parent=run, ms=(3, 4))
    t.span("chat", {**CHAT, "gen_ai.usage.output_tokens": 2}, parent=run, ms=(5, 6))
    end(run, 10)


def test_an_agent_span_is_a_live_run_from_its_start(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", {**AGENT, "gen_ai.conversation.id": "c"})
    live = traced.run()
    assert (live.status.value, live.session_id, live.agent_name) == ("created", "c", "coder")
    traced.span("chat", CHAT, parent=run, ms=(1, 2))
    assert traced.run().status.value == "executing"
    end(run, 3)
    assert traced.run().status.value == "completed"


def test_children_land_on_the_run_at_the_times_they_happened(traced: Traced) -> None:
    agent_with_children(traced)
    for out in (traced, traced.replay()):
        run = out.run()
        assert out.types(run.id) == [
            "agent_start",
            "turn_start",
            "turn_end",
            "tool_start",
            "tool_end",
            "turn_start",
            "turn_end",
            "agent_end",
        ]
        times = [r.timestamp_ms for r in out.store.events(run.id)]
        assert times == [at(ms) // 1_000_000 for ms in (0, 1, 2, 3, 4, 5, 6, 10)]
        assert [e["turn"] for e in out.events(run.id, "turn_end")] == [1, 2]
        assert (run.input_tokens, run.output_tokens) == (20, 3)  # the turns' sum: no total given
        out.check_events()


def test_without_a_conversation_id_the_trace_is_the_session(traced: Traced) -> None:
    agent_with_children(traced, conversation=None)
    run = traced.run()
    assert run.session_id == run.trace_id


def test_the_run_total_replaces_the_turns_sum(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    traced.span("chat", {**CHAT, "gen_ai.usage.output_tokens": 1}, parent=run, ms=(1, 2))
    run.set_attributes({"gen_ai.usage.input_tokens": 99, "gen_ai.usage.output_tokens": 9})
    end(run, 3)
    assert (traced.run().input_tokens, traced.run().output_tokens) == (99, 9)


def test_attributes_set_only_after_start_still_make_the_run(traced: Traced) -> None:
    run = traced.start("agent step")  # nothing says "agent" yet
    run.set_attributes(AGENT)
    chat = traced.start("chat", parent=run, ms=1)  # the child's start reads the parent again
    assert traced.run().agent_name == "coder"
    chat.set_attributes(CHAT)
    end(chat, 2)
    end(run, 3)
    out = traced
    assert out.types(out.run().id) == ["agent_start", "turn_start", "turn_end", "agent_end"]


def test_attributes_set_after_start_with_no_children_decide_at_the_end(traced: Traced) -> None:
    run = traced.start("step")
    assert traced.runs() == []
    run.set_attributes(AGENT)
    end(run, 1)
    assert traced.run().status.value == "completed"


def test_a_tool_span_with_no_run_above_it_is_counted_not_a_run(traced: Traced) -> None:
    traced.span("execute_tool bash", TOOL)
    assert traced.runs() == []
    assert traced.assembler.stats.outside_runs == 1
    replay = traced.replay()
    assert replay.runs() == [] and replay.assembler.stats.outside_runs == 1


def test_a_child_ending_after_its_run_attaches_without_reopening_it(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    chat = traced.start("chat", CHAT, parent=run, ms=1)
    end(run, 2)
    assert traced.run().status.value == "completed"
    end(chat, 3)
    done = traced.run()
    assert done.status.value == "completed" and done.ended_at_ms == at(2) // 1_000_000
    assert traced.types(done.id)[-2:] == ["turn_start", "turn_end"]
    assert traced.assembler.stats.children_attached_late == 1


def test_two_interleaved_runs_on_one_thread_keep_their_own_events(traced: Traced) -> None:
    a = traced.start("invoke_agent a", {**AGENT, "gen_ai.agent.name": "a"}, ms=0)
    b = traced.start("invoke_agent b", {**AGENT, "gen_ai.agent.name": "b"}, ms=1)
    traced.span("chat", CHAT, parent=b, ms=(2, 3))
    traced.span("execute_tool bash", TOOL, parent=a, ms=(4, 5))
    traced.span("chat", CHAT, parent=a, ms=(6, 7))
    end(a, 8)
    traced.span("execute_tool bash", TOOL, parent=b, ms=(9, 10))
    end(b, 11)
    for out in (traced, traced.replay()):
        assert out.types(out.run("a").id)[1:-1] == [
            "tool_start",
            "tool_end",
            "turn_start",
            "turn_end",
        ]
        assert out.types(out.run("b").id)[1:-1] == [
            "turn_start",
            "turn_end",
            "tool_start",
            "tool_end",
        ]


def test_a_run_span_never_ended_is_cancelled_at_shutdown(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    traced.span("chat", CHAT, parent=run, ms=(1, 2))
    traced.assembler.shutdown()
    left = traced.run()
    assert (left.status.value, left.error) == ("cancelled", "shut down before the run's span ended")
    assert traced.assembler.stats.runs_unended == 1
    end(run, 3)  # ending it afterwards changes nothing
    assert traced.run().status.value == "cancelled"


def test_children_arriving_before_their_run_span_wait_for_it(spans: Traced) -> None:
    agent_with_children(spans)
    out = Assembled()
    run_span = by_name(spans.spans(), "invoke_agent coder")
    children = [s for s in spans.spans() if s not in run_span]
    feed(out.assembler, children)  # one request: the children only
    assert out.runs() == [] and out.assembler.stats.held == 3
    feed(out.assembler, run_span)  # the next request brings the run
    assert out.assembler.stats.held == 0
    assert out.types(out.run().id).count("turn_end") == 2


def test_the_same_span_received_twice_counts_once(spans: Traced) -> None:
    agent_with_children(spans)
    out = spans.replay()
    feed(out.assembler, spans.spans())
    assert out.types(out.run().id).count("tool_end") == 1
    assert out.assembler.stats.duplicate_spans == 4


def test_received_unset_run_waits_for_the_batch_for_a_child_that_outlived_it(
    spans: Traced,
) -> None:
    run = spans.start("invoke_agent coder", AGENT)
    call = spans.start("execute_tool bash", TOOL, parent=run, ms=1)
    end(run, 2)
    call.record_exception(asyncio.CancelledError(), timestamp=at(3))
    end(call, 3, StatusCode.ERROR)
    out = Assembled()
    out.assembler.on_end(spans.spans()[0])  # the run span first: its outcome waits
    assert out.run().ended_at_ms is None
    feed(out.assembler, spans.spans()[1:])
    got = out.run()
    assert (got.status.value, got.error) == (
        "cancelled",
        "interrupted: the run's span ended while tool 'bash' was running",
    )


def test_an_open_tool_at_the_run_end_does_not_hide_an_error(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    call = traced.start("execute_tool bash", TOOL, parent=run, ms=1)
    end(run, 2, (StatusCode.ERROR, "agent crashed"))
    end(call, 3)
    assert (traced.run().status.value, traced.run().error) == ("failed", "agent crashed")


def test_unset_run_whose_last_child_was_cancelled_is_cancelled(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    traced.span("chat", CHAT, parent=run, ms=(1, 2), exception=KeyboardInterrupt())
    end(run, 3)
    assert (traced.run().status.value, traced.run().error) == ("cancelled", "KeyboardInterrupt")


def test_a_failed_tool_the_run_goes_on_from_is_no_failed_run(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    traced.span("execute_tool bash", TOOL, parent=run, ms=(1, 2), status=(StatusCode.ERROR, "x"))
    traced.span("chat", CHAT, parent=run, ms=(3, 4))
    end(run, 5, StatusCode.OK)
    assert traced.run().status.value == "completed"
    (call,) = traced.events(traced.run().id, "tool_end")
    assert (call["exit_code"], call["output"], call["error_kind"]) == (1, "x", "tool_error")


def test_workflow_around_one_agent_makes_one_run(traced: Traced) -> None:
    flow = traced.start("invoke_workflow", {"gen_ai.operation.name": "invoke_workflow"})
    run = traced.start("invoke_agent coder", AGENT, parent=flow, ms=1)
    traced.span("chat", CHAT, parent=run, ms=(2, 3))
    end(run, 4)
    traced.span("chat", CHAT, parent=flow, ms=(5, 6))  # the workflow's own call
    end(flow, 7)
    for out in (traced, traced.replay()):
        only = out.run()
        assert only.agent_name == "coder"
        assert out.types(only.id).count("turn_end") == 2  # the stray call goes to its run


def test_workflow_doing_work_with_no_agent_is_the_run(traced: Traced) -> None:
    attrs = {"gen_ai.operation.name": "invoke_workflow", "gen_ai.conversation.id": "w"}
    flow = traced.start("invoke_workflow", attrs)
    traced.span("chat", CHAT, parent=flow, ms=(1, 2))
    traced.span("execute_tool bash", TOOL, parent=flow, ms=(3, 4))
    end(flow, 5)
    for out in (traced, traced.replay()):
        run = out.run()
        assert (run.session_id, run.status.value) == ("w", "completed")
        assert out.types(run.id)[1:-1] == ["turn_start", "turn_end", "tool_start", "tool_end"]


def test_log_records_of_a_run_become_its_events(traced: Traced) -> None:
    run = traced.start("invoke_agent coder", AGENT)
    ctx = run.get_span_context()
    chat = traced.start("chat", CHAT, parent=run, ms=1)
    asm = traced.assembler
    asm.on_log(ctx.trace_id, ctx.span_id, "text_delta", {"text": "hel"}, at(1))
    details = {"gen_ai.output.messages": '[{"role": "assistant"}]'}
    asm.on_log(ctx.trace_id, chat.get_span_context().span_id, "gen_ai.choice", details, at(2))
    asm.on_log(ctx.trace_id, ctx.span_id, "gen_ai.user.message", {}, at(2), body={"content": "x"})
    end(chat, 3)
    end(run, 4)
    got = traced.run()
    assert traced.events(got.id, "text_delta") == [{"type": "text_delta", "text": "hel"}]
    assert traced.events(got.id, "gen_ai.choice") == [{"type": "gen_ai.choice", **details}]
    assert traced.events(got.id, "gen_ai.user.message") == [
        {"type": "gen_ai.user.message", "content": "x"}
    ]
    assert traced.assembler.stats.logs_seen == 3


def test_log_records_before_their_span_arrives_wait_for_it(spans: Traced) -> None:
    agent_with_children(spans)
    run_span = by_name(spans.spans(), "invoke_agent coder")[0]
    out = Assembled()
    ctx = run_span.context
    assert ctx is not None
    out.assembler.on_log(ctx.trace_id, ctx.span_id, "text_delta", {"text": "early"}, at(1))
    assert out.assembler.stats.held == 1
    feed(out.assembler, spans.spans())
    assert out.events(out.run().id, "text_delta") == [{"type": "text_delta", "text": "early"}]


def test_runtrace_events_sent_as_log_records_count_once(spans: Traced) -> None:
    attrs = {"runtrace.span.kind": "run", "runtrace.run.id": "run-1", **AGENT}
    run = spans.start("invoke_agent coder", attrs)
    event: dict[str, str | int] = {"id": "t1", "name": "bash", "runtrace.record.sequence": 0}
    run.add_event("tool_start", event, timestamp=at(1))
    end(run, 2)
    out = Assembled()
    ctx = run.get_span_context()
    out.assembler.on_log(ctx.trace_id, ctx.span_id, "tool_start", event, at(1))
    feed(out.assembler, spans.spans())
    assert out.types("run-1") == ["tool_start"]


def test_held_children_past_the_bound_become_a_failed_run_saying_why(spans: Traced) -> None:
    agent_with_children(spans)
    children = [s for s in spans.spans() if s.name != "invoke_agent coder"]
    out = Assembled(max_held=2)
    feed(out.assembler, children)
    stats = out.assembler.stats
    assert (stats.held_evicted, stats.orphans_reported, stats.held) == (3, 3, 0)
    orphan = out.run()
    assert orphan.status.value == "failed"
    assert orphan.error is not None and orphan.error.startswith("incomplete trace: span ")
    assert out.types(orphan.id).count("turn_end") == 2


def test_held_children_of_a_span_that_never_ended_go_to_their_trace_run_on_flush(
    spans: Traced,
) -> None:
    run = spans.start("invoke_agent coder", AGENT)
    step = spans.start("step", parent=run, ms=1)  # never ends, never exported
    spans.span("chat", CHAT, parent=step, ms=(2, 3))
    end(run, 4)
    out = spans.replay()
    assert out.types(out.run().id) == ["agent_start", "agent_end"]
    out.assembler.flush()
    assert out.types(out.run().id)[-2:] == ["turn_start", "turn_end"]
    del step


def test_held_children_with_no_run_in_their_trace_become_a_run_at_shutdown(
    spans: Traced,
) -> None:
    step = spans.start("step")  # never ends
    spans.span("execute_tool bash", TOOL, parent=step, ms=(1, 2))
    out = spans.replay()
    out.assembler.flush()
    assert out.runs() == []
    out.assembler.shutdown()
    assert out.run().status.value == "failed"
    assert out.assembler.stats.orphans_reported == 1
    del step


def test_claimed_runs_get_foreign_children_and_subagents_but_no_outcome(traced: Traced) -> None:
    traced.store.create_run("s", run_id="own")
    own = traced.start("my own run")
    traced.assembler.claim(own, "own")  # type: ignore[arg-type]
    inner = traced.start(
        "invoke_agent helper", {**AGENT, "gen_ai.agent.name": "helper"}, parent=own
    )
    traced.span("chat", CHAT, parent=inner, ms=(1, 2))
    end(inner, 3)
    traced.span("execute_tool bash", TOOL, parent=own, ms=(4, 5))
    end(own, 6)
    assert traced.types("own") == ["subagent_start", "subagent_end", "tool_start", "tool_end"]
    claimed = traced.store.snapshot("own")
    assert claimed is not None and claimed.status.value == "executing"
    assert traced.assembler.run_id(own.get_span_context().span_id) == "own"


def test_a_run_gone_from_a_bounded_store_loses_late_events_counted() -> None:
    store = RunStore(max_finished_runs=0)  # a finished run leaves the store at once
    t = Traced(live=False)
    run = t.start("invoke_agent coder", AGENT)
    chat = t.start("chat", CHAT, parent=run, ms=1)
    end(run, 2, StatusCode.OK)
    end(chat, 3)
    asm = RunAssembler(StoreTarget(store))
    feed(asm, t.spans())
    assert asm.stats.events_lost == 2
    t.provider.shutdown()


def test_two_spans_naming_one_run_id_make_two_runs(spans: Traced) -> None:
    attrs = {**AGENT, "gen_ai.agent.call.id": "same"}
    spans.span("invoke_agent coder", attrs, ms=(0, 1))
    spans.span("invoke_agent coder", attrs, ms=(2, 3))
    ids = sorted(run.id for run in spans.replay().runs())
    assert ids[0] == "same" and ids[1].startswith("same-")


def test_bounds_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="max_open must be at least 1, not 0"):
        RunAssembler(StoreTarget(RunStore()), max_open=0)
    with pytest.raises(ValueError, match="max_held must be at least 0, not -1"):
        RunAssembler(StoreTarget(RunStore()), max_held=-1)


def test_runs_from_many_threads_each_keep_their_own_events(traced: Traced) -> None:
    def agent(name: str) -> None:
        for i in range(20):
            run = traced.start(f"invoke_agent {name}", {**AGENT, "gen_ai.agent.name": name})
            traced.span("chat", CHAT, parent=run, ms=(1, 2))
            traced.span("execute_tool bash", TOOL, parent=run, ms=(3, 4))
            end(run, 5 + i)

    threads = [threading.Thread(target=agent, args=(f"a{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = traced.runs()
    assert len(runs) == 80
    for run in runs:
        assert run.status.value == "completed"
        assert traced.types(run.id) == [
            "agent_start",
            "turn_start",
            "turn_end",
            "tool_start",
            "tool_end",
            "agent_end",
        ]
