"""The filesystem source across files: directory order, batches per file, positions, splits."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsql.connectors.fs_source import list_files
from streamsql.errors import ConfigError
from tests.connectors.util import fs_table, read_batches, read_rows, source

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def make_files(root: Path, fmt: str, sizes: dict[str, int]) -> list[int]:
    """Write files of consecutive ids (in the given order); returns all ids."""
    next_id = 0
    for rel, n in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = list(range(next_id, next_id + n))
        next_id += n
        if fmt == "csv":
            path.write_text("".join(f"{i},name {i}\n" for i in ids))
        elif fmt == "json":
            path.write_text("".join(json.dumps({"id": i, "name": f"name {i}"}) + "\n" for i in ids))
        else:
            pq.write_table(
                pa.table({"id": ids, "name": [f"name {i}" for i in ids]}), path, row_group_size=17
            )
    return list(range(next_id))


def test_directory_listing_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for rel in [
        "b.csv",
        "a/2.csv",
        "a/1.csv",
        ".hidden.csv",
        "_SUCCESS",
        "a/.x/y.csv",
        "_tmp/z.csv",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = [Path(p).relative_to(tmp_path).as_posix() for p in list_files(str(tmp_path))]
    assert found == ["a/1.csv", "a/2.csv", "b.csv"]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_files_in_order_and_no_batch_spans_two_files(tmp_path: Path, fmt: str) -> None:
    ids = make_files(tmp_path, fmt, {"b": 5, "a/x": 3, "c": 0, "d": 4})
    t = fs_table(SCHEMA, tmp_path, fmt)
    batches = read_batches(source(t, batch_size=65536))
    # files are read as a/x, b, c (empty), d: one batch each for the non-empty ones
    assert [b.column("id").to_pylist() for b in batches] == [
        [5, 6, 7],
        [0, 1, 2, 3, 4],
        [8, 9, 10, 11],
    ]
    assert sorted(i for b in batches for i in b.column("id").to_pylist()) == ids


def test_single_file_path_and_empty_directory(tmp_path: Path) -> None:
    make_files(tmp_path / "d", "csv", {"one.csv": 2})
    assert len(read_rows(source(fs_table(SCHEMA, tmp_path / "d" / "one.csv", "csv")))) == 2
    (tmp_path / "empty").mkdir()
    assert read_batches(source(fs_table(SCHEMA, tmp_path / "empty", "csv"))) == []


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        source(fs_table(SCHEMA, tmp_path / "nope", "csv"))
    assert info.value.option == "path"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_position_and_seek_resume_exactly(tmp_path: Path, fmt: str, batch_size: int) -> None:
    ids = make_files(tmp_path, fmt, {"f1": 40, "f2": 1, "f3": 0, "f4": 33})
    t = fs_table(SCHEMA, tmp_path, fmt)
    for stop in (0, 1, 3, 5, 9):
        first = source(t, batch_size=batch_size)
        head = read_batches(first, limit=stop)
        position = json.loads(json.dumps(first.position()))  # JSON-serialisable
        first.close()
        second = source(t, batch_size=batch_size)
        second.seek(position)
        rest = read_batches(second)
        got = [i for b in head + rest for i in b.column("id").to_pylist()]
        assert got == ids, (stop, position)


def test_position_names_file_and_place(tmp_path: Path) -> None:
    make_files(tmp_path, "csv", {"a.csv": 3, "b.csv": 3})
    src = source(fs_table(SCHEMA, tmp_path, "csv"), batch_size=2)
    src.open()
    assert src.position() == {"file": 0, "path": "a.csv"}
    src.read()
    assert src.position() == {
        "file": 0,
        "path": "a.csv",
        "offset": 18,
        "line": 3,
    }  # "0,name 0\n1,name 1\n"
    while src.read() is not None:
        pass
    assert src.position() == {"file": 2, "path": None}
    again = source(fs_table(SCHEMA, tmp_path, "csv"))
    again.seek(src.position())
    assert again.read() is None


def test_seek_finds_the_file_by_path_when_files_were_added(tmp_path: Path) -> None:
    make_files(tmp_path, "csv", {"b.csv": 3, "c.csv": 2})
    src = source(fs_table(SCHEMA, tmp_path, "csv"), batch_size=4)
    src.read()  # all of b.csv: the position points at the start of c.csv
    position = src.position()
    (tmp_path / "a.csv").write_text("100,new\n")  # sorts first: indexes shift
    resumed = source(fs_table(SCHEMA, tmp_path, "csv"))
    resumed.seek(position)
    assert [r["id"] for r in read_rows(resumed)] == [3, 4]


def test_seek_to_a_deleted_file_goes_on_with_the_next(tmp_path: Path) -> None:
    make_files(tmp_path, "csv", {"a.csv": 2, "b.csv": 2, "c.csv": 2})
    src = source(fs_table(SCHEMA, tmp_path, "csv"), batch_size=1)
    read_batches(src, limit=3)  # inside b.csv
    position = src.position()
    assert position["path"] == "b.csv"
    (tmp_path / "b.csv").unlink()
    resumed = source(fs_table(SCHEMA, tmp_path, "csv"))
    resumed.seek(position)
    assert [r["id"] for r in read_rows(resumed)] == [4, 5]


@pytest.mark.parametrize("parallelism", [2, 3])
def test_instances_split_the_files(tmp_path: Path, parallelism: int) -> None:
    ids = make_files(tmp_path, "parquet", {f"p{i}": 5 + i for i in range(7)})
    t = fs_table(SCHEMA, tmp_path, "parquet")
    parts = [
        [r["id"] for r in read_rows(source(t, instance=i, parallelism=parallelism))]
        for i in range(parallelism)
    ]
    assert sorted(i for p in parts for i in p) == ids
    assert sum(len(p) for p in parts) == len(ids)
    assert all(parts)


def test_counters(tmp_path: Path) -> None:
    make_files(tmp_path, "json", {"a": 4, "b": 6})
    src = source(fs_table(SCHEMA, tmp_path, "json"), batch_size=3)
    read_batches(src)
    assert src.counters == {"rows_read": 10, "parse_errors_skipped": 0}
