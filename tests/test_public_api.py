"""The public API: every exported name resolves, and tracing alone does not load DuckDB."""

from __future__ import annotations

import subprocess
import sys

import pytest

import runtrace


@pytest.mark.parametrize("name", runtrace.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(runtrace, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        runtrace.no_such_name  # noqa: B018


def test_importing_runtrace_does_not_import_duckdb_or_pyarrow() -> None:
    code = "import sys, runtrace; print('duckdb' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_all_errors_share_one_base() -> None:
    errors = [
        obj
        for name in runtrace.__all__
        if isinstance(obj := getattr(runtrace, name), type) and issubclass(obj, Exception)
    ]
    assert len(errors) >= 8
    assert all(issubclass(error, runtrace.RuntraceError) for error in errors)
