"""The filesystem source with 'source.monitor-interval': new files, hidden files, positions."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsql.connectors import fs_monitor, get_connector
from streamsql.connectors.base import Source
from streamsql.errors import ConfigError
from tests.connectors.test_filesystem_source import SCHEMA
from tests.connectors.util import fs_table, read_batches, source

INTERVAL = {"source.monitor-interval": "20 ms"}


def write_csv(path: Path, ids: range | list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i},name {i}\n" for i in ids))


def publish(root: Path, rel: str, ids: range | list[int]) -> None:
    """Write a file under a hidden name, then rename it into place, as writers should."""
    hidden = root / f".{rel}.inprogress"
    write_csv(hidden, ids)
    os.replace(hidden, root / rel)


def poll(src: Source, rows: int, timeout: float = 2.0) -> list[int]:
    """Read like the driver (a short sleep after an empty batch) until ``rows`` ids came."""
    ids: list[int] = []
    deadline = time.monotonic() + timeout
    while len(ids) < rows and time.monotonic() < deadline:
        batch = src.read()
        assert batch is not None, "a monitored source never ends"
        if batch.num_rows == 0:
            time.sleep(0.005)
        ids.extend(batch.column("id").to_pylist())
    return ids


def drain(src: Source, seconds: float = 0.08) -> list[int]:
    """Everything read within ``seconds`` (several intervals)."""
    ids: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = src.read()
        assert batch is not None
        ids.extend(batch.column("id").to_pylist())
        time.sleep(0.005)
    return ids


def test_unbounded_when_set_bounded_otherwise(tmp_path: Path) -> None:
    fs = get_connector("filesystem")
    watched = fs_table(SCHEMA, tmp_path, "csv", **INTERVAL)
    assert not fs.is_bounded(watched)
    assert fs.is_bounded(fs_table(SCHEMA, tmp_path, "csv"))
    assert fs.validate(watched, "source")["source.monitor-interval"] == 20
    assert fs.describe(watched) == (
        f"filesystem(path={tmp_path}, format=csv, source.monitor-interval=20 ms)"
    )
    assert source(watched).bounded is False


@pytest.mark.parametrize(
    ("value", "message"),
    [("0 s", r"'0 s' is less than the minimum \(1 ms\)"), ("soon", "is not a duration")],
)
def test_interval_must_be_a_positive_duration(tmp_path: Path, value: str, message: str) -> None:
    t = fs_table(SCHEMA, tmp_path, "csv", **{"source.monitor-interval": value})
    with pytest.raises(ConfigError, match=message) as info:
        get_connector("filesystem").validate(t, "source")
    assert info.value.option == "source.monitor-interval"


def test_reads_files_at_start_then_new_ones(tmp_path: Path) -> None:
    write_csv(tmp_path / "b.csv", range(0, 3))
    write_csv(tmp_path / "a" / "1.csv", range(3, 5))
    src = source(fs_table(SCHEMA, tmp_path, "csv", **INTERVAL))
    src.open()
    first, second = src.read(), src.read()
    assert first is not None and second is not None
    assert [first.column("id").to_pylist(), second.column("id").to_pylist()] == [[3, 4], [0, 1, 2]]
    empty = src.read()
    assert empty is not None and empty.num_rows == 0 and empty.schema == SCHEMA
    # new files sort before and after the ones already read; each listing is in path order
    write_csv(tmp_path / "c.csv", range(10, 12))
    write_csv(tmp_path / "0.csv", range(12, 13))
    assert poll(src, 3) == [12, 10, 11]
    assert drain(src) == []
    assert src.counters["rows_read"] == 8


def test_hidden_files_wait_until_renamed_and_files_are_read_once(tmp_path: Path) -> None:
    src = source(fs_table(SCHEMA, tmp_path, "csv", **INTERVAL))
    src.open()
    write_csv(tmp_path / ".part-0.inprogress", range(0, 4))
    write_csv(tmp_path / "_tmp" / "part-1.csv", range(4, 6))
    assert drain(src) == []
    os.replace(tmp_path / ".part-0.inprogress", tmp_path / "part-0.csv")
    assert poll(src, 4) == [0, 1, 2, 3]
    assert drain(src) == []
    # a file that changes after it was read is not read again
    publish(tmp_path, "part-0.csv", range(100, 110))
    publish(tmp_path, "part-2.csv", range(6, 8))
    assert poll(src, 2) == [6, 7]
    assert drain(src) == []


def test_empty_batch_at_once_and_no_listing_before_the_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings = []
    real = fs_monitor.list_files
    monkeypatch.setattr(fs_monitor, "list_files", lambda p: listings.append(p) or real(p))
    write_csv(tmp_path / "a.csv", range(3))
    src = source(fs_table(SCHEMA, tmp_path, "csv", **{"source.monitor-interval": "10 min"}))
    assert src.read().num_rows == 3
    write_csv(tmp_path / "b.csv", range(3, 5))  # not seen: the interval has not passed
    start = time.perf_counter()
    sizes = [src.read().num_rows for _ in range(50)]
    assert time.perf_counter() - start < 0.5  # returns at once, never waits for the interval
    assert sizes == [0] * 50
    assert len(listings) == 1  # the listing when the source opened


def test_a_single_file_path_is_read_once(tmp_path: Path) -> None:
    write_csv(tmp_path / "only.csv", range(4))
    src = source(fs_table(SCHEMA, tmp_path / "only.csv", "csv", **INTERVAL))
    assert poll(src, 4) == [0, 1, 2, 3]
    assert drain(src) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("stop", [0, 1, 3, 5])
def test_position_resumes_without_reading_twice(tmp_path: Path, fmt: str, stop: int) -> None:
    def put(rel: str, ids: range) -> None:
        if fmt == "csv":
            write_csv(tmp_path / rel, ids)
        else:
            rows = pa.table({"id": list(ids), "name": [str(i) for i in ids]})
            pq.write_table(rows, tmp_path / rel, row_group_size=2)

    put("b", range(0, 5))
    put("d", range(5, 8))
    first = source(fs_table(SCHEMA, tmp_path, fmt, **INTERVAL), batch_size=2)
    first.open()
    put("a", range(8, 11))  # appears after the first listing: read after b and d
    head = poll(first, 2 * stop) if stop else []
    position = json.loads(json.dumps(first.position()))
    first.close()
    put("c", range(11, 13))  # appears while the job is down
    second = source(fs_table(SCHEMA, tmp_path, fmt, **INTERVAL), batch_size=2)
    second.seek(position)
    rest = poll(second, 13 - len(head))
    assert sorted(head + rest) == list(range(13)), (stop, position)
    assert len(head + rest) == 13
    assert drain(second) == []


def test_position_names_the_files_read_and_the_place(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", range(3))
    write_csv(tmp_path / "b.csv", range(3, 6))
    src = source(fs_table(SCHEMA, tmp_path, "csv", **INTERVAL), batch_size=2)
    src.open()
    assert src.position() == {"done": [], "path": "a.csv"}
    src.read(), src.read(), src.read()
    assert src.position() == {"done": ["a.csv"], "path": "b.csv", "offset": 18, "line": 3}
    src.read()
    src.read()  # nothing new
    assert src.position() == {"done": ["a.csv", "b.csv"], "path": None}


def test_seek_skips_a_current_file_that_is_gone(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", range(3))
    write_csv(tmp_path / "b.csv", range(3, 6))
    src = source(fs_table(SCHEMA, tmp_path, "csv", **INTERVAL), batch_size=2)
    read_batches(src, limit=1)
    position = src.position()
    assert position["path"] == "a.csv"
    (tmp_path / "a.csv").unlink()
    resumed = source(fs_table(SCHEMA, tmp_path, "csv", **INTERVAL))
    resumed.seek(position)
    assert poll(resumed, 3) == [3, 4, 5]
