"""The public API: a small top level, one import path per name, imports pointing to the core."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import runtrace

PACKAGE = Path(runtrace.__file__).parent

PUBLIC_MODULES = (
    "runtrace",
    "runtrace.errors",
    "runtrace.events",
    "runtrace.runs",
    "runtrace.sink",
    "runtrace.otel",
    "runtrace.duckdb",
    "runtrace.serve",
    "runtrace.forward",
)
"""Where users import from; every public name is in exactly one of their ``__all__``."""

CORE = {
    "jsonsafe",
    "errors",
    "events",
    "eventlog",
    "runs",
    "store",
    "sink",
    "hooks",
    "faults",
    "batch",
    "version",
}
EDGES = {"otel", "duckdb", "serve"}


@pytest.mark.parametrize("name", runtrace.__all__)
def test_every_top_level_name_resolves(name: str) -> None:
    assert getattr(runtrace, name) is not None


def test_the_top_level_stays_small() -> None:
    assert len(runtrace.__all__) <= 20


def test_each_public_name_has_exactly_one_import_path() -> None:
    owners: dict[str, list[str]] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module_name}.{name}"
            owners.setdefault(name, []).append(module_name)
    repeated = {name: paths for name, paths in owners.items() if len(paths) > 1}
    assert repeated == {}


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        runtrace.no_such_name  # noqa: B018


def test_importing_runtrace_does_not_import_duckdb_or_pyarrow() -> None:
    code = "import sys, runtrace; print('duckdb' in sys.modules, 'pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_every_error_shares_one_base_and_cancellation_is_not_an_error() -> None:
    import runtrace.errors as errors

    classes = [getattr(errors, name) for name in errors.__all__] + [runtrace.RuntraceError]
    assert len(classes) >= 8
    assert all(issubclass(c, runtrace.RuntraceError) for c in classes)
    assert not issubclass(runtrace.RunCancelled, Exception)
    assert issubclass(runtrace.RunCancelled, BaseException)


def _room(module: str) -> str:
    """The top-level room of a runtrace module name ("otel" for runtrace.otel.api)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports() -> dict[str, set[str]]:
    """Room of each file under runtrace/ -> the runtrace rooms it imports."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        if module.endswith(".__init__"):
            module = module.removesuffix(".__init__")
            package = module
        else:
            package = module.rsplit(".", 1)[0]
        targets = found.setdefault(str(relative), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    name = ".".join([*base, node.module] if node.module else base)
                else:
                    name = node.module or ""
                names = [name] + [f"{name}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            targets.update(_room(n) for n in names if n.startswith("runtrace.") and _room(n) != "")
    return found


def test_the_core_imports_no_edge_and_the_edges_not_each_other() -> None:
    wrong: list[str] = []
    rooms = {"otel": EDGES - {"otel"}, "duckdb": EDGES - {"duckdb"}}
    for path, targets in _imports().items():
        room = Path(path).parts[1].removesuffix(".py") if len(Path(path).parts) > 1 else ""
        if room in CORE:
            forbidden = targets - CORE
        elif room in rooms:
            forbidden = targets & (rooms[room] | {"cli", "demo", "forward"})
        else:
            continue
        wrong.extend(f"{path} imports runtrace.{target}" for target in sorted(forbidden))
    assert wrong == []
