"""runtrace's errors: one base class, so callers can catch everything runtrace raises at once.

:class:`RunCancelled` stands apart on purpose: it is a signal to stop, not an error.
"""

from __future__ import annotations

__all__ = [
    "DatabaseError",
    "DatabaseLocked",
    "DatabaseNotFound",
    "ForwardError",
    "InvalidRun",
    "JsonlImportError",
    "NoActiveRun",
    "NotADuckDBFile",
    "QueryError",
    "RunNotFound",
    "SchemaVersionError",
]


class RuntraceError(Exception):
    """Base class of every error runtrace raises on purpose."""


class RunNotFound(RuntraceError, KeyError):
    """A run id that the store does not know.

    Also a ``KeyError``, since the store behaves like a mapping of run ids.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id

    def __str__(self) -> str:  # KeyError would repr() the argument
        return f"no run with id {self.run_id!r}"


class InvalidRun(RuntraceError, ValueError):
    """A run's session id, prompt, agent name or attributes hold a value the database or an
    OTLP backend could not keep; the message names the field. Nothing was started or stored.
    """


class NoActiveRun(RuntraceError):
    """An operation needs a current run, and none is active in this context."""


class RunCancelled(BaseException):
    """Raised by :meth:`CancellationToken.raise_if_cancelled` once the run was cancelled.

    A ``BaseException``, not a :class:`RuntraceError`, for the reason ``asyncio.CancelledError``
    is one: agent code that catches runtrace's errors (or any ``Exception``) around a step must
    not swallow a cancellation and carry on. Leaving ``start_run`` with it ends the run as
    cancelled, never failed.
    """

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"run {run_id} was cancelled: {reason}")
        self.run_id = run_id
        self.reason = reason


class ForwardError(RuntraceError):
    """The OTLP backend refused a request or could not be reached; or no exporter is installed.

    ``runs_sent`` runs were accepted before it failed (whole requests only), so a caller can
    tell how far a replay got.
    """

    def __init__(self, message: str, *, runs_sent: int = 0) -> None:
        super().__init__(message)
        self.runs_sent = runs_sent


class DatabaseError(RuntraceError):
    """A runtrace DuckDB file cannot be used: not a DuckDB file, too new, or locked."""


class NotADuckDBFile(DatabaseError):
    """The path exists but is not a DuckDB database."""


class SchemaVersionError(DatabaseError):
    """The file was written by a newer runtrace than this one."""


class DatabaseLocked(DatabaseError):
    """Another program kept the file locked past the timeout."""


class QueryError(RuntraceError):
    """A named query is unknown, or its parameters do not fit it."""


class DatabaseNotFound(DatabaseError):
    """A reader was pointed at a runtrace file that does not exist."""


class JsonlImportError(RuntraceError):
    """A JSON-lines import found a line it cannot use; nothing was written.

    ``line`` is the 1-based number of the offending line.
    """

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
