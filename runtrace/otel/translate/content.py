"""Text out of content values: GenAI message lists, strands' content blocks, JSON or plain text.

Frameworks put prompts and answers on spans in several shapes; these helpers find the text in
any of them, and leave a value they cannot read as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import Event

__all__ = ["content_text", "event_text", "json_value", "messages_text"]


def json_value(value: str | None) -> Any:
    """``value`` parsed as JSON when it is JSON text, else as given."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def content_text(value: Any) -> str | None:
    """The text in a content value: a plain string, or the text parts of JSON content (GenAI
    ``parts``, strands' ``[{"text": ...}]`` blocks, OpenAI-style ``content``)."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = json_value(value)
        if isinstance(parsed, (list, dict)):
            found = _texts(parsed)
            return "".join(found) if found else value
        return value
    found = _texts(value)
    return "".join(found) if found else None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        for key in ("text", "content", "parts"):
            if key in value:
                return _texts(value[key])
    return []


def messages_text(value: Any, role: str, *, last: bool, start: int = 0) -> str | None:
    """The text of the first (or last) message with ``role`` in a GenAI messages list."""
    messages = json_value(value) if isinstance(value, str) else value
    if not isinstance(messages, list):
        return None
    picked = [
        m for m in messages[start:] if isinstance(m, dict) and m.get("role") == role and _texts(m)
    ]
    if not picked:
        return None
    return "".join(_texts(picked[-1] if last else picked[0]))


def event_text(events: Sequence[Event], event_name: str, field: str) -> str | None:
    """The text of ``field`` of the first of a span's ``events`` named ``event_name``."""
    for event in events:
        if event.name == event_name:
            return content_text((event.attributes or {}).get(field))
    return None
