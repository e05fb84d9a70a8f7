"""'scan.parallelism': the option, and N source instances reading every row exactly once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsql.connectors import get_connector
from streamsql.connectors.base import SCAN_PARALLELISM
from streamsql.connectors.fs_monitor import file_instance
from streamsql.errors import ConfigError
from tests.connectors.test_filesystem_monitor import drain, poll, publish, write_csv
from tests.connectors.test_filesystem_source import SCHEMA, make_files
from tests.connectors.util import fs_table, read_batches, read_rows, source, table

DATAGEN = {"connector": "datagen", "rows-per-second": "1000000000"}


def test_the_option_is_shared_and_read_by_the_connector(tmp_path: Path) -> None:
    fs, datagen = get_connector("filesystem"), get_connector("datagen")
    assert SCAN_PARALLELISM in fs.options_for("source", {"format": "csv"})
    assert SCAN_PARALLELISM in datagen.source_options
    three = fs_table(SCHEMA, tmp_path, "csv", **{"scan.parallelism": "3"})
    assert fs.scan_parallelism(three) == 3
    assert fs.validate(three, "source")["scan.parallelism"] == 3
    assert fs.scan_parallelism(fs_table(SCHEMA, tmp_path, "csv")) is None
    generated = table(SCHEMA, **DATAGEN, **{"scan.parallelism": "2"})
    assert datagen.scan_parallelism(generated) == 2
    assert datagen.scan_parallelism(table(SCHEMA, **DATAGEN)) is None
    printed = table(SCHEMA, connector="print", **{"scan.parallelism": "2"})
    assert get_connector("print").scan_parallelism(printed) is None  # no such option there


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", r"'0' is less than the minimum \(1\)"), ("two", "invalid literal")],
)
@pytest.mark.parametrize("connector", ["filesystem", "datagen"])
def test_the_option_must_be_a_positive_int(
    tmp_path: Path, connector: str, value: str, message: str
) -> None:
    if connector == "filesystem":
        t = fs_table(SCHEMA, tmp_path, "csv", **{"scan.parallelism": value})
    else:
        t = table(SCHEMA, **DATAGEN, **{"scan.parallelism": value})
    for check in (
        lambda: get_connector(connector).validate(t, "source"),
        lambda: get_connector(connector).scan_parallelism(t),
    ):
        with pytest.raises(ConfigError, match=message) as info:
            check()
        assert info.value.option == "scan.parallelism"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_filesystem_instances_read_every_row_once(tmp_path: Path, n: int) -> None:
    ids = make_files(tmp_path, "csv", {f"d{i % 2}/f{i}.csv": 3 + i for i in range(8)})
    t = fs_table(SCHEMA, tmp_path, "csv", **{"scan.parallelism": str(n)})
    parts = [[r["id"] for r in read_rows(source(t, instance=i, parallelism=n))] for i in range(n)]
    assert Counter(i for p in parts for i in p) == Counter(ids)
    assert all(parts)


#: For each parallelism, file and sharer (the k-th instance that reads the file): the rows
#: it reads. f0 has row groups of 300, 300, 300 and 100 rows; f1 one of 10 rows.
STRIPES = {
    # Two sharers of f0: blocks of two groups, cut at the boundary nearest the middle.
    (3, 0): [[*range(0, 300), *range(600, 900)], [*range(300, 600), *range(900, 1000)]],
    (3, 1): [list(range(10_000, 10_010))],
    # Three: a block of three groups, one each; the last group alone is cut by rows.
    (5, 0): [
        [*range(0, 300), *range(900, 933)],
        [*range(300, 600), *range(933, 966)],
        [*range(600, 900), *range(966, 1000)],
    ],
    (5, 1): [list(range(10_000, 10_005)), list(range(10_005, 10_010))],
}


@pytest.mark.parametrize("n", [3, 5])
def test_instances_share_a_parquet_file_by_stripes(tmp_path: Path, n: int) -> None:
    """More instances than files: a file is cut into blocks of whole row groups (at least
    one group and a batch per sharer) and each block into one stripe per sharer at group
    boundaries, so one large file is read in parallel with the instances side by side in it
    (batches never cross a stripe's end).
    """
    for i, rows in enumerate((1000, 10)):
        ids = pa.array(range(i * 10_000, i * 10_000 + rows), pa.int64())
        pq.write_table(pa.table({"id": ids}), tmp_path / f"f{i}.parquet", row_group_size=300)
    t = fs_table(pa.schema([("id", pa.int64())]), tmp_path, "parquet")
    srcs = [source(t, batch_size=64, instance=i, parallelism=n) for i in range(n)]
    batches = [list(read_batches(src)) for src in srcs]
    parts = [[r for b in bs for r in b.column(0).to_pylist()] for bs in batches]
    for f in (0, 1):  # file f is read by the instances i with i % 2 == f
        sharers = list(range(f, n, 2))
        assert [parts[i] for i in sharers] == STRIPES[(n, f)]
        for i in sharers:
            assert srcs[i].counters["rows_read"] == len(parts[i])
            for batch in batches[i]:  # a batch holds rows of one stripe
                rows = batch.column(0).to_pylist()
                assert rows == list(range(rows[0], rows[0] + len(rows)))


def test_a_shared_parquet_file_resumes_inside_its_range(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": pa.array(range(100), pa.int64())}), tmp_path / "f.parquet")
    t = fs_table(pa.schema([("id", pa.int64())]), tmp_path, "parquet")
    first = source(t, batch_size=10, instance=1, parallelism=2)
    assert first.read().column(0).to_pylist() == list(range(50, 60))  # type: ignore[union-attr]
    resumed = source(t, batch_size=10, instance=1, parallelism=2)
    resumed.seek(first.position())
    assert [r["id"] for r in read_rows(resumed)] == list(range(60, 100))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_monitored_instances_share_new_files_by_path_hash(tmp_path: Path, n: int) -> None:
    def name(k: int) -> str:  # file k holds ids 10k..10k+9; new ones sort first and last
        return f"old-{k}.csv" if k < 4 else f"{'a' if k % 2 else 'z'}-{k}.csv"

    for k in range(4):
        write_csv(tmp_path / name(k), range(10 * k, 10 * k + 10))
    options = {"source.monitor-interval": "20 ms", "scan.parallelism": str(n)}
    t = fs_table(SCHEMA, tmp_path, "csv", **options)
    sources = [source(t, instance=i, parallelism=n) for i in range(n)]
    sources[0].open()
    publish(tmp_path, name(4), range(40, 50))  # listed by the later instances only at start
    for s in sources[1:]:
        s.open()
    for k in range(5, 10):
        publish(tmp_path, name(k), range(10 * k, 10 * k + 10))
    got: list[list[int]] = [[] for _ in sources]
    deadline = time.monotonic() + 3
    while sum(map(len, got)) < 100 and time.monotonic() < deadline:
        for ids, s in zip(got, sources, strict=True):  # round-robin, as the driver reads
            ids.extend(poll(s, 1, timeout=0.01))
    for ids, s in zip(got, sources, strict=True):
        ids.extend(drain(s, 0.05))
    assert Counter(i for ids in got for i in ids) == Counter(range(100))
    for i, ids in enumerate(got):  # each file went to the instance its path hashes to
        assert {file_instance(name(x // 10), n) for x in ids} <= {i}


@pytest.mark.parametrize("n", [1, 2, 3])
def test_datagen_instances_generate_every_row_once(n: int) -> None:
    schema = pa.schema([("id", pa.int64()), ("v", pa.float64())])
    options = {"number-of-rows": "100", "scan.parallelism": str(n)}
    options.update({"fields.id.kind": "sequence", "fields.id.start": "1", "fields.id.end": "500"})
    t = table(schema, **DATAGEN, **options)
    parts = [
        [r["id"] for r in read_rows(source(t, batch_size=7, instance=i, parallelism=n))]
        for i in range(n)
    ]
    assert Counter(i for p in parts for i in p) == Counter(range(1, 101))
    assert all(parts)


def test_unbounded_datagen_instances_share_the_rate() -> None:
    schema = pa.schema([("x", pa.int64())])
    t = table(schema, connector="datagen", **{"rows-per-second": "400", "scan.parallelism": "2"})
    sources = [source(t, instance=i, parallelism=2) for i in range(2)]
    start, rows = time.monotonic(), 0
    while time.monotonic() - start < 0.25:
        for s in sources:
            batch = s.read()
            assert batch is not None
            rows += batch.num_rows
    assert 60 <= rows <= 140  # about 400/s for the table, not per instance
