"""Sources resume from a checkpoint: read k batches, take position(), then a NEW source object
seeks to it and reads the rest. The rows before the position plus the rows after it must be
exactly the rows of an uninterrupted read (none lost, none repeated, same order).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsql.connectors import datagen, memory
from streamsql.connectors.base import Source, TableContext
from tests.connectors.util import fs_table, read_batches, source, table

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def ids_of(batches: list[pa.RecordBatch]) -> list[int]:
    return [i for b in batches for i in b.column("id").to_pylist()]


def resumed(make: Callable[[], Source], stop: int, open_first: bool = False) -> list:
    """The batches of ``stop`` reads by one source, then of a new source seeked to its
    position (through JSON, as a checkpoint stores it) and read to the end.
    """
    first = make()
    head = read_batches(first, limit=stop)
    position = json.loads(json.dumps(first.position()))
    first.close()
    second = make()
    if open_first:
        second.open()
    second.seek(position)
    rest = read_batches(second)
    second.close()
    return head + rest


def resumed_instances(
    t: TableContext, batch_size: int, parallelism: int, stop: int, open_first: bool = False
) -> list[int]:
    """The ids every instance of ``t`` reads when it stops after ``stop`` reads and a new
    source goes on from its position; each instance must read what it reads uninterrupted.
    """
    seen = []
    for instance in range(parallelism):

        def make(instance: int = instance) -> Source:
            return source(t, batch_size=batch_size, instance=instance, parallelism=parallelism)

        whole = ids_of(read_batches(make()))
        got = ids_of(resumed(make, stop, open_first))
        assert got == whole, (instance, stop)
        seen += got
    return seen


# -- filesystem: csv, json, parquet ----------------------------------------------------------


def write_file(path: Path, fmt: str, ids: list[int], noise: int = 0) -> None:
    """A file of ``ids``; ``noise`` (text formats) adds empty lines, CRLF line ends and
    malformed rows (skipped with 'format.ignore-parse-errors'), which the position must step
    over correctly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        table = pa.table({"id": ids, "name": [f"n{i}" for i in ids]}, schema=SCHEMA)
        pq.write_table(table, path, row_group_size=3)
        return
    lines = []
    for k, i in enumerate(ids):
        row = f"{i},n{i}" if fmt == "csv" else json.dumps({"id": i, "name": f"n{i}"})
        end = "\r\n" if noise and k % 3 == 1 else "\n"
        lines.append(row + end)
        if noise and (k + noise) % 4 == 0:
            lines.append("\n" if k % 2 else ("x,y\n" if fmt == "csv" else "{oops\n"))
    path.write_text("".join(lines), newline="")


def make_tree(root: Path, fmt: str, sizes: list[int], noise: int) -> list[int]:
    """Files f0, f1, ... (one in a subdirectory) of consecutive ids; returns all ids."""
    start = 0
    for n, size in enumerate(sizes):
        rel = f"f{n}" if n % 2 == 0 else f"sub/f{n}"
        write_file(root / rel, fmt, list(range(start, start + size)), noise)
        start += size
    return list(range(start))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
@SETTINGS
@given(
    sizes=st.lists(st.integers(0, 25), min_size=1, max_size=4),
    batch_size=st.integers(1, 9),
    parallelism=st.integers(1, 3),
    noise=st.integers(0, 3),
    stop=st.integers(0, 30),
    open_first=st.booleans(),
    read_ahead=st.sampled_from(["true", "false"]),
)
def test_files_resume_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    fmt: str,
    sizes: list[int],
    batch_size: int,
    parallelism: int,
    noise: int,
    stop: int,
    open_first: bool,
    read_ahead: str,
) -> None:
    root = tmp_path_factory.mktemp(fmt)
    ids = make_tree(root, fmt, sizes, noise if fmt != "parquet" else 0)
    options = {"format.ignore-parse-errors": "true", "source.read-ahead": read_ahead}
    t = fs_table(SCHEMA, root, fmt, **options)
    assert sorted(resumed_instances(t, batch_size, parallelism, stop, open_first)) == ids


@SETTINGS
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=2),
    extra=st.integers(1, 4),
    batch_size=st.integers(1, 9),
    stop=st.integers(0, 12),
    read_ahead=st.sampled_from(["true", "false"]),
)
def test_shared_parquet_files_resume_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    extra: int,
    batch_size: int,
    stop: int,
    read_ahead: str,
) -> None:
    """More instances than parquet files: each instance reads its stripes of its file."""
    root = tmp_path_factory.mktemp("shared")
    ids = make_tree(root, "parquet", sizes, 0)
    parallelism = len(sizes) + extra
    options = {"scan.parallelism": str(parallelism), "source.read-ahead": read_ahead}
    t = fs_table(SCHEMA, root, "parquet", **options)
    assert sorted(resumed_instances(t, batch_size, parallelism, stop)) == ids


