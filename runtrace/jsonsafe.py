"""What every recorded value must be: something JSON text in UTF-8 can carry.

Events and run fields reach DuckDB and OTLP as JSON in UTF-8, so what they cannot carry
(inf/NaN, lone surrogates, integers too long for decimal text, arbitrary objects, non-string
keys, nesting past what the serialiser takes) is refused at record time, with the field
named, instead of being accepted by the store and lost later by a background writer.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

__all__ = ["MAX_DEPTH", "MAX_INT_BITS", "check_int", "check_json", "check_text"]

MAX_INT_BITS = 14_000
"""Integers up to this size (about 4,200 digits) are kept: Python refuses to turn longer ones
into decimal text (``sys.get_int_max_str_digits``, 4,300 by default), which JSON needs."""


def check_text(value: str, where: str) -> None:
    """Raise ValueError if ``value`` holds a lone surrogate, which UTF-8 cannot encode."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{where} holds a lone surrogate ({value[error.start]!r} at index {error.start}), "
            "which UTF-8 cannot encode, so the database and OTLP could not keep it; pass valid "
            "Unicode (decode bytes with errors='replace')"
        ) from None


def check_int(value: int, where: str) -> None:
    if value.bit_length() > MAX_INT_BITS:
        raise ValueError(
            f"{where} is an integer of {value.bit_length()} bits; runtrace keeps integers of up "
            f"to {MAX_INT_BITS} bits (about 4,200 digits), which JSON text can carry"
        )


MAX_DEPTH = 100
"""How deep lists and objects may nest in an event. pydantic-core refuses to serialise past
255 levels (so the DuckDB sink could not write such an event) and Python recursion stops near
1,000; a limit well inside both is refused at record time, naming the field, instead."""


def check_json(value: Any, path: str, depth: int = 0) -> None:
    """Raise ValueError naming the first value under ``path`` that JSON, UTF-8 or DuckDB
    cannot carry: a non-finite float, a lone surrogate, an integer too long for decimal text,
    a non-string key, nesting deeper than ``MAX_DEPTH``, an object of another type."""
    where = path or "value"
    if depth > MAX_DEPTH:
        raise ValueError(
            f"{where} is nested more than {MAX_DEPTH} lists or objects deep; runtrace keeps "
            f"up to {MAX_DEPTH} levels (flatten it, or store it as a JSON string)"
        )
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, int):
        check_int(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}, which JSON cannot represent")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has the key {key!r}; JSON object keys are strings")
            check_text(key, f"{where} (a key)")
            check_json(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", depth + 1)
    elif isinstance(value, BaseModel):  # nested models refused inf/NaN themselves; not the rest
        for name, item in value.__dict__.items():
            check_json(item, f"{where}.{name}", depth + 1)
        if value.__pydantic_extra__:
            check_json(value.__pydantic_extra__, where, depth)
    else:
        raise ValueError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which JSON "
            "cannot represent; convert it to str, int, float, bool, None, list or dict"
        )
