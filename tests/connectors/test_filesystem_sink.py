"""The filesystem sink: round trips through the source, invisible in-progress files, rolling."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsql.connectors import get_connector
from streamsql.connectors.base import SinkContext
from streamsql.connectors.fs_sink import FileSink
from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import fs_table, read_rows, source, write_all

SCALARS = pa.schema(
    [
        ("id", pa.int64()),
        ("i8", pa.int8()),
        ("name", pa.string()),
        ("price", pa.decimal128(10, 2)),
        ("f", pa.float64()),
        ("g", pa.float32()),
        ("ok", pa.bool_()),
        ("d", pa.date32()),
        ("t", pa.time32("ms")),
        ("ts", pa.timestamp("ms")),
        ("ts6", pa.timestamp("us")),
        ("ltz", pa.timestamp("ms", tz="UTC")),
        ("b", pa.binary()),
        ("arr", pa.list_(pa.int32())),
        ("r", pa.struct([("x", pa.int32()), ("y", pa.string())])),
    ]
)
NESTED = SCALARS.append(pa.field("m", pa.map_(pa.string(), pa.int64())))
UTC = dt.timezone.utc


def sample(schema: pa.Schema) -> pa.Table:
    rows = [
        {
            "id": 1,
            "i8": -3,
            "name": 'with, "quotes" and \\ delimiter',
            "price": decimal.Decimal("-12.34"),
            "f": 1e20,
            "g": 0.1,
            "ok": True,
            "d": dt.date(1999, 12, 31),
            "t": dt.time(23, 59, 59, 999000),
            "ts": dt.datetime(2020, 4, 15, 8, 5, 1, 500000),
            "ts6": dt.datetime(2020, 4, 15, 8, 5, 1, 123456),
            "ltz": dt.datetime(2020, 4, 15, 8, 5, tzinfo=UTC),
            "b": b"\x00\xff raw",
            "arr": [1, None, 3],
            "r": {"x": 5, "y": "y"},
            "m": [("a", 1)],
        },
        {"id": 2, "name": "", "f": -0.5, "g": 2.5, "arr": [], "m": []},
        {"id": 3, "name": "ünïcødé", "f": 3.0, "ok": False},
    ]
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)


@pytest.mark.parametrize(
    ("fmt", "schema"), [("csv", SCALARS), ("json", NESTED), ("parquet", NESTED)]
)
def test_round_trip(tmp_path: Path, fmt: str, schema: pa.Schema) -> None:
    data = sample(schema)
    t = fs_table(schema, tmp_path / "out", fmt)
    write_all(t, data.to_batches(max_chunksize=2), job_name="rt")
    assert sorted(os.listdir(tmp_path / "out")) == [f"part-rt-0-0.{fmt}"]
    got = read_rows(source(t))
    want = data.to_pylist()
    if fmt == "csv":
        # CSV has no NULL string: an absent STRING reads back as '' (as in Flink)
        want[2]["name"] = want[2]["name"] or ""
        assert got[0]["arr"] == [1, None, 3]
        got[1]["arr"] = []  # an empty array is written as '' and reads back NULL
    assert got == want


def test_csv_output_is_flink_text(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("s", pa.string()), ("ts", pa.timestamp("ms"))])
    data = pa.table(
        {"id": [1, None], "s": ["a|b", None], "ts": [dt.datetime(2020, 4, 15, 8, 5), None]},
        schema=schema,
    )
    options = {"csv.field-delimiter": "|", "csv.null-literal": "NULL"}
    write_all(fs_table(schema, tmp_path, "csv", **options), data.to_batches(), job_name="j")
    text = (tmp_path / "part-j-0-0.csv").read_text()
    assert text == '1|"a|b"|2020-04-15 08:05:00.000\nNULL|NULL|NULL\n'
    assert read_rows(source(fs_table(schema, tmp_path, "csv", **options))) == data.to_pylist()


def test_csv_quote_and_escape_options_round_trip(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    texts = ["plain", "semi;colon", "it's", "back\\slash", "both ';\\"]
    data = pa.table({"id": range(len(texts)), "s": texts}, schema=schema)
    options = {
        "csv.field-delimiter": ";",
        "csv.quote-character": "'",
        "csv.escape-character": "\\",
    }
    t = fs_table(schema, tmp_path, "csv", **options)
    write_all(t, data.to_batches(), job_name="q")
    assert (tmp_path / "part-q-0-0.csv").read_text().splitlines()[:3] == [
        "0;plain",
        "1;'semi;colon'",
        "2;'it''s'",
    ]
    assert read_rows(source(t)) == data.to_pylist()


def test_instances_write_their_own_files(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64())])
    for instance in (0, 1):
        t = fs_table(schema, tmp_path, "parquet", **{"parquet.compression": "zstd"})
        write_all(t, [ids(2, 10 * instance)], job_name="j", instance=instance, parallelism=2)
    assert sorted(os.listdir(tmp_path)) == ["part-j-0-0.parquet", "part-j-1-0.parquet"]
    meta = pq.ParquetFile(tmp_path / "part-j-1-0.parquet").metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    reader = fs_table(schema, tmp_path, "parquet")
    assert [r["id"] for r in read_rows(source(reader))] == [0, 1, 10, 11]


def test_json_timestamp_standards(tmp_path: Path) -> None:
    schema = pa.schema([("ts", pa.timestamp("ms")), ("ltz", pa.timestamp("ms", tz="UTC"))])
    value = dt.datetime(2020, 4, 15, 8, 5, 0, 123000)
    data = pa.table({"ts": [value], "ltz": [value.replace(tzinfo=UTC)]}, schema=schema)
    for std, text in [
        ("SQL", '{"ts":"2020-04-15 08:05:00.123","ltz":"2020-04-15 08:05:00.123Z"}\n'),
        ("ISO-8601", '{"ts":"2020-04-15T08:05:00.123","ltz":"2020-04-15T08:05:00.123Z"}\n'),
    ]:
        t = fs_table(schema, tmp_path / std, "json", **{"json.timestamp-format.standard": std})
        write_all(t, data.to_batches(), job_name="j")
        assert (tmp_path / std / "part-j-0-0.json").read_text() == text
        assert read_rows(source(t)) == data.to_pylist()


def open_sink(path: Path, fmt: str, **options: str) -> FileSink:
    t = fs_table(pa.schema([("id", pa.int64())]), path, fmt, **options)
    sink = get_connector("filesystem").create_sink(t, SinkContext(job_name="job", instance=1))
    assert isinstance(sink, FileSink)
    sink.open()
    return sink


def ids(n: int, start: int = 0) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(range(start, start + n), pa.int64())})


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_in_progress_files_are_invisible_until_flush_and_close(tmp_path: Path, fmt: str) -> None:
    sink = open_sink(tmp_path, fmt)
    sink.write(ids(5))
    assert os.listdir(tmp_path) == [f".part-job-1-0.{fmt}.inprogress"]
    reader = fs_table(pa.schema([("id", pa.int64())]), tmp_path, fmt)
    assert read_rows(source(reader)) == []  # the source skips hidden files
    sink.flush()
    assert os.listdir(tmp_path) == [f"part-job-1-0.{fmt}"]
    sink.write(ids(3, 5))
    assert sorted(os.listdir(tmp_path)) == [
        f".part-job-1-1.{fmt}.inprogress",
        f"part-job-1-0.{fmt}",
    ]
    sink.close()
    assert sorted(os.listdir(tmp_path)) == [f"part-job-1-0.{fmt}", f"part-job-1-1.{fmt}"]
    assert [r["id"] for r in read_rows(source(reader))] == list(range(8))
    assert sink.counters == {"rows_written": 8}


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_rolling_by_size(tmp_path: Path, fmt: str) -> None:
    sink = open_sink(tmp_path, fmt, **{"sink.rolling-policy.file-size": "2 kb"})
    for i in range(40):
        sink.write(ids(50, i * 50))
    sink.close()
    names = sorted(os.listdir(tmp_path), key=lambda n: int(n.split("-")[3].split(".")[0]))
    assert len(names) > 3 and not any(n.startswith(".") for n in names)
    reader = fs_table(pa.schema([("id", pa.int64())]), tmp_path, fmt)
    per_file = [len(read_rows(source(fs_table(reader.schema, tmp_path / n, fmt)))) for n in names]
    if fmt == "parquet":
        # rolls once the buffered Arrow data (8 bytes a row) reaches 2 kb: after 300 rows
        assert per_file[:-1] == [300] * (len(names) - 1)
    else:
        # every file but the last rolled right after the write that took it past 2 kb
        sizes = [os.path.getsize(tmp_path / n) for n in names]
        batch = 50 * len('{"id":1999}\n')  # the most one write adds
        assert all(2048 <= s < 2048 + batch for s in sizes[:-1]), sizes
    assert sum(per_file) == 2000
    assert sorted(r["id"] for r in read_rows(source(reader))) == list(range(2000))


def test_rolling_by_age(tmp_path: Path) -> None:
    sink = open_sink(tmp_path, "csv", **{"sink.rolling-policy.rollover-interval": "20 ms"})
    sink.write(ids(1))
    sink.write(ids(1, 1))
    time.sleep(0.05)
    sink.write(ids(1, 2))  # the open file is older than the interval: roll first
    sink.close()
    assert sorted(os.listdir(tmp_path)) == ["part-job-1-0.csv", "part-job-1-1.csv"]
    assert (tmp_path / "part-job-1-0.csv").read_text() == "0\n1\n"


def test_numbering_continues_after_existing_parts(tmp_path: Path) -> None:
    (tmp_path / "part-job-1-0.csv").write_text("0\n")
    (tmp_path / ".part-job-1-4.csv.inprogress").write_text("junk\n")
    sink = open_sink(tmp_path, "csv")
    sink.write(ids(1, 10))
    sink.close()
    assert "part-job-1-5.csv" in os.listdir(tmp_path)
    assert (tmp_path / "part-job-1-0.csv").read_text() == "0\n"


def test_flush_and_close_without_rows_write_nothing(tmp_path: Path) -> None:
    sink = open_sink(tmp_path / "new", "parquet")
    sink.write(ids(0))
    sink.flush()
    sink.close()
    sink.close()
    assert os.listdir(tmp_path / "new") == []


def test_changelog_rows(tmp_path: Path) -> None:
    sink = open_sink(tmp_path, "csv")
    inserts = pa.record_batch({"id": pa.array([1], pa.int64()), "_op": pa.array([0], pa.int8())})
    sink.write(inserts)
    update = pa.record_batch({"id": pa.array([1], pa.int64()), "_op": pa.array([2], pa.int8())})
    with pytest.raises(ExecError, match="append-only"):
        sink.write(update)
    sink.close()
    assert (tmp_path / "part-job-1-0.csv").read_text() == "1\n"


def test_guarantee() -> None:
    assert FileSink.guarantee == "exactly-once (files published at checkpoints)"
    assert FileSink.transactional
    assert get_connector("filesystem").sink_class is FileSink  # type: ignore[attr-defined]


def test_sink_option_errors(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64())])
    bad = {"sink.rolling-policy.file-size": "huge"}
    with pytest.raises(ConfigError, match="is not a memory size") as info:
        write_all(fs_table(schema, tmp_path, "csv", **bad), [])
    assert info.value.option == "sink.rolling-policy.file-size"
    with pytest.raises(
        ConfigError, match=r"has no sink option 'sink\.rolling-policy\.file-sise'"
    ) as info:
        write_all(
            fs_table(schema, tmp_path, "csv", **{"sink.rolling-policy.file-sise": "1 kb"}), []
        )
    assert "sink.rolling-policy.file-size" in (info.value.hint or "")
