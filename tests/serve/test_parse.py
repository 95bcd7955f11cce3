"""OTLP request bodies -> protobuf messages: OTLP/JSON with hex ids, unknown fields ignored;
bodies that do not decode are a RequestDecodeError naming what was wrong."""

from __future__ import annotations

import json

import pytest
from serve.helpers import NOW_NS, TRACE_ID, pb_span, traces_request

from runtrace.serve import Limits, RequestDecodeError, decode_spans, parse_logs, parse_traces

LIMITS = Limits()


def test_json_ids_must_be_hex_and_unknown_fields_are_ignored() -> None:
    document = {
        "resourceSpans": [
            {
                "futureField": 1,
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE_ID.hex(),
                                "spanId": "00000000000000ff",
                                "name": "s",
                                "startTimeUnixNano": str(NOW_NS - 2),
                                "endTimeUnixNano": NOW_NS - 1,
                                "links": [{"traceId": TRACE_ID.hex(), "spanId": "01" * 8}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    request = parse_traces(json.dumps(document).encode(), as_json=True)
    [span] = decode_spans(request, LIMITS).items
    assert span.context is not None and span.context.span_id == 0xFF
    assert span.links[0].context.span_id == 0x0101010101010101
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = 7
    with pytest.raises(RequestDecodeError, match="spanId must be a hex string"):
        parse_traces(json.dumps(document).encode(), as_json=True)


def test_log_record_ids_in_json_are_hex_too() -> None:
    record = {"timeUnixNano": str(NOW_NS), "traceId": TRACE_ID.hex(), "spanId": "0a" * 8}
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}
    request = parse_logs(json.dumps(document).encode(), as_json=True)
    [parsed] = request.resource_logs[0].scope_logs[0].log_records
    assert parsed.trace_id == TRACE_ID and parsed.span_id == b"\x0a" * 8


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\xff\xff\xff", "not a protobuf ExportTraceServiceRequest"),
        (traces_request(pb_span(1)).SerializeToString()[:-3], "not a protobuf"),
    ],
)
def test_protobuf_that_does_not_decode_is_named(body: bytes, message: str) -> None:
    with pytest.raises(RequestDecodeError, match=message):
        parse_traces(body, as_json=False)


def test_a_valid_protobuf_body_round_trips() -> None:
    request = traces_request(pb_span(1), pb_span(2))
    assert parse_traces(request.SerializeToString(), as_json=False) == request
