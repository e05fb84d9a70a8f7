"""The datagen source: every type, seeds, bounds, sequences, NULLs, instances, rate, options."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from streamsql.connectors import get_connector
from streamsql.errors import ConfigError
from tests.connectors.util import read_batches, source, table

FAST = {"connector": "datagen", "rows-per-second": "1000000000"}

ALL_TYPES = pa.schema(
    [
        ("i8", pa.int8()),
        ("i16", pa.int16()),
        ("i32", pa.int32()),
        ("i64", pa.int64()),
        ("u", pa.float32()),
        ("f", pa.float64()),
        ("dec", pa.decimal128(10, 2)),
        ("wide", pa.decimal128(30, 4)),
        ("ok", pa.bool_()),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("d", pa.date32()),
        ("t", pa.time32("ms")),
        ("ts", pa.timestamp("ms")),
        ("ts9", pa.timestamp("ns")),
        ("ltz", pa.timestamp("ms", tz="UTC")),
        ("arr", pa.list_(pa.int32())),
        ("r", pa.struct([("x", pa.int64()), ("y", pa.string())])),
        ("nested", pa.list_(pa.struct([("z", pa.int16())]))),
        ("m", pa.map_(pa.string(), pa.float64())),
    ]
)


def generated(schema: pa.Schema, batch_size: int = 65536, **options: str) -> pa.Table:
    batches = read_batches(source(table(schema, **{**FAST, **options}), batch_size=batch_size))
    return pa.Table.from_batches(batches, schema=schema)


def test_every_type_has_its_declared_arrow_type() -> None:
    data = generated(ALL_TYPES, **{"number-of-rows": "50", "fields.s.length": "7"})
    assert data.schema == ALL_TYPES and data.num_rows == 50
    assert set(pc.utf8_length(data.column("s")).to_pylist()) == {7}
    assert data.column("s").to_pylist()[0].isalnum()
    assert set(pc.binary_length(data.column("b")).to_pylist()) == {100}  # the default length
    assert set(pc.list_value_length(data.column("arr")).to_pylist()) == {100}
    assert data.column("ok").to_pylist().count(True) not in (0, 50)


def test_same_seed_same_data_whatever_the_batch_size() -> None:
    options = {"number-of-rows": "300", "seed": "42"}
    big = generated(ALL_TYPES.remove(ALL_TYPES.get_field_index("ts")), 1000, **options)
    small = generated(ALL_TYPES.remove(ALL_TYPES.get_field_index("ts")), 7, **options)
    for name in ("i64", "f", "s", "dec", "arr", "r", "m", "ok", "b"):
        assert big.column(name).equals(small.column(name)), name
    other = generated(pa.schema([("i64", pa.int64())]), **{**options, "seed": "43"})
    assert not big.column("i64").equals(other.column("i64"))


def test_a_column_does_not_depend_on_the_other_columns() -> None:
    alone = generated(pa.schema([("x", pa.int64())]), **{"number-of-rows": "20"})
    with_others = generated(ALL_TYPES.append(pa.field("x", pa.int64())), **{"number-of-rows": "20"})
    assert alone.column("x").equals(with_others.column("x"))


def test_random_ranges() -> None:
    schema = pa.schema(
        [
            ("i", pa.int32()),
            ("f", pa.float64()),
            ("dec", pa.decimal128(6, 2)),
            ("arr", pa.list_(pa.int8())),
            ("ts", pa.timestamp("ms")),
            ("d", pa.date32()),
        ]
    )
    options = {
        "number-of-rows": "2000",
        "fields.i.min": "-5",
        "fields.i.max": "5",
        "fields.f.min": "10",
        "fields.f.max": "11",
        "fields.dec.min": "1.5",
        "fields.dec.max": "2.5",
        "fields.arr.min": "3",
        "fields.arr.max": "4",
        "fields.arr.length": "3",
        "fields.ts.max-past": "1 h",
        "fields.d.max-past": "3 d",
    }
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    data = generated(schema, **options)
    after = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert set(data.column("i").to_pylist()) == set(range(-5, 6))
    assert pc.min(data.column("f")).as_py() >= 10
    assert pc.max(data.column("f")).as_py() < 11
    decs = data.column("dec").to_pylist()
    assert min(decs) >= decimal.Decimal("1.5") and max(decs) <= decimal.Decimal("2.5")
    assert len(set(decs)) > 50
    assert set(pc.list_flatten(data.column("arr")).to_pylist()) == {3, 4}
    ts = data.column("ts").to_pylist()
    assert min(ts) >= before - dt.timedelta(hours=1, seconds=1) and max(ts) <= after
    assert max(ts) - min(ts) > dt.timedelta(minutes=50)
    days = {before.date() - d for d in data.column("d").to_pylist()}
    assert days <= {dt.timedelta(days=k) for k in range(-1, 4)} and len(days) >= 3


def test_full_integer_range_by_default() -> None:
    data = generated(pa.schema([("b", pa.int8()), ("l", pa.int64())]), **{"number-of-rows": "5000"})
    assert set(data.column("b").to_pylist()) == set(range(-128, 128))
    big = data.column("l").to_pylist()
    assert min(big) < -(2**62) and max(big) > 2**62


def test_sequences_end_the_table() -> None:
    schema = pa.schema([("id", pa.int64()), ("s", pa.string()), ("p", pa.decimal128(8, 2))])
    options = {
        "fields.id.kind": "sequence",
        "fields.id.start": "5",
        "fields.id.end": "14",
        "fields.s.kind": "sequence",
        "fields.s.start": "100",
        "fields.s.end": "200",
        "fields.p.kind": "sequence",
        "fields.p.start": "0.5",
        "fields.p.end": "50",
    }
    t = table(schema, **FAST, **options)
    assert get_connector("datagen").is_bounded(t)
    data = generated(schema, 3, **options)
    assert data.column("id").to_pylist() == list(range(5, 15))  # the shortest sequence ends it
    assert data.column("s").to_pylist() == [str(i) for i in range(100, 110)]
    assert data.column("p").to_pylist()[:2] == [decimal.Decimal("0.50"), decimal.Decimal("1.50")]
    fewer = generated(schema, **{**options, "number-of-rows": "4"})
    assert fewer.column("id").to_pylist() == [5, 6, 7, 8]


def test_sequence_in_a_row_subfield() -> None:
    schema = pa.schema([("r", pa.struct([("n", pa.int32()), ("x", pa.string())]))])
    options = {"fields.r.n.kind": "sequence", "fields.r.n.start": "1", "fields.r.n.end": "3"}
    data = generated(schema, **options)
    assert [r["n"] for r in data.column("r").to_pylist()] == [1, 2, 3]


def test_unbounded_without_number_of_rows_or_sequence() -> None:
    t = table(pa.schema([("x", pa.int64())]), **FAST)
    assert not get_connector("datagen").is_bounded(t)
    src = source(t, batch_size=100)
    assert [b.num_rows <= 100 for b in read_batches(src, limit=5)] == [True] * 5


@pytest.mark.parametrize(
    ("rate", "low", "high"), [("0", 0, 0), ("1", 3000, 3000), ("0.3", 700, 1100)]
)
def test_null_rate(rate: str, low: int, high: int) -> None:
    schema = pa.schema([("x", pa.int64()), ("r", pa.struct([("a", pa.int8())]))])
    data = generated(schema, **{"number-of-rows": "3000", "fields.x.null-rate": rate})
    assert low <= data.column("x").null_count <= high
    assert data.column("r").null_count == 0


@pytest.mark.parametrize("parallelism", [2, 3, 4])
def test_instances_split_rows_disjoint_and_complete(parallelism: int) -> None:
    schema = pa.schema([("id", pa.int64()), ("v", pa.float64())])
    options = {**FAST, "number-of-rows": "100", "fields.id.kind": "sequence"}
    options.update({"fields.id.start": "1", "fields.id.end": "1000"})
    whole = generated(schema, **options)
    parts = []
    for i in range(parallelism):
        src = source(table(schema, **options), batch_size=9, instance=i, parallelism=parallelism)
        parts.append(pa.Table.from_batches(read_batches(src), schema=schema))
    ids = [p.column("id").to_pylist() for p in parts]
    assert all(i == list(range(i[0], i[-1] + 1)) for i in ids)  # contiguous ranges
    assert sum(len(i) for i in ids) == 100
    combined = pa.concat_tables(parts)
    assert combined.equals(whole)  # same rows, same random values, as at parallelism 1


def test_unbounded_instances_generate_different_streams() -> None:
    schema = pa.schema([("x", pa.int64())])
    first, second = (
        read_batches(source(table(schema, **FAST), batch_size=50, instance=i, parallelism=2), 1)[0]
        for i in range(2)
    )
    assert not first.column("x").equals(second.column("x"))


def test_rate_limit() -> None:
    schema = pa.schema([("x", pa.int32())])
    src = source(
        table(
            schema, **{"connector": "datagen", "rows-per-second": "1000", "number-of-rows": "200"}
        )
    )
    start = time.perf_counter()
    rows = sum(b.num_rows for b in read_batches(src))
    elapsed = time.perf_counter() - start
    assert rows == 200
    assert 0.18 <= elapsed < 0.5, elapsed


def test_rate_is_shared_by_the_instances() -> None:
    schema = pa.schema([("x", pa.int32())])
    options = {"connector": "datagen", "rows-per-second": "1000", "number-of-rows": "200"}
    src = source(table(schema, **options), instance=0, parallelism=2)  # 100 rows at 500/s
    start = time.perf_counter()
    assert sum(b.num_rows for b in read_batches(src)) == 100
    assert 0.18 <= time.perf_counter() - start < 0.5


def test_unbounded_source_returns_empty_batch_when_nothing_is_due() -> None:
    src = source(
        table(pa.schema([("x", pa.int32())]), connector="datagen", **{"rows-per-second": "1"})
    )
    assert src.read().num_rows == 1  # row 0 is due at once
    start = time.perf_counter()
    empty = src.read()
    assert empty is not None and empty.num_rows == 0
    assert time.perf_counter() - start < 0.3


def test_position_and_seek_continue_the_same_rows() -> None:
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    options = {**FAST, "number-of-rows": "50", "fields.s.length": "4"}
    whole = generated(schema, **options)
    first = source(table(schema, **options), batch_size=8)
    head = read_batches(first, limit=3)
    position = json.loads(json.dumps(first.position()))
    assert position == {"rows": 24}
    second = source(table(schema, **options), batch_size=8)
    second.seek(position)
    resumed = pa.Table.from_batches(head + read_batches(second), schema=schema)
    assert resumed.equals(whole)
    assert second.counters["rows_read"] == 26


def test_projection() -> None:
    options = {"number-of-rows": "10"}
    full = generated(ALL_TYPES, **options)
    src = source(table(ALL_TYPES, **FAST, **options), columns=["r", "i8"])
    part = pa.Table.from_batches(read_batches(src))
    assert part.schema.names == ["r", "i8"]
    assert part.column("i8").equals(full.column("i8"))


SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("n", pa.int32()),
        ("ts", pa.timestamp("ms")),
        ("r", pa.struct([("a", pa.int8())])),
    ]
)


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        (
            {"fields.nmae.kind": "random"},
            "has no column 'nmae' for option 'fields.nmae.kind'",
            "did you mean 'name'? columns: name, n, ts, r, r.a",
        ),
        ({"fields.name.knd": "random"}, "has no option 'fields.name.knd'", "'fields.name.kind'"),
        ({"fields.r.b.min": "1"}, "has no column 'r.b'", "'r.a'"),
        ({"rows-per-secnd": "5"}, "has no source option 'rows-per-secnd'", "'rows-per-second'"),
        (
            {"fields.name.min": "1"},
            "'fields.name.min' does not apply to column 'name' of type STRING",
            "numeric",
        ),
        (
            {"fields.n.max-past": "1 s"},
            "'fields.n.max-past' does not apply to column 'n' of type INT",
            "TIMESTAMP",
        ),
        ({"fields.n.length": "3"}, "'fields.n.length' does not apply", "STRING"),
        ({"fields.ts.kind": "sequence"}, "a sequence cannot fill column 'ts'", "random"),
        ({"fields.n.kind": "sequence", "fields.n.start": "1"}, "needs option 'fields.n.end'", None),
        (
            {
                "fields.n.kind": "sequence",
                "fields.n.start": "1",
                "fields.n.end": "2",
                "fields.n.min": "0",
            },
            "does not apply to a sequence",
            None,
        ),
        ({"fields.n.start": "1"}, "'fields.n.start' does not apply to a random field", None),
        ({"fields.n.kind": "randm"}, "'randm' is not one of: random, sequence", None),
        ({"fields.n.null-rate": "1.5"}, "'1.5' is not between 0 and 1", None),
        (
            {"fields.n.min": "5", "fields.n.max": "1"},
            "'fields.n.max' is below 'fields.n.min'",
            None,
        ),
        ({"fields.n.min": "x"}, "'x' is not an integer", None),
        ({"fields.n.max": "3000000000"}, "does not fit INT", None),
        ({"rows-per-second": "0"}, "must be positive", None),
        ({"number-of-rows": "-1"}, "must not be negative", None),
    ],
)
def test_option_errors(options: dict, message: str, hint: str | None) -> None:
    t = table(SCHEMA, connector="datagen", **options)
    with pytest.raises(ConfigError, match=message) as info:
        get_connector("datagen").validate(t, "source")
    # the error points at the offending option (the only one, when a single one is given)
    assert info.value.option in options
    if len(options) == 1:
        assert info.value.option == next(iter(options))
    if hint is not None:
        assert hint in (info.value.hint or ""), info.value.hint


def test_datagen_is_not_a_sink() -> None:
    from streamsql.connectors.base import SinkContext

    with pytest.raises(ConfigError, match="cannot be written to"):
        get_connector("datagen").create_sink(table(SCHEMA, connector="datagen"), SinkContext())


def test_describe() -> None:
    t = table(SCHEMA, connector="datagen", **{"rows-per-second": "5", "number-of-rows": "9"})
    assert get_connector("datagen").describe(t) == "datagen(rows-per-second=5, number-of-rows=9)"
