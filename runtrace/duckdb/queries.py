"""Named SQL queries over a runtrace DuckDB file: the questions analysts ask, one ``.sql`` each.

Each file in ``queries/`` starts with a comment that says what it answers and which parameters it
takes, in this form::

    -- How do runs end, per agent? ...
    -- Parameters:
    --   $since_ms BIGINT = NULL  only runs created at or after this epoch-ms time
    --   $session_id VARCHAR      a parameter without a default is required

Parameters are DuckDB ``$name`` parameters, bound by DuckDB, never formatted into the SQL. The
header is parsed, so callers (and the CLI's ``-p key=value`` strings) get defaults filled in,
values converted to the declared type, and a :class:`~runtrace.errors.QueryError` naming the
problem for an unknown query, an unknown or missing parameter, or a value of the wrong type.

:func:`run_query` returns a ``pyarrow.Table``: fully materialised, so it outlives the connection
it came from (a DuckDB relation would not), and one ``.to_pandas()`` away from a DataFrame.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import QueryError
from ..runs import MAX_MS

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAM_RE = re.compile(
    r"^--\s+\$(?P<name>[A-Za-z_]\w*)\s+(?P<type>[A-Za-z]+)"
    r"(?:\s*=\s*(?P<default>'[^']*'|\S+))?(?:\s+(?P<doc>.*))?$"
)
_PARAM_USE_RE = re.compile(r"\$([A-Za-z_]\w*)")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class QueryParam:
    """One ``$name`` parameter of a query, as its header declares it."""

    name: str
    type: str
    default: Any = None
    required: bool = True
    description: str = ""

    def convert(self, value: Any) -> Any:
        """``value`` as the declared type; strings (from a command line) are parsed.

        Integers are range-checked for their DuckDB type; a ``limit``, a ``*_minutes`` count
        and a ``*_ms`` epoch time must not be negative (and a time must fit the store's range,
        up to the year 2262), so DuckDB never fails on a value without naming it.
        """
        if value is None:
            return None
        kind = self.type.upper()
        try:
            if kind in _INT_RANGES:
                return self._integer(value, kind)
            if kind in {"DOUBLE", "FLOAT", "REAL", "DECIMAL"}:
                if isinstance(value, bool):
                    raise ValueError("a boolean is not a number")
                number = float(value)
                if not math.isfinite(number):
                    raise ValueError("not a finite number")
                return number
            if kind == "BOOLEAN":
                if isinstance(value, str):
                    if value.lower() in _TRUE:
                        return True
                    if value.lower() in _FALSE:
                        return False
                    raise ValueError(f"{value!r} is not true or false")
                return bool(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise ValueError(f"a {type(value).__name__} is not text")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"it holds a lone surrogate at index {exc.start}, which UTF-8 cannot encode"
                ) from None
            return value
        except (TypeError, ValueError, OverflowError) as exc:
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            raise QueryError(
                f"parameter ${self.name} must be {kind}, got {shown} ({exc})"
            ) from None

    def _integer(self, value: Any, kind: str) -> int:
        if isinstance(value, bool):
            raise ValueError("a boolean is not an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("not a whole number")
            number = int(value)  # OverflowError for inf, ValueError for NaN
        elif isinstance(value, (int, str)):
            number = int(value)
        else:
            raise ValueError(f"a {type(value).__name__} is not an integer")
        low, high = _INT_RANGES[kind]
        if self.name == "limit" or self.name.endswith(("_minutes", "_ms")):
            low = 0
        if self.name.endswith("_ms"):
            high = min(high, MAX_MS)
        if not low <= number < high:
            raise ValueError(f"out of range [{low}, {high})")
        return number


_INT_RANGES = {
    "SMALLINT": (-(2**15), 2**15),
    "INTEGER": (-(2**31), 2**31),
    "INT": (-(2**31), 2**31),
    "BIGINT": (-(2**63), 2**63),
    "HUGEINT": (-(2**127), 2**127),
}


@dataclass(frozen=True)
class NamedQuery:
    """A query file: its name, what it answers, its parameters and its SQL."""

    name: str
    description: str
    sql: str
    params: tuple[QueryParam, ...] = ()
    path: Path | None = None
    declared: bool = True
    """False for an ad-hoc file without a ``Parameters:`` header: its parameters pass unchecked."""
    _by_name: dict[str, QueryParam] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})

    @property
    def summary(self) -> str:
        """The first sentence of the description: what the query answers."""
        match = re.match(r"(.+?[?.])(\s|$)", self.description)
        return match.group(1) if match else self.description

    def bind(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameter values to hand DuckDB: checked, converted, defaults filled in."""
        given = dict(params or {})
        if not self.declared:
            return given
        unknown = sorted(set(given) - set(self._by_name))
        if unknown:
            accepted = ", ".join(f"${p.name}" for p in self.params) or "no parameters"
            raise QueryError(
                f"query {self.name!r} has no parameter {', '.join('$' + u for u in unknown)}"
                f" (it takes {accepted})"
            )
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name in given:
                bound[param.name] = param.convert(given[param.name])
            elif param.required:
                raise QueryError(
                    f"query {self.name!r} needs parameter ${param.name} ({param.type})"
                    + (f": {param.description}" if param.description else "")
                )
            else:
                bound[param.name] = param.default
        return bound


def _parse_default(param_type: str, text: str) -> Any:
    if text.upper() == "NULL":
        return None
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    return QueryParam("default", param_type).convert(text)