def test_shared_parquet_position_is_a_row_inside_the_instances_stripes(tmp_path: Path) -> None:
    write_file(tmp_path / "one.parquet", "parquet", list(range(30)))  # row groups of 3 rows
    t = fs_table(SCHEMA, tmp_path, "parquet")
    # Three sharers, batches of 4: blocks of four groups (0..11, 12..23) cut at the group
    # boundaries nearest thirds, and the last two groups (24..29) cut by rows; instance 1
    # reads 3..8, 15..20 and 26..27.
    src = source(t, batch_size=4, instance=1, parallelism=3)
    want = [3, 4, 5, 6, 7, 8, 15, 16, 17, 18, 19, 20, 26, 27]
    assert ids_of(read_batches(src)) == want
    src = source(t, batch_size=4, instance=1, parallelism=3)
    assert ids_of(read_batches(src, limit=1)) == [3, 4, 5, 6]
    assert src.position() == {"file": 0, "path": "one.parquet", "row": 7}
    again = source(t, batch_size=4, instance=1, parallelism=3)
    again.seek(src.position())
    assert ids_of(read_batches(again)) == want[4:]
    between = source(t, batch_size=4, instance=1, parallelism=3)
    between.seek({"file": 0, "path": "one.parquet", "row": 9})  # the end of a stripe
    assert ids_of(read_batches(between)) == want[6:]


# -- filesystem: a watched directory ---------------------------------------------------------

MONITOR = {"source.monitor-interval": "10 ms"}


def poll(src: Source, until: Callable[[list[int]], bool], timeout: float = 3.0) -> list[int]:
    """Read like the driver does (a short sleep after an empty batch) until ``until`` holds
    after a read (at least one read).
    """
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        batch = src.read()
        assert batch is not None, "a monitored source never ends"
        if batch.num_rows == 0:
            time.sleep(0.003)
        got += batch.column("id").to_pylist()
        if until(got) or time.monotonic() > deadline:
            return got


def put(root: Path, rel: str, fmt: str, ids: range) -> None:
    """Write under a hidden name and rename into place, as a writer of the directory does."""
    hidden = root / f".{rel}.tmp"
    write_file(hidden, fmt, list(ids))
    os.replace(hidden, root / rel)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("stop", [0, 1, 2, 4, 7])
def test_watched_directory_resumes_exactly(
    tmp_path: Path, fmt: str, parallelism: int, stop: int
) -> None:
    put(tmp_path, "b", fmt, range(0, 5))
    put(tmp_path, "d", fmt, range(5, 9))
    t = fs_table(SCHEMA, tmp_path, fmt, **MONITOR)
    firsts = [
        source(t, batch_size=2, instance=i, parallelism=parallelism) for i in range(parallelism)
    ]
    for s in firsts:
        s.open()
    put(tmp_path, "a", fmt, range(9, 12))  # listed later: read after b and d
    heads, positions = [], []
    for s in firsts:
        head: list[int] = []
        for _ in range(stop):  # ``stop`` batches with rows (or as many as there are)
            head += poll(s, lambda got: len(got) > 0, timeout=0.1)
        heads.append(head)
        positions.append(json.loads(json.dumps(s.position())))
        s.close()
    put(tmp_path, "c", fmt, range(12, 14))  # appears while the job is down
    seconds = [
        source(t, batch_size=2, instance=i, parallelism=parallelism) for i in range(parallelism)
    ]
    for second, position in zip(seconds, positions, strict=True):
        second.seek(position)
    seen = [i for head in heads for i in head]
    deadline = time.monotonic() + 3
    while len(seen) < 14 and time.monotonic() < deadline:
        for second in seconds:
            seen += poll(second, lambda got: True)
        time.sleep(0.003)
    time.sleep(0.03)  # a few intervals more: nothing is read twice
    for second in seconds:
        seen += poll(second, lambda got: True)
    assert sorted(seen) == list(range(14)), (stop, positions)


def test_watched_directory_keeps_file_order_across_a_resume(tmp_path: Path) -> None:
    for rel, ids in [("a", range(0, 3)), ("b", range(3, 6)), ("c", range(6, 9))]:
        put(tmp_path, rel, "csv", ids)
    t = fs_table(SCHEMA, tmp_path, "csv", **MONITOR)
    for stop in range(6):
        first = source(t, batch_size=2)
        head = ids_of(read_batches(first, limit=stop))
        second = source(t, batch_size=2)
        second.seek(json.loads(json.dumps(first.position())))
        assert head + poll(second, lambda got, h=head: len(h) + len(got) >= 9) == list(range(9))


# -- datagen ---------------------------------------------------------------------------------

