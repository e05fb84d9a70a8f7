"""The print sink: Flink's Row.toString for every type, prefixes, changelog kinds, streams."""

from __future__ import annotations

import datetime as dt
import decimal
import io

import pyarrow as pa
import pytest

from streamsql.connectors import get_connector
from streamsql.connectors.base import SinkContext
from streamsql.connectors.printer import PrintSink, format_rows, line_prefix
from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import table

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    ("values", "type_", "expected"),
    [
        ([1, None, -5], pa.int64(), ["1", "null", "-5"]),
        ([7], pa.int8(), ["7"]),
        ([True, False], pa.bool_(), ["true", "false"]),
        (
            [1.0, 1.5, 1e7, 0.001, 1e-4, 123456789.0, -0.0],
            pa.float64(),
            ["1.0", "1.5", "1.0E7", "0.001", "1.0E-4", "1.23456789E8", "-0.0"],
        ),
        ([0.1, float("nan"), float("inf")], pa.float32(), ["0.1", "NaN", "Infinity"]),
        (
            [decimal.Decimal("1.50"), decimal.Decimal("-0.05")],
            pa.decimal128(10, 2),
            ["1.50", "-0.05"],
        ),
        (["foo", ""], pa.string(), ["foo", ""]),
        ([b"\x01\xff", b""], pa.binary(), ["[1, -1]", "[]"]),
        ([dt.date(2020, 4, 15)], pa.date32(), ["2020-04-15"]),
        (
            [dt.time(8, 5), dt.time(8, 5, 1), dt.time(8, 5, 1, 500000)],
            pa.time32("ms"),
            ["08:05", "08:05:01", "08:05:01.500"],
        ),
        (
            [
                dt.datetime(2020, 4, 15, 8, 5),
                dt.datetime(2020, 4, 15, 8, 5, 1),
                dt.datetime(2020, 4, 15, 8, 5, 1, 500000),
                dt.datetime(2020, 4, 15, 8, 5, 0, 123456),
            ],
            pa.timestamp("us"),
            [
                "2020-04-15T08:05",
                "2020-04-15T08:05:01",
                "2020-04-15T08:05:01.500",
                "2020-04-15T08:05:00.123456",
            ],
        ),
        (
            [dt.datetime(1969, 12, 31, 23, 59, 59, 500000)],
            pa.timestamp("ms"),
            ["1969-12-31T23:59:59.500"],
        ),
        (
            [
                dt.datetime(2020, 4, 15, 8, 5, tzinfo=UTC),
                dt.datetime(2020, 4, 15, 8, 5, 1, 500000, tzinfo=UTC),
            ],
            pa.timestamp("ms", tz="UTC"),
            ["2020-04-15T08:05:00Z", "2020-04-15T08:05:01.500Z"],
        ),
        ([[1, None], [], None], pa.list_(pa.int32()), ["[1, null]", "[]", "null"]),
        (
            [{"a": 1, "b": "x"}, None, {"a": None, "b": None}],
            pa.struct([("a", pa.int32()), ("b", pa.string())]),
            ["+I[1, x]", "null", "+I[null, null]"],
        ),
        ([[("k", 1), ("j", None)], []], pa.map_(pa.string(), pa.int32()), ["{k=1, j=null}", "{}"]),
        ([[{"x": [1]}]], pa.list_(pa.struct([("x", pa.list_(pa.int8()))])), ["[+I[[1]]]"]),
    ],
)
def test_every_type(values: list, type_: pa.DataType, expected: list[str]) -> None:
    batch = pa.record_batch({"v": pa.array(values, type_)})
    assert format_rows(batch) == "".join(f"+I[{e}]\n" for e in expected)


def test_a_row_of_several_columns() -> None:
    batch = pa.record_batch(
        {
            "id": [1],
            "s": ["foo"],
            "ts": pa.array([dt.datetime(2020, 4, 15, 8, 5)], pa.timestamp("ms")),
            "n": pa.array([None], pa.int32()),
        }
    )
    assert format_rows(batch) == "+I[1, foo, 2020-04-15T08:05, null]\n"


def test_sliced_batches_print_their_own_rows() -> None:
    batch = pa.record_batch({"a": pa.array([[1], [2, 3], None]), "b": pa.array([b"a", b"b", b"c"])})
    assert format_rows(batch.slice(1)) == "+I[[2, 3], [98]]\n+I[null, [99]]\n"


def test_changelog_kinds_replace_op_column() -> None:
    batch = pa.record_batch({"k": ["a", "a", "a", "b"], "_op": pa.array([0, 1, 2, 3], pa.int8())})
    assert format_rows(batch) == "+I[a]\n-U[a]\n+U[a]\n-D[b]\n"
    bad = pa.record_batch({"k": ["a"], "_op": pa.array([9], pa.int8())})
    with pytest.raises(ExecError, match="changelog kind"):
        format_rows(bad)


@pytest.mark.parametrize(
    ("identifier", "instance", "parallelism", "prefix"),
    [("", 0, 1, ""), ("out", 0, 1, "out> "), ("out", 2, 4, "out:3> "), ("", 0, 2, "1> ")],
)
def test_prefixes(identifier: str, instance: int, parallelism: int, prefix: str) -> None:
    assert line_prefix(identifier, instance, parallelism) == prefix
    options = {"connector": "print"} | ({"print-identifier": identifier} if identifier else {})
    out = io.StringIO()
    ctx = SinkContext(instance=instance, parallelism=parallelism, stdout=out)
    sink = get_connector("print").create_sink(table(pa.schema([("x", pa.int64())]), **options), ctx)
    sink.open()
    sink.write(pa.record_batch({"x": [1, 2]}))
    sink.close()
    assert out.getvalue() == f"{prefix}+I[1]\n{prefix}+I[2]\n"
    assert sink.counters == {"rows_written": 2}


def test_writes_to_sys_stdout_at_write_time_or_stderr(capsys: pytest.CaptureFixture) -> None:
    schema = pa.schema([("x", pa.int64())])
    sink = get_connector("print").create_sink(table(schema, connector="print"), SinkContext())
    sink.write(pa.record_batch({"x": [5]}))
    err = get_connector("print").create_sink(
        table(schema, connector="print", **{"standard-error": "true"}),
        SinkContext(stdout=io.StringIO()),
    )
    err.write(pa.record_batch({"x": [6]}))
    captured = capsys.readouterr()
    assert captured.out == "+I[5]\n"
    assert captured.err == "+I[6]\n"


def test_empty_batch_and_no_columns() -> None:
    assert format_rows(pa.record_batch({"x": pa.array([], pa.int64())})) == ""
    no_columns = pa.RecordBatch.from_struct_array(pa.nulls(2, pa.struct([])))
    assert format_rows(no_columns) == "+I[]\n+I[]\n"


def test_options() -> None:
    schema = pa.schema([("x", pa.int64())])
    with pytest.raises(ConfigError, match="has no sink option 'print-identifer'") as info:
        get_connector("print").validate(
            table(schema, connector="print", **{"print-identifer": "a"}), "sink"
        )
    assert "'print-identifier'" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="'maybe' is not 'true' or 'false'"):
        get_connector("print").validate(
            table(schema, connector="print", **{"standard-error": "maybe"}), "sink"
        )
    with pytest.raises(ConfigError, match="cannot be read from"):
        get_connector("print").create_source(table(schema, connector="print"), None)  # type: ignore[arg-type]
    t = table(schema, connector="print", **{"print-identifier": "res"})
    assert get_connector("print").describe(t) == "print(print-identifier=res)"
    assert PrintSink.guarantee == "at-least-once"
