"""The notebooks run, top to bottom, against the seeded demo file, so they can never rot."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from runtrace.demo import DemoResult

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_is_a_run_outcomes_notebook() -> None:
    assert "run_outcomes.ipynb" in {path.name for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_the_demo_file(
    path: Path, demo: DemoResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTRACE_DB", demo.path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    plots = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(plots) >= 5  # outcome mix, per agent, over time, durations, tools, tokens...
    if path.name == "run_outcomes.ipynb":
        last = notebook.cells[-1].outputs[-1]["text"]
        checks = json.loads(last.strip().splitlines()[-1])
        expected = demo.workload.expected
        assert checks == {
            "runs": expected.runs,
            "events": expected.events,
            "outcomes": expected.status_counts,
            "tool_calls": sum(expected.tool_calls.values()),
        }
