"""Read ahead: a source's chunks decoded on a thread of their own come out as the reader
made them, errors where the reader raised them, and closing stops the thread and the reader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsql.connectors import read_ahead
from streamsql.connectors.read_ahead import ReadAhead
from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import fs_table, read_batches, source


class Reader:
    """A generator of ``n`` items that records how far it got and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.made = 0
        self.closed = threading.Event()

    def __call__(self) -> Iterator[int]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ExecError(f"bad item {i}")
                self.made += 1
                yield i
        finally:
            self.closed.set()


def test_items_come_in_order_and_at_most_depth_ahead() -> None:
    reader = Reader(100)
    items = ReadAhead(reader(), depth=2)
    assert next(items) == 0
    time.sleep(0.05)  # the thread runs ahead until the queue is full, and waits
    assert reader.made <= 1 + 2 + 1  # taken, queued, and one waiting to be queued
    assert [0, *items] == list(range(100))
    assert reader.closed.is_set()


def test_an_error_comes_after_the_items_before_it() -> None:
    items = ReadAhead(Reader(10, fail_at=4)())
    got = []
    with pytest.raises(ExecError, match="bad item 4"):
        for item in items:
            got.append(item)
    assert got == [0, 1, 2, 3]
    with pytest.raises(StopIteration):
        next(items)


def test_closing_stops_a_thread_waiting_to_hand_over_and_closes_the_reader() -> None:
    reader = Reader(1_000_000)
    items = ReadAhead(reader(), depth=1)
    assert next(items) == 0
    began = time.perf_counter()
    items.close()
    assert time.perf_counter() - began < 1.0
    assert reader.closed.is_set() and reader.made < 10
    with pytest.raises(StopIteration):
        next(items)


def test_auto_reads_ahead_when_the_instances_leave_a_core_free(monkeypatch) -> None:
    monkeypatch.setattr(read_ahead, "cores", lambda: 4)
    assert [read_ahead.wanted("auto", p) for p in (1, 3, 4, 8)] == [True, True, False, False]
    assert read_ahead.wanted("true", 8) and not read_ahead.wanted("false", 1)


def write(path: Path, n: int, start: int = 0) -> list[int]:
    ids = list(range(start, start + n))
    pq.write_table(pa.table({"id": ids}), path, row_group_size=7)
    return ids


@pytest.mark.parametrize("setting", ["true", "false", "auto"])
def test_a_file_source_reads_the_same_batches_either_way(tmp_path: Path, setting: str) -> None:
    ids = write(tmp_path / "a.parquet", 40) + write(tmp_path / "b.parquet", 9, start=40)
    t = fs_table(pa.schema([("id", pa.int64())]), tmp_path, "parquet")
    plain = read_batches(source(t, batch_size=5))
    t = fs_table(t.schema, tmp_path, "parquet", **{"source.read-ahead": setting})
    src = source(t, batch_size=5)
    got = read_batches(src)
    assert [b.to_pydict() for b in got] == [b.to_pydict() for b in plain]
    assert [i for b in got for i in b.column("id").to_pylist()] == ids
    src.close()


def test_a_bad_file_is_reported_as_without_read_ahead(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,x\n2,y\nnot a number,z\n")
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    t = fs_table(schema, tmp_path / "a.csv", "csv", **{"source.read-ahead": "true"})
    with pytest.raises(ExecError, match="line 3"):
        read_batches(source(t))


def test_a_bad_setting_names_the_choices(tmp_path: Path) -> None:
    write(tmp_path / "a.parquet", 3)
    t = fs_table(pa.schema([("id", pa.int64())]), tmp_path, "parquet")
    t.options["source.read-ahead"] = "sometimes"
    with pytest.raises(ConfigError, match=r"source\.read-ahead") as e:
        source(t)
    assert "auto" in str(e.value) or "auto" in (e.value.hint or "")


@pytest.mark.parametrize(("setting", "threads"), [("true", 1), ("false", 0)])
def test_the_setting_decides_whether_a_thread_reads_ahead(
    tmp_path: Path, setting: str, threads: int
) -> None:
    write(tmp_path / "a.parquet", 40)
    t = fs_table(pa.schema([("id", pa.int64())]), tmp_path, "parquet")
    t.options["source.read-ahead"] = setting
    before = set(read_ahead_threads())
    src = source(t, batch_size=5)
    read_batches(src, limit=1)
    assert len(set(read_ahead_threads()) - before) == threads
    src.close()
    assert not set(read_ahead_threads()) - before


def test_a_dropped_iterator_stops_its_thread() -> None:
    reader = Reader(1_000_000)
    items = ReadAhead(reader(), depth=1)
    assert next(items) == 0
    del items
    assert reader.closed.wait(2.0)


def read_ahead_threads() -> list[threading.Thread]:
    return [th for th in threading.enumerate() if th.name == "streamsql read-ahead"]