def parse_query(text: str, name: str, path: Path | None = None) -> NamedQuery:
    """Parse a query file's header comment into a :class:`NamedQuery`.

    The leading ``--`` lines up to ``-- Parameters:`` are the description; the ``-- $name TYPE
    [= default] text`` lines after it are the parameters (``Parameters: none`` declares none). A
    file with no ``Parameters:`` line is taken as undeclared: parameters pass through as given.
    """
    description: list[str] = []
    params: list[QueryParam] = []
    declared = False
    in_params = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            if stripped:
                break
            continue
        body = stripped[2:].strip()
        if body.lower().startswith("parameters:"):
            declared = in_params = True
            continue
        if in_params:
            match = _PARAM_RE.match(stripped)
            if match is None:
                if body:
                    raise QueryError(f"query {name!r}: cannot read parameter line {stripped!r}")
                continue
            default_text = match.group("default")
            params.append(
                QueryParam(
                    name=match.group("name"),
                    type=match.group("type").upper(),
                    default=(
                        None
                        if default_text is None
                        else _parse_default(match.group("type"), default_text)
                    ),
                    required=default_text is None,
                    description=(match.group("doc") or "").strip(),
                )
            )
        elif body:
            description.append(body)
    return NamedQuery(
        name=name,
        description=" ".join(description),
        sql=text,
        params=tuple(params),
        path=path,
        declared=declared,
    )


def _queries_dir() -> Path:
    """Where the bundled ``.sql`` files are: ``runtrace/queries`` in the installed package.

    In a source checkout that is a symlink to the top-level ``queries/`` directory, so the files
    are edited in one place and setuptools copies them into the wheel as package data.
    """
    return Path(str(resources.files("runtrace") / "queries"))


def list_queries() -> list[NamedQuery]:
    """Every bundled query, sorted by name."""
    directory = _queries_dir()
    if not directory.is_dir():
        raise QueryError(f"the query directory {directory} is missing from this installation")
    return [
        parse_query(path.read_text(encoding="utf-8"), path.stem, path)
        for path in sorted(directory.glob("*.sql"))
    ]


def get_query(name_or_file: str | os.PathLike[str]) -> NamedQuery:
    """A bundled query by name (``tool_stats``), or any ``.sql`` file by path."""
    text = os.fspath(name_or_file)
    if text.endswith(".sql") or os.sep in text or "/" in text:
        path = Path(text)
        try:
            sql = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise QueryError(f"cannot read query file {text}: {exc.strerror or exc}") from None
        return parse_query(sql, path.stem, path)
    if _NAME_RE.match(text):
        path = _queries_dir() / f"{text}.sql"
        if path.is_file():
            return parse_query(path.read_text(encoding="utf-8"), text, path)
    known = ", ".join(q.name for q in list_queries())
    raise QueryError(f"no query named {text!r}; known queries: {known}")


def _open(path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    from .read import connect  # the read-only view, live segments included

    return connect(path)


def run_query(
    con_or_path: duckdb.DuckDBPyConnection | str | os.PathLike[str],
    name_or_file: str | os.PathLike[str] | NamedQuery,
    params: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Run a named query (or a ``.sql`` file) and return its rows as a ``pyarrow.Table``.

    ``con_or_path`` is an open DuckDB connection (with no unfinished result pending on it), or a
    path to a runtrace file that is opened read-only (through
    :func:`runtrace.connect`) and closed again. Raises :class:`QueryError` for an
    unknown query, bad parameters, or SQL that DuckDB rejects; a missing or unreadable file raises
    the :class:`~runtrace.errors.DatabaseError` subclasses.
    """
    query = name_or_file if isinstance(name_or_file, NamedQuery) else get_query(name_or_file)
    bound = query.bind(params)
    if isinstance(con_or_path, (str, os.PathLike)):
        con = _open(con_or_path)
        try:
            return _execute(con, query, bound)
        finally:
            con.close()
    return _execute(con_or_path, query, bound)


def _execute(con: duckdb.DuckDBPyConnection, query: NamedQuery, bound: dict[str, Any]) -> pa.Table:
    used = set(_PARAM_USE_RE.findall(query.sql))
    # DuckDB rejects values for parameters the SQL does not use; an undeclared ad-hoc file
    # would otherwise fail on a typo with a less helpful message.
    extra = sorted(set(bound) - used)
    if extra:
        raise QueryError(
            f"query {query.name!r} does not use parameter {', '.join('$' + e for e in extra)}"
        )
    for name, target in _CAST_RE.findall(query.sql):
        # A parameter the SQL casts (``CAST($bucket AS INTERVAL)``) is cast alone first, so a
        # bad value is refused naming it; ``target`` is a bare type name from the query file.
        if bound.get(name) is not None:
            try:
                con.execute(f"SELECT CAST($v AS {target})", {"v": bound[name]}).fetchall()
            except duckdb.Error as exc:
                raise QueryError(
                    f"parameter ${name} must be {target.upper()}: {_one_line(exc)}"
                ) from None
    try:
        relation = con.sql(query.sql, params=bound or None)
        if relation is None:
            raise QueryError(f"query {query.name!r} returns no rows (is it a SELECT?)")
        return relation.to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"query {query.name!r} failed: {_one_line(exc)}") from exc


_CAST_RE = re.compile(r"CAST\(\s*\$([A-Za-z_]\w*)\s+AS\s+([A-Za-z]+)\s*\)", re.IGNORECASE)


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without the SQL context it appends (``LINE 1: ...``), in one line."""
    text = str(exc).strip().split("\nLINE ")[0]
    return " ".join(text.split()) or type(exc).__name__