DATAGEN = {"connector": "datagen", "rows-per-second": "1000000000", "seed": "7"}
GENERATED = pa.schema(
    [
        ("seq", pa.int64()),
        ("id", pa.int64()),
        ("name", pa.string()),
        ("price", pa.decimal128(10, 2)),
        ("ts", pa.timestamp("ms")),
        ("tags", pa.list_(pa.int32())),
        ("r", pa.struct([("x", pa.float64()), ("y", pa.bool_())])),
    ]
)
RANDOM_OPTIONS = {
    "fields.id.min": "0",
    "fields.id.max": "1000",
    "fields.name.length": "5",
    "fields.name.null-rate": "0.3",
    "fields.ts.max-past": "1 h",
    "fields.tags.length": "2",
}


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random TIMESTAMPs are 'now' minus a random past: fix 'now' to compare them."""
    monkeypatch.setattr(datagen, "now_ms", lambda: 1_700_000_000_000)


def generated_rows(make: Callable[[], Source], rows: int) -> pa.Table:
    """The first ``rows`` rows a source generates (batches vary with the rate limiter)."""
    src = make()
    batches = []
    while sum(b.num_rows for b in batches) < rows:
        batch = src.read()
        assert batch is not None
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=src.schema).slice(0, rows)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("sequence", [True, False])
@pytest.mark.parametrize("parallelism", [1, 3])
@pytest.mark.parametrize("stop", [0, 1, 4, 9])
def test_bounded_datagen_resumes_exactly(sequence: bool, parallelism: int, stop: int) -> None:
    options = {**DATAGEN, **RANDOM_OPTIONS}
    if sequence:  # the sequence ends the table
        options |= {"fields.seq.kind": "sequence", "fields.seq.start": "5", "fields.seq.end": "60"}
    else:
        options["number-of-rows"] = "56"
    t = table(GENERATED, **options)
    parts = []
    for instance in range(parallelism):

        def make(instance: int = instance) -> Source:
            return source(t, batch_size=4, instance=instance, parallelism=parallelism)

        whole = pa.Table.from_batches(read_batches(make()), schema=GENERATED)
        got = pa.Table.from_batches(resumed(make, stop), schema=GENERATED)
        assert got.equals(whole), (instance, stop)
        parts.append(got)
    assert sum(p.num_rows for p in parts) == 56
    if sequence:
        seqs = [v for p in parts for v in p.column("seq").to_pylist()]
        assert seqs == list(range(5, 61))


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("stop", [1, 3, 8])
def test_unbounded_datagen_resumes_exactly(parallelism: int, stop: int) -> None:
    t = table(GENERATED, **DATAGEN, **RANDOM_OPTIONS)
    for instance in range(parallelism):

        def make(instance: int = instance) -> Source:
            return source(t, batch_size=5, instance=instance, parallelism=parallelism)

        first = make()
        head = generated_rows(lambda first=first: first, 5 * stop)
        position = json.loads(json.dumps(first.position()))
        assert position == {"rows": 5 * stop}
        second = make()
        second.seek(position)
        rest = generated_rows(lambda second=second: second, 30)
        whole = generated_rows(make, 5 * stop + 30)
        assert pa.concat_tables([head, rest]).equals(whole), (instance, stop)


def test_unbounded_instances_generate_different_rows(frozen_clock: None) -> None:
    t = table(GENERATED, **DATAGEN, **RANDOM_OPTIONS)
    a, b = (generated_rows(lambda i=i: source(t, instance=i, parallelism=2), 20) for i in (0, 1))
    assert a.column("id") != b.column("id")


# -- memory ----------------------------------------------------------------------------------


@pytest.fixture
def bids() -> Iterator[memory.MemoryStream]:
    s = memory.stream("positions-test", schema=SCHEMA)
    s.reset()
    s._adopt(SCHEMA, explicit=True)
    yield s
    s.reset()


@pytest.mark.parametrize("parallelism", [1, 2])
@pytest.mark.parametrize("stop", [0, 1, 2, 5, 8, 20])
def test_memory_source_resumes_exactly(
    bids: memory.MemoryStream, parallelism: int, stop: int
) -> None:
    start = 0
    for size in [3, 1, 7, 2, 5, 4]:
        bids.push([{"id": i, "name": f"n{i}"} for i in range(start, start + size)])
        start += size
    bids.end()
    t = table(SCHEMA, connector="memory", name="positions-test")
    seen = []
    for instance in range(parallelism):

        def make(instance: int = instance) -> Source:
            return source(t, batch_size=2, instance=instance, parallelism=parallelism)

        whole = ids_of(read_batches(make()))
        got = ids_of(resumed(make, stop))
        assert got == whole, (instance, stop)
        seen += got
    assert sorted(seen) == list(range(start))


def test_memory_source_resumes_at_the_watermark_hints_it_had(bids: memory.MemoryStream) -> None:
    bids.push([{"id": 1}, {"id": 2}])
    bids.advance_watermark(1000)
    bids.push([{"id": 3}])
    t = table(SCHEMA, connector="memory", name="positions-test")
    first = source(t, batch_size=1)
    assert ids_of(read_batches(first, limit=2)) == [1, 2]
    assert first.watermark() == 1000
    second = source(t, batch_size=1)
    second.seek(json.loads(json.dumps(first.position())))
    assert second.watermark() == 1000
    assert ids_of(read_batches(second, limit=1)) == [3]
    empty = second.read()
    assert empty is not None and empty.num_rows == 0  # not ended: waits for more
