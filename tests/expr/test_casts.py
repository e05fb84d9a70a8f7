"""CAST and TRY_CAST between the SQL types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from streamsql.errors import BindError, ExecError
from streamsql.expr import EvalContext

UTC = dt.timezone.utc
SHANGHAI = EvalContext(time_zone="Asia/Shanghai")


@pytest.mark.parametrize(
    ("sql", "expected", "type_"),
    [
        ("CAST(' 42 ' AS INT)", 42, pa.int32()),
        ("CAST('-0012' AS BIGINT)", -12, pa.int64()),
        ("CAST('1.5' AS DOUBLE)", 1.5, pa.float64()),
        ("CAST('1e3' AS FLOAT)", 1000.0, pa.float32()),
        ("CAST('1.995' AS DECIMAL(4, 2))", Decimal("2.00"), pa.decimal128(4, 2)),
        ("CAST('-1.995' AS DECIMAL(4, 2))", Decimal("-2.00"), pa.decimal128(4, 2)),
        ("TRY_CAST('123.4' AS DECIMAL(3, 1))", None, pa.decimal128(3, 1)),  # does not fit
        ("CAST('yes' AS BOOLEAN)", True, pa.bool_()),
        ("CAST('FALSE' AS BOOLEAN)", False, pa.bool_()),
        ("CAST('2020-1-2' AS DATE)", dt.date(2020, 1, 2), pa.date32()),
        ("CAST('10:20:30' AS TIME)", dt.time(10, 20, 30), pa.time32("ms")),
        (
            "CAST('2020-01-02 03:04:05.678' AS TIMESTAMP(3))",
            dt.datetime(2020, 1, 2, 3, 4, 5, 678000),
            pa.timestamp("ms"),
        ),
        (
            "CAST('2020-01-02T03:04:05' AS TIMESTAMP(3))",
            dt.datetime(2020, 1, 2, 3, 4, 5),
            pa.timestamp("ms"),
        ),
        ("CAST('2020-01-02' AS TIMESTAMP(0))", dt.datetime(2020, 1, 2), pa.timestamp("s")),
        (
            "CAST('2020-01-02 03:04:05' AS TIMESTAMP)",
            dt.datetime(2020, 1, 2, 3, 4, 5),
            pa.timestamp("us"),
        ),
        ("CAST('abc' AS BYTES)", b"abc", pa.binary()),
    ],
)
def test_from_string(one, sql, expected, type_):
    assert one(sql) == (expected, type_)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CAST(42 AS STRING)", "42"),
        ("CAST(1.50 AS VARCHAR)", "1.50"),
        ("CAST(1.0E0 AS STRING)", "1.0"),
        ("CAST(1e20 AS STRING)", "1.0E20"),
        ("CAST(0.00001E0 AS STRING)", "1.0E-5"),
        ("CAST(12345678.0E0 AS STRING)", "1.2345678E7"),
        ("CAST(CAST('NaN' AS DOUBLE) AS STRING)", "NaN"),
        ("CAST(TRUE AS STRING)", "TRUE"),
        ("CAST(DATE '2020-01-02' AS STRING)", "2020-01-02"),
        ("CAST(TIME '10:20:30' AS STRING)", "10:20:30"),
        ("CAST(TIMESTAMP '2020-04-15 08:05:00' AS STRING)", "2020-04-15 08:05:00.000"),
        ("CAST(CAST('2020-04-15 08:05:00' AS TIMESTAMP(0)) AS STRING)", "2020-04-15 08:05:00"),
        ("CAST(CAST('abc' AS BYTES) AS STRING)", "abc"),
        ("CAST(NULL AS STRING)", None),
    ],
)
def test_to_string(one, sql, expected):
    assert one(sql) == (expected, pa.string())


def test_timestamp_renders_in_flink_format(ev):
    assert ev("CAST(ts AS STRING)")[0] == [
        "2020-04-15 08:05:00.123",
        "2021-01-31 23:59:59.000",
        None,
        "1969-12-31 23:00:00.000",
    ]


@pytest.mark.parametrize(
    ("sql", "expected", "type_"),
    [
        ("CAST(1.99 AS INT)", 1, pa.int32()),
        ("CAST(-1.99 AS INT)", -1, pa.int32()),
        ("CAST(-1.99E0 AS BIGINT)", -1, pa.int64()),
        ("CAST(1e20 AS INT)", 2147483647, pa.int32()),
        ("CAST(300 AS TINYINT)", 44, pa.int8()),
        ("CAST(1.25 AS DECIMAL(2, 1))", Decimal("1.3"), pa.decimal128(2, 1)),
        ("CAST(-1.25 AS DECIMAL(2, 1))", Decimal("-1.3"), pa.decimal128(2, 1)),
        ("CAST(2.675E0 AS DECIMAL(4, 2))", Decimal("2.68"), pa.decimal128(4, 2)),
        ("CAST(1234 AS DECIMAL(3, 0))", None, pa.decimal128(3, 0)),
        ("CAST(5 AS DECIMAL(1, 0))", Decimal("5"), pa.decimal128(1, 0)),
        ("CAST(2 AS BOOLEAN)", True, pa.bool_()),
        ("CAST(0 AS BOOLEAN)", False, pa.bool_()),
        ("CAST(TRUE AS INT)", 1, pa.int32()),
        ("CAST(2.5 AS DOUBLE)", 2.5, pa.float64()),
    ],
)
def test_numeric(one, sql, expected, type_):
    assert one(sql) == (expected, type_)


def test_temporal(ev, one):
    assert ev("CAST(ts AS DATE)")[0] == [
        dt.date(2020, 4, 15),
        dt.date(2021, 1, 31),
        None,
        dt.date(1969, 12, 31),
    ]
    assert ev("CAST(ts AS TIME)")[0][0] == dt.time(8, 5, 0, 123000)
    assert ev("CAST(ts AS TIMESTAMP(0))")[0][0] == dt.datetime(2020, 4, 15, 8, 5)
    # truncation floors, also before 1970
    assert one("CAST(TIMESTAMP '1969-12-31 23:59:59.500' AS TIMESTAMP(0))")[0] == dt.datetime(
        1969, 12, 31, 23, 59, 59
    )
    assert ev("CAST(day AS TIMESTAMP(3))")[0][0] == dt.datetime(2020, 1, 31)
    assert one("CAST(0 AS TIMESTAMP_LTZ(3))") == (
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        pa.timestamp("ms", tz="UTC"),
    )


def test_ltz_conversions_use_the_session_zone(ev, one):
    values, t = ev("CAST(ts AS TIMESTAMP_LTZ(3))", ctx=SHANGHAI)
    assert t == pa.timestamp("ms", tz="UTC")
    assert values[0] == dt.datetime(2020, 4, 15, 0, 5, 0, 123000, tzinfo=UTC)
    assert ev("CAST(CAST(ts AS TIMESTAMP_LTZ(3)) AS TIMESTAMP(3))", ctx=SHANGHAI)[0] == ev("ts")[0]
    assert one("CAST(TO_TIMESTAMP_LTZ(0, 3) AS STRING)", SHANGHAI)[0] == "1970-01-01 08:00:00.000"
    assert one("CAST('1970-01-01 08:00:00' AS TIMESTAMP_LTZ(3))", SHANGHAI)[0] == dt.datetime(
        1970, 1, 1, tzinfo=UTC
    )
    assert one("CAST(TO_TIMESTAMP_LTZ(0, 3) AS DATE)", EvalContext(time_zone="America/New_York"))[
        0
    ] == dt.date(1969, 12, 31)


def test_malformed_strings_fail_cast_and_null_try_cast(ev):
    with pytest.raises(ExecError, match=r"cannot CAST 'hello' to INT in CAST\(s AS INT\)") as err:
        ev("CAST(s AS INT)")
    assert err.value.span is not None and (err.value.span.line, err.value.span.column) == (1, 13)
    assert ev("TRY_CAST(s AS INT)") == ([None, None, None, 42], pa.int32())
    assert ev("TRY_CAST(s AS DATE)")[0] == [None] * 4
    with pytest.raises(ExecError, match="cannot CAST 'hello' to BOOLEAN"):
        ev("CAST(s AS BOOLEAN)")
    with pytest.raises(ExecError, match=r"cannot CAST '123\.4' to DECIMAL"):
        ev("CAST(CONCAT('12', '3.4', s) AS DECIMAL(3, 1))", batch=pa.record_batch({"s": [""]}))


def test_constant_that_does_not_cast_fails_at_compile_time(one):
    with pytest.raises(BindError, match="cannot CAST 'abc' to INT"):
        one("CAST('abc' AS INT)")
    with pytest.raises(BindError, match="cannot CAST '2020-13-01' to DATE"):
        one("DATE '2020-13-01'")


def test_disallowed_casts(one):
    with pytest.raises(BindError, match="cannot CAST TIMESTAMP\\(3\\) to BIGINT") as err:
        one("CAST(ts AS BIGINT)")
    assert "UNIX_TIMESTAMP" in err.value.hint
    with pytest.raises(BindError, match="cannot CAST ARRAY<INT> to STRING"):
        one("CAST(arr AS STRING)")
    with pytest.raises(BindError, match="unknown type 'FOO'"):
        one("CAST(a AS FOO)")


def test_timestamp_literal_precision_follows_its_digits(one):
    assert one("TIMESTAMP '2020-01-02 03:04:05'") == (
        dt.datetime(2020, 1, 2, 3, 4, 5),
        pa.timestamp("ms"),
    )
    assert one("TIMESTAMP '2020-01-02 03:04:05.123'")[1] == pa.timestamp("ms")
    assert one("TIMESTAMP '2020-01-02 03:04:05.123456'") == (
        dt.datetime(2020, 1, 2, 3, 4, 5, 123456),
        pa.timestamp("us"),
    )
    # an explicit CAST without precision is TIMESTAMP(6), as in Flink
    assert one("CAST('2020-01-02 03:04:05' AS TIMESTAMP)")[1] == pa.timestamp("us")
    assert one("DATE '2020-01-02'") == (dt.date(2020, 1, 2), pa.date32())
