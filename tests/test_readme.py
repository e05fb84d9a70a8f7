"""The README's Python example runs as written (from the repository root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_python_example_runs(capsys, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(import streamsql.*?)```", text, re.S)
    assert block is not None
    monkeypatch.chdir(ROOT)
    exec(compile(block.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "3000 13 0" in out and "== Physical Plan ==" in out


def test_readme_names_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "pip install . && streamsql run queries/tumble.sql" in text
    assert "pip install -e '.[dev]' && pytest" in text
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
