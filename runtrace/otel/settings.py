"""How runs look on spans: content capture, truncation, the cancelled status, child spans.

The store and the database always keep everything; these settings only shape the spans, which
leave the process (to a backend that may cap value sizes, and that should not see prompts unless
asked, as the GenAI conventions say).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "CONTENT_FIELDS",
    "GENERIC_ID_MAX_LENGTH",
    "GENERIC_ID_SUFFIXES",
    "SpanSettings",
    "content_capture_from_env",
    "default_settings",
    "truncate",
]

CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

CONTENT_FIELDS: frozenset[str] = frozenset(
    {
        "prompt",
        "text",
        "delta",
        "args",
        "output",
        "summary",
        "plan",
        "metadata",
        "question",
        "content",
        "messages",
        "input",
        "response",
        "query",
    }
)
"""Event fields that carry content: user or model text, tool inputs and outputs.

Events of a type runtrace has no class for (:class:`~runtrace.events.GenericEvent`) are treated
more strictly, since their fields are unknown: see
:func:`~runtrace.otel.span_events.event_attributes`."""

GENERIC_ID_SUFFIXES: tuple[str, ...] = ("id", "name", "status", "kind", "type")
"""Without capture, the only strings of a generic event that go on spans are short ones whose
field name ends with one of these (``call_id``, ``tool_name``, ``status``...)."""
GENERIC_ID_MAX_LENGTH: Final = 128

_TRUE = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event", "event_only"})


def content_capture_from_env() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` turns content capture on."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _TRUE


@dataclass(frozen=True)
class SpanSettings:
    """How runs look on spans. The store always keeps everything; these only shape the spans.

    ``capture_content``: put prompts, outputs and tool arguments on spans (off by default, as the
    GenAI conventions ask; the environment variable turns it on). ``max_value_length``: longer
    strings are cut on spans and end with a marker saying how long they were. ``cancelled_status``:
    ``"error"`` (default) or ``"unset"`` for backends that count every ERROR as a failure; a
    cancelled run carries ``error.type = "cancelled"`` either way. ``child_spans``: open
    ``execute_tool`` / ``invoke_agent`` child spans for tool calls and subagents.
    """

    capture_content: bool = field(default_factory=content_capture_from_env)
    max_value_length: int = 8192
    cancelled_status: Literal["error", "unset"] = "error"
    child_spans: bool = True
    content_fields: frozenset[str] = CONTENT_FIELDS

    def __post_init__(self) -> None:
        if self.max_value_length < 16:
            raise ValueError(f"max_value_length must be at least 16, not {self.max_value_length}")
        if self.cancelled_status not in ("error", "unset"):
            raise ValueError(
                f"cancelled_status must be 'error' or 'unset', not {self.cancelled_status!r}"
            )


_DEFAULT: list[SpanSettings] = []


def default_settings() -> SpanSettings:
    """The settings of a call that passed none: made once, on first use, so that the
    environment variable is read when runtrace is first used rather than at import."""
    if not _DEFAULT:
        _DEFAULT.append(SpanSettings())
    return _DEFAULT[0]


_MARKER: Final = "...[runtrace: truncated, {} chars]"


def truncate(value: str, max_length: int) -> str:
    """``value`` cut to at most ``max_length`` characters, marker included, when it is longer."""
    if len(value) <= max_length:
        return value
    marker = _MARKER.format(len(value))
    return value[: max(0, max_length - len(marker))] + marker
