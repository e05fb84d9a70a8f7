"""The filesystem source reading Parquet: columns by name, casts, pieces, resuming."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsql.errors import ExecError
from tests.connectors.util import fs_table, read_batches, read_rows, source

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("price", pa.decimal128(10, 2)),
        ("ok", pa.bool_()),
        ("f", pa.float32()),
        ("d", pa.date32()),
        ("t", pa.time32("ms")),
        ("ts", pa.timestamp("ms")),
        ("ltz", pa.timestamp("ms", tz="UTC")),
        ("b", pa.binary()),
        ("arr", pa.list_(pa.int32())),
        ("r", pa.struct([("x", pa.int32()), ("y", pa.string())])),
        ("m", pa.map_(pa.string(), pa.int64())),
    ]
)


def test_every_type_by_name_in_any_file_order(tmp_path: Path) -> None:
    row = {
        "id": 1,
        "name": "x",
        "price": 1,
        "ok": True,
        "f": 0.5,
        "d": dt.date(2020, 4, 15),
        "t": dt.time(8, 5, 1),
        "ts": dt.datetime(2020, 4, 15, 8, 5),
        "ltz": dt.datetime(2020, 4, 15, 8, 5, tzinfo=dt.timezone.utc),
        "b": b"\x00\x01",
        "arr": [1, 2],
        "r": {"x": 1, "y": "z"},
        "m": [("k", 3)],
    }
    data = pa.Table.from_pylist([row, dict.fromkeys(row)], schema=SCHEMA)
    shuffled = data.select(list(reversed(SCHEMA.names))).append_column("extra", pa.array([1, 2]))
    pq.write_table(shuffled, tmp_path / "a.parquet")
    (batch,) = read_batches(source(fs_table(SCHEMA, tmp_path / "a.parquet", "parquet")))
    assert batch.schema == SCHEMA
    assert batch.to_pylist() == data.to_pylist()


def test_columns_come_in_requested_order(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": ["x"], "c": [2.0]}), tmp_path / "o.parquet")
    schema = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.float64())])
    (batch,) = read_batches(source(fs_table(schema, tmp_path / "o.parquet", "parquet"), ["c", "a"]))
    assert batch.schema.names == ["c", "a"]
    assert batch.to_pylist() == [{"c": 2.0, "a": 1}]


def test_file_types_are_cast_to_declared_types(tmp_path: Path) -> None:
    us = pa.array([1_586_937_900_123_456], pa.timestamp("us"))
    pq.write_table(pa.table({"n": pa.array([7], pa.int32()), "ts": us}), tmp_path / "c.parquet")
    schema = pa.schema([("n", pa.int64()), ("ts", pa.timestamp("ms"))])
    (row,) = read_rows(source(fs_table(schema, tmp_path / "c.parquet", "parquet")))
    assert row == {"n": 7, "ts": dt.datetime(2020, 4, 15, 8, 5, 0, 123000)}  # truncated


def test_value_that_does_not_fit_fails(tmp_path: Path) -> None:
    pq.write_table(pa.table({"n": pa.array([2**40], pa.int64())}), tmp_path / "big.parquet")
    schema = pa.schema([("n", pa.int32())])
    with pytest.raises(
        ExecError, match=r"big\.parquet: column 'n' holds int64 values that do not fit INT"
    ):
        read_rows(source(fs_table(schema, tmp_path / "big.parquet", "parquet")))


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "m.parquet")
    schema = pa.schema([("a", pa.int64()), ("price", pa.int64())])
    with pytest.raises(ExecError, match=r"m\.parquet: the file has no column 'price'") as info:
        read_rows(source(fs_table(schema, tmp_path / "m.parquet", "parquet")))
    assert "a" in (info.value.hint or "")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("hello")
    schema = pa.schema([("a", pa.int64())])
    with pytest.raises(ExecError, match=r"x\.parquet: not a readable Parquet file"):
        read_rows(source(fs_table(schema, tmp_path / "x.parquet", "parquet")))


@pytest.mark.parametrize("batch_size", [1, 7, 1000, 65536])
def test_read_in_pieces_of_batch_size(tmp_path: Path, batch_size: int) -> None:
    n = 2500
    pq.write_table(pa.table({"id": range(n)}), tmp_path / "n.parquet", row_group_size=300)
    schema = pa.schema([("id", pa.int64())])
    batches = read_batches(
        source(fs_table(schema, tmp_path / "n.parquet", "parquet"), batch_size=batch_size)
    )
    assert max(b.num_rows for b in batches) <= batch_size
    assert [i for b in batches for i in b.column("id").to_pylist()] == list(range(n))


def test_resume_in_a_later_row_group(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": range(1000)}), tmp_path / "r.parquet", row_group_size=100)
    schema = pa.schema([("id", pa.int64())])
    t = fs_table(schema, tmp_path / "r.parquet", "parquet")
    first = source(t, batch_size=64)
    head = read_batches(first, limit=6)  # 384 rows: inside the fourth row group
    position = json.loads(json.dumps(first.position()))
    assert position["row"] == 384
    second = source(t, batch_size=64)
    second.seek(position)
    rest = read_batches(second)
    ids = [i for b in head + rest for i in b.column("id").to_pylist()]
    assert ids == list(range(1000))
