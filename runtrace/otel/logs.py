"""Log records as run events: the SDK's logs pipeline feeding the same translator as spans.

OpenTelemetry is moving events from span events to log records (OTEP 4430), and GenAI
instrumentations already emit some as logs (``gen_ai.client.inference.operation.details``). A
log record with an event name that is tied to a span (trace and span id, or the current span when
it was emitted) becomes an event of that span's run, named by the event name; its attributes and
a mapping body are the event's fields. Records without an event name are application logs, not
agent events: they are counted (``ignored``) and left to the other log processors.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from .processor import RunSpanProcessor

__all__ = ["RunLogProcessor"]

EVENT_NAME = "event.name"
"""Where older SDKs and the events API put a log record's event name."""


class RunLogProcessor(LogRecordProcessor):
    """Add to a ``LoggerProvider`` beside your exporters:
    ``logger_provider.add_log_record_processor(RunLogProcessor(rt.processor))``."""

    def __init__(self, processor: RunSpanProcessor) -> None:
        self._processor = processor
        self.attached = 0
        """Log records handed to the translator as events."""
        self.ignored = 0
        """Log records with no event name or no span: not agent events."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        attributes = dict(record.attributes or {})
        name = record.event_name or attributes.pop(EVENT_NAME, None)
        trace_id, span_id = record.trace_id, record.span_id
        if not trace_id or not span_id:
            context = trace.get_current_span(record.context).get_span_context()
            trace_id, span_id = context.trace_id, context.span_id
        if not name or not trace_id or not span_id:
            self.ignored += 1
            return
        at_ns = record.timestamp or record.observed_timestamp or 0
        with self._processor.faults.guard("a log record"):
            self._processor.foreign.on_log(
                trace_id, span_id, str(name), attributes, at_ns, body=record.body
            )
            self.attached += 1

    def shutdown(self) -> None:
        """Nothing of its own to release: the span processor owns the runs."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._processor.force_flush(timeout_millis)
