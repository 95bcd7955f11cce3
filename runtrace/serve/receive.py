"""The transport-independent part of the receiver: decode a parsed request, hand what passed to
the ingest, count everything, and log every refusal with its reason (never its content).

HTTP and gRPC both go through ``Receiver``, so they decode, limit and count the same way.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .decode import Decoded, decode_logs, decode_spans
from .ingest import Ingest, IngestRejected, QueueFull, ReportsFlushLag, ReportsOpenRuns
from .settings import Limits

__all__ = ["Outcome", "Receiver"]

log = logging.getLogger("runtrace.serve")


@dataclass(frozen=True)
class Outcome:
    """What became of one request: items accepted, items rejected, and the ``partial_success``
    message (empty when nothing was rejected)."""

    accepted: int
    rejected: int
    message: str


class Receiver:
    """Decodes requests into ``ingest`` and keeps the counters ``/metrics`` shows.

    ``QueueFull`` and ``IngestClosed`` from the ingest propagate: the transport turns them into
    its retryable status. ``IngestRejected`` becomes a ``partial_success`` rejecting the batch.
    """

    def __init__(self, ingest: Ingest, limits: Limits) -> None:
        self.ingest = ingest
        self.limits = limits
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()

    def traces(self, request: ExportTraceServiceRequest, peer: str) -> Outcome:
        self._check_room()
        decoded = decode_spans(request, self.limits)
        return self._ingest(decoded, "spans", peer)

    def logs(self, request: ExportLogsServiceRequest, peer: str) -> Outcome:
        self._check_room()
        decoded = decode_logs(request, self.limits)
        return self._ingest(decoded, "log records", peer)

    def _check_room(self) -> None:
        """Refuse before decoding when the queue is already full: under overload, decoding a
        request only to refuse it would spend the CPU the ingest needs to catch up."""
        depth, capacity = self.ingest.queue_depth(), self.ingest.capacity()
        if depth >= capacity:
            raise QueueFull(f"queue holds {depth} of {capacity}")

    def _ingest(self, decoded: Decoded[Any], noun: str, peer: str) -> Outcome:
        key = "spans" if noun == "spans" else "log_records"
        rejected = decoded.rejected
        message = decoded.message(noun)
        accepted = len(decoded.items)
        if decoded.items:
            try:
                if key == "spans":
                    self.ingest.spans(decoded.items)
                else:
                    self.ingest.logs(decoded.items)
            except IngestRejected as refusal:
                rejected += accepted
                message = "; ".join(
                    m for m in (message, f"rejected {accepted} {noun}: {refusal}") if m
                )
                accepted = 0
        with self._lock:
            self._counts[f"{key}_received"] += accepted
            self._counts[f"{key}_rejected"] += rejected
        if rejected:
            log.warning("runtrace serve: from %s, %s", peer, message)
        return Outcome(accepted, rejected, message)

    def refused(self, transport: str, status: str, reason: str, peer: str) -> None:
        """Count and log a request refused whole (``status``: ``413``, ``UNAUTHENTICATED``...)."""
        with self._lock:
            self._refused[f"{transport} {status}"] += 1
        log.warning(
            "runtrace serve: refused a %s request from %s: %s %s", transport, peer, status, reason
        )

    def request(self, transport: str) -> None:
        with self._lock:
            self._counts[f"{transport}_requests"] += 1

    def metrics(self) -> dict[str, Any]:
        """The counters, plus the ingest's queue depth, capacity, open runs and flush lag."""
        with self._lock:
            counts = dict(self._counts)
            refused = dict(self._refused)
        ingest = self.ingest
        return {
            "spans_received": counts.get("spans_received", 0),
            "spans_rejected": counts.get("spans_rejected", 0),
            "log_records_received": counts.get("log_records_received", 0),
            "log_records_rejected": counts.get("log_records_rejected", 0),
            "http_requests": counts.get("http_requests", 0),
            "grpc_requests": counts.get("grpc_requests", 0),
            "requests_refused": refused,
            "queue_depth": ingest.queue_depth(),
            "queue_capacity": ingest.capacity(),
            "runs_open": ingest.runs_open() if isinstance(ingest, ReportsOpenRuns) else None,
            "flush_lag_ms": (
                round(ingest.flush_lag_ms(), 1) if isinstance(ingest, ReportsFlushLag) else None
            ),
        }

    def log_line(self) -> str:
        """The periodic one-line summary of ``metrics()``."""
        m = self.metrics()
        refused = sum(m["requests_refused"].values())
        return (
            f"runtrace serve: spans {m['spans_received']} received, {m['spans_rejected']} "
            f"rejected; log records {m['log_records_received']} received, "
            f"{m['log_records_rejected']} rejected; {refused} requests refused; queue "
            f"{m['queue_depth']}/{m['queue_capacity']}; runs open {m['runs_open']}; "
            f"flush lag {m['flush_lag_ms']} ms"
        )
