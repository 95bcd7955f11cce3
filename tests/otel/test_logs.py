"""Log records tied to a run's span become events of that run (RunLogProcessor)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from otel.helpers import ListSink, Plain, Setup

from runtrace.otel.logs import RunLogProcessor

DETAILS = "gen_ai.client.inference.operation.details"


class Logs:
    def __init__(self, processor: object) -> None:
        self.provider = LoggerProvider()
        self.runs = RunLogProcessor(processor)  # type: ignore[arg-type]
        self.provider.add_log_record_processor(self.runs)
        self.logger = self.provider.get_logger("agent")


@pytest.fixture
def setup() -> Iterator[Setup]:
    env = Setup(sinks=[ListSink()])
    yield env
    env.provider.shutdown()


def test_an_event_log_inside_a_runtrace_run_is_an_event_of_it(setup: Setup) -> None:
    logs = Logs(setup.rt.processor)
    with setup.rt.start_run("s", agent_name="coder") as run:
        run.record({"type": "agent_start", "prompt": "hi"})
        logs.logger.emit(
            LogRecord(event_name="queue_alert", attributes={"queue": "jobs", "depth": 3})
        )
        run.record({"type": "agent_end", "text": "done"})
    events = [(r.event.type, r.sequence) for r in setup.rt.store.events(run.id)]
    assert [t for t, _ in events] == ["agent_start", "queue_alert", "agent_end"]
    alert = setup.rt.store.events(run.id)[1].event.model_dump()
    assert (alert["queue"], alert["depth"]) == ("jobs", 3)
    sink = setup.rt.processor.sinks[0]
    assert isinstance(sink, ListSink)
    assert [c for c, _ in sink.calls].count("event") == 3  # the sink got the log's event too
    assert logs.runs.attached == 1


def test_a_genai_details_log_lands_on_the_framework_run_its_span_belongs_to(
    plain: Plain,
) -> None:
    logs = Logs(plain.processor)
    with plain.agent_span() as span:
        logs.logger.emit(
            LogRecord(
                event_name=DETAILS,
                attributes={"gen_ai.operation.name": "chat"},
                body={"gen_ai.input.messages": '[{"role": "user"}]'},
            )
        )
        context = span.get_span_context()
    run = plain.only_run()
    types = [r.event.type for r in plain.store.events(run.id)]
    assert types == ["agent_start", DETAILS]  # the framework run starts as runs made from spans do
    record = plain.store.events(run.id)[-1]
    fields = record.event.model_dump()
    assert fields["gen_ai.input.messages"] == '[{"role": "user"}]'
    assert run.trace_id == format(context.trace_id, "032x")


def test_a_log_record_naming_its_span_needs_no_current_span(setup: Setup) -> None:
    logs = Logs(setup.rt.processor)
    run = setup.rt.begin_run("s", agent_name="coder")
    context = run.span.get_span_context()
    logs.logger.emit(
        LogRecord(
            event_name="turn_start",
            attributes={"turn": 1},
            trace_id=context.trace_id,
            span_id=context.span_id,
            trace_flags=context.trace_flags,
        )
    )
    run.end()
    (record,) = setup.rt.store.events(run.id)
    assert (record.event.type, record.event.model_dump()["turn"]) == ("turn_start", 1)


def test_application_logs_without_an_event_name_are_counted_not_recorded(setup: Setup) -> None:
    logs = Logs(setup.rt.processor)
    with setup.rt.start_run("s") as run:
        logs.logger.emit(LogRecord(body="just a log line"))
    with trace.use_span(trace.INVALID_SPAN):
        logs.logger.emit(LogRecord(event_name="orphan"))  # no span: nothing to attach to
    assert setup.rt.store.events(run.id) == []
    assert (logs.runs.attached, logs.runs.ignored) == (0, 2)
