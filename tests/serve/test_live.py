"""ReceivedRuns: received runs show while they run, before their run span arrives, and end
right when it comes; events announced early are kept once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from serve.agent import describe
from serve.helpers import Reader, StepAgent, wait_for

from runtrace import RunSpanProcessor, RunStore, Runtrace
from runtrace.duckdb import load_records
from runtrace.otel import AnnounceSink
from runtrace.runs import RunEventRecord, RunSnapshot
from runtrace.serve import ReceivedRuns, Server


def test_runs_from_another_process_show_while_they_run_and_end_with_their_span(
    duckdb_server: Callable[..., Server], reader: Reader
) -> None:
    server = duckdb_server()
    path = server.ingest.path  # type: ignore[attr-defined]

    def _file_run(path: str, run_id: str) -> dict[str, Any] | None:
        return reader.runs(path).get(run_id)  # as a reader of the file sees it now

    agent = StepAgent("live", "--protocol", "http", "--endpoint", server.url)
    try:
        step = agent.step()  # a runtrace run, open, four events recorded and announced
        assert step["step"] == "runtrace open"
        (sent,) = step["records"]
        assert not sent["ended"] and len(sent["events"]) == 4
        wait_for(lambda: _file_run(path, sent["id"]) == sent, "the open run in the file")
        assert server.receiver.metrics()["runs_open"] == 1
        agent.go()

        step = agent.step()  # it ended: the file says so, with every event once
        (sent,) = step["records"]
        assert sent["ended"] and sent["status"] == "completed"
        wait_for(lambda: _file_run(path, sent["id"]) == sent, "the ended run in the file")
        agent.go()

        step = agent.step()  # a pydantic-ai run, inside its first tool call
        assert step["step"] == "framework waiting"
        result: dict[str, Any] = {}

        def framework_open() -> bool:
            found = [r for r in reader.runs(path).values() if r["agent_name"] == "helper"]
            if found:
                result.update(found[0])
            return bool(found)

        wait_for(framework_open, "the pydantic-ai run in the file, before its run span")
        early = result
        assert early["status"] == "executing" and not early["ended"]  # its first call is in
        assert [t for _, t in early["events"][:3]] == ["agent_start", "turn_start", "turn_end"]
        agent.go()
        final = {r["id"]: r for r in agent.result()["runs"]}
    finally:
        agent.close()
    framework = final[result["id"]]
    assert framework["status"] == "completed"
    assert framework["events"][: len(early["events"])] == early["events"]  # more came after
    assert server.ingest.force_flush(30_000)  # type: ignore[attr-defined]
    assert _file_run(path, result["id"]) == framework  # ended as recorded in its process
    assert server.receiver.metrics()["runs_open"] == 0


# --- ReceivedRuns on its own: the SDK's spans from this process, delivered request by request --


class Recorded:
    """runtrace (announcing) on a provider whose spans are kept in memory, as an exporter gets
    them; ``deliver`` hands them to a receiving processor, one request at a time."""

    def __init__(self, every_events: int = 8) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.store = RunStore()
        announce = AnnounceSink(self.provider.get_tracer("announce"), every_events=every_events)
        self.rt = Runtrace(self.provider, RunSpanProcessor(self.store, sinks=[announce]))
        self.processor = RunSpanProcessor(RunStore())
        self.received = ReceivedRuns(self.processor)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def deliver(self, *requests: list[ReadableSpan]) -> None:
        for request in requests:
            for span in request:
                self.received.on_end(span)
            self.received.end_batch()

    def sent(self) -> dict[str, dict[str, Any]]:
        return {r.snapshot.id: describe(r) for r in self.store.records()}

    def got(self) -> dict[str, dict[str, Any]]:
        return {r.snapshot.id: describe(r) for r in self.processor.store.records()}


class ShutSink:
    """A sink that only remembers being shut down."""

    def __init__(self) -> None:
        self.shut = False

    def on_run(self, snapshot: RunSnapshot) -> None:
        pass

    def on_event(self, snapshot: RunSnapshot, record: RunEventRecord) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        self.shut = True


def _kind(span: ReadableSpan) -> str | None:
    value = (span.attributes or {}).get("runtrace.span.kind")
    return None if value is None else str(value)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    setup = Recorded()
    yield setup
    setup.provider.shutdown()


def test_announced_events_go_in_once_in_order_whatever_the_requests_bring(
    recorded: Recorded,
) -> None:
    with recorded.rt.start_run("sess-1", agent_name="bot") as run:
        for turn in range(40):
            run.record({"type": "turn_start", "turn": turn})
    spans = recorded.spans()
    pending = [s for s in spans if _kind(s) == "pending"]
    (run_span,) = [s for s in spans if _kind(s) == "run"]
    assert [len(p.events) for p in pending] == [0, 8, 8, 8, 8, 8]

    recorded.deliver(pending[:2])
    (live,) = recorded.got().values()
    assert not live["ended"] and len(live["events"]) == 8
    assert recorded.received.runs_open() == 1
    recorded.deliver(pending[3:5])  # the third announcement is late: its successors wait
    assert len(recorded.got()[run.id]["events"]) == 8
    recorded.deliver([run_span, pending[2]], [pending[5]])  # the run span first, in a request
    assert recorded.got() == recorded.sent()  # every event once, in sequence order
    assert recorded.received.stale == 1  # the last announcement came after the end: ignored
    assert recorded.received.runs_open() == 0


def test_announcements_that_never_come_are_counted_as_lost(recorded: Recorded) -> None:
    with recorded.rt.start_run("sess-1") as run:
        for turn in range(200):  # more than the run span's 128
            run.record({"type": "turn_start", "turn": turn})
    spans = recorded.spans()
    pending = [s for s in spans if _kind(s) == "pending"]
    recorded.deliver([s for s in spans if s is not pending[2]])  # events 8 to 15 never come
    (got,) = recorded.got().values()
    types = [t for _, t in got["events"]]
    assert types == ["turn_start"] * 192 + ["span_events_dropped"]
    *turns, lost = [e.event.model_dump() for e in recorded.processor.store.events(run.id)]
    assert lost["count"] == 8
    turns = [e["turn"] for e in turns]
    assert turns == [*range(8), *range(16, 200)]


def test_plain_span_events_the_sender_picked_up_and_announced_are_kept_once() -> None:
    setup = Recorded(every_events=1)  # announces the events picked up at the run's end too
    with setup.rt.start_run("sess-1") as run:
        run.record({"type": "agent_start", "prompt": "p"})
        run.span.add_event("turn_start", {"runtrace.event.turn": 1})  # plain OpenTelemetry
        run.span.add_event("note", {"text": "x"})
    assert [t for _, t in setup.sent()[run.id]["events"]] == ["agent_start", "turn_start", "note"]
    announced = sum(len(s.events) for s in setup.spans() if _kind(s) == "pending")
    assert announced == 3  # the picked-up ones too, after the run span had ended
    setup.deliver(setup.spans())
    assert setup.got() == setup.sent()
    setup.provider.shutdown()


def test_a_framework_run_shows_at_its_first_child_and_a_nested_one_at_its_end(
    recorded: Recorded,
) -> None:
    asyncio.run(_nested_pydantic_ai(recorded.provider))
    spans = recorded.spans()
    names = [s.name for s in spans]
    assert names == [
        "chat test",
        "chat test",
        "invoke_agent inner",
        "execute_tool ask",
        "chat test",
        "invoke_agent outer",
    ]
    sent = recorded.sent()
    recorded.deliver(spans[:1])  # the outer run's first model call
    (outer,) = recorded.got().values()
    assert outer["agent_name"] == "outer" and outer["status"] == "executing"
    assert [t for _, t in outer["events"]] == ["agent_start", "turn_start", "turn_end"]
    recorded.deliver(spans[1:2])  # the inner run's: it may be nested, so it waits for its span
    assert len(recorded.got()) == 1
    recorded.deliver(spans[2:3])
    inner = recorded.got()[spans[2].attributes["gen_ai.agent.call.id"]]  # type: ignore[index]
    assert inner == sent[inner["id"]]
    recorded.deliver(*([s] for s in spans[3:]))
    got = recorded.got()
    assert got.keys() == sent.keys()
    for run_id, run in sent.items():  # in-process, events land as children end; here as they
        mine = got[run_id]  # arrive, in time order: the same events, the same outcome
        assert {**mine, "events": sorted(t for _, t in mine["events"])} == {
            **run,
            "events": sorted(t for _, t in run["events"]),
        }


def test_a_tool_cancelled_after_its_run_span_in_the_same_request_cancels_the_run(
    recorded: Recorded,
) -> None:
    asyncio.run(_cancelled_pydantic_ai(recorded.provider))
    spans = recorded.spans()
    assert [s.name for s in spans] == ["chat test", "invoke_agent slow", "execute_tool wait"]
    recorded.deliver(spans[:1], spans[1:])  # shown at its first call; the rest in one request
    (sent,) = recorded.sent().values()
    (got,) = recorded.got().values()
    assert sent["status"] == got["status"] == "cancelled"
    assert got["events"] == sent["events"]
    assert got["error"] == "asyncio task cancelled"  # the tool's reason; in-process: interrupted


async def _nested_pydantic_ai(provider: TracerProvider) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    settings = InstrumentationSettings(tracer_provider=provider)
    inner: Any = Agent(TestModel(), name="inner")
    inner.instrument = settings
    outer: Any = Agent(TestModel(), name="outer")
    outer.instrument = settings

    @outer.tool_plain
    async def ask(question: str) -> str:
        """Ask the inner agent."""
        return str((await inner.run(question)).output)

    await outer.run("outer question")


async def _cancelled_pydantic_ai(provider: TracerProvider) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    slow: Any = Agent(TestModel(), name="slow")
    slow.instrument = InstrumentationSettings(tracer_provider=provider)
    started = asyncio.Event()

    @slow.tool_plain
    async def wait() -> str:
        """Wait a long time."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(slow.run("go"))
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_the_announce_example_in_the_docs_shows_its_run_in_the_file(
    duckdb_server: Callable[..., Server], tmp_path: Path
) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "serve.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    (example,) = [textwrap.dedent(b) for b in blocks if "AnnounceSink" in b]
    server = duckdb_server()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": server.url}
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert server.ingest.force_flush(30_000)
    (record,) = load_records(server.ingest.path)  # type: ignore[attr-defined]
    assert (record.snapshot.agent_name, record.snapshot.status.value) == ("planner", "completed")
    assert [e.event.type for e in record.events] == ["agent_start"]


def test_a_stop_leaves_received_runs_open_and_logs_what_waited_for_its_run_span(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ShutSink()
    setup = Recorded()
    setup.processor = RunSpanProcessor(RunStore(), sinks=[sink])
    setup.received = ReceivedRuns(setup.processor)
    tracer = setup.provider.get_tracer("framework")
    tool = {"gen_ai.operation.name": "execute_tool"}
    with tracer.start_as_current_span("step"), tracer.start_as_current_span("t", attributes=tool):
        pass
    handle = setup.rt.begin_run("sess-1")  # open in its process
    tool_span, _, pending = setup.spans()
    setup.deliver([tool_span, pending])  # the tool waits for its parent; the run is shown
    with caplog.at_level(logging.WARNING, "runtrace.serve"):
        setup.received.shutdown()
    assert sink.shut  # the sinks were shut down, but no run was ended or made up:
    (run,) = setup.processor.store.list()
    assert run.id == handle.id and run.ended_at_ms is None
    assert "1 received spans or log records were still waiting for their run's span" in caplog.text
    handle.end()
    setup.provider.shutdown()
