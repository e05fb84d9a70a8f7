"""Every tests/slt/*.slt file, at parallelism 1, 2 and 4, against one expected output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.slt.runner import UPDATE, run_file

FILES = sorted((Path(__file__).parent / "slt").glob("*.slt"))


def test_there_are_slt_files():
    assert len(FILES) >= 3


@pytest.mark.parametrize("parallelism", [1, 2, 4])
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_slt(path: Path, parallelism: int):
    text, failures = run_file(path, parallelism)
    if UPDATE and parallelism == 1:
        path.write_text(text)
        return
    assert not failures, "\n".join(failures)
