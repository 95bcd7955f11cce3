"""README's quick starts run as written, so the first thing a user copies works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
QUICK_STARTS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)[:3]


def test_readme_starts_with_the_install_and_test_commands() -> None:
    first_block = README.read_text(encoding="utf-8").split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert lines == [
        "pip install . && runtrace demo",
        "pip install -e '.[dev]' && python -m pytest",
    ]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install --quiet -e '.[dev]'" in ci and "python -m pytest" in ci


@pytest.mark.parametrize(
    ("code", "expected"),
    list(zip(QUICK_STARTS, ["completed", "completed 4", "completed helper 1 True"], strict=True)),
    ids=["plain-opentelemetry", "runtrace-with-duckdb", "pydantic-ai"],
)
def test_quick_start_runs_and_prints_what_it_says(code: str, expected: str, tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
