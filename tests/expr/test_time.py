"""Intervals, timestamp arithmetic, EXTRACT, FLOOR/CEIL, formatting/parsing and clocks."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from streamsql.errors import BindError
from streamsql.expr import EvalContext, interval_ms

TS = pa.timestamp("ms")
LTZ = pa.timestamp("ms", tz="UTC")
UTC = dt.timezone.utc
BIGINT = pa.int64()
#: 2020-04-15 08:05:00.123 UTC
NOW = 1586937900123
SHANGHAI = EvalContext(now_ms=lambda: NOW, watermark_ms=1000, time_zone="Asia/Shanghai")


@pytest.mark.parametrize(
    ("sql", "ms"),
    [
        ("INTERVAL '10' SECOND", 10_000),
        ("INTERVAL '1' MINUTE", 60_000),
        ("INTERVAL '2' HOURS", 7_200_000),
        ("INTERVAL '1' DAY", 86_400_000),
        ("INTERVAL '3' MILLISECOND", 3),
        ("INTERVAL '2' SECONDS", 2_000),
        ("INTERVAL '1.5' SECOND", 1_500),
        ("INTERVAL '5' SECOND(3)", 5_000),
        ("INTERVAL '00:01:30' HOUR TO SECOND", 90_000),
        ("INTERVAL '01:30' MINUTE TO SECOND", 90_000),
        ("INTERVAL '1 02:00:00' DAY TO SECOND", 93_600_000),
        ("INTERVAL '10 seconds'", 10_000),
        ("-INTERVAL '1' SECOND", -1_000),
    ],
)
def test_interval_ms(expr, sql, ms):
    assert interval_ms(expr(sql)) == ms


def test_interval_ms_rejects_what_has_no_fixed_length(expr):
    with pytest.raises(BindError, match="no fixed length") as err:
        interval_ms(expr("INTERVAL '1' MONTH"))
    assert err.value.span is not None
    with pytest.raises(BindError, match="expected a constant INTERVAL, got a"):
        interval_ms(expr("a"))


def test_interval_values(one):
    assert one("INTERVAL '10' SECOND") == (dt.timedelta(seconds=10), pa.duration("ms"))


def test_timestamp_plus_minus_interval(ev):
    values, t = ev("ts + INTERVAL '1' SECOND")
    assert t == TS
    assert values[:2] == [dt.datetime(2020, 4, 15, 8, 5, 1, 123000), dt.datetime(2021, 2, 1)]
    assert values[2] is None
    assert ev("ts - INTERVAL '1' MONTH")[0][1] == dt.datetime(2020, 12, 31, 23, 59, 59)
    assert ev("INTERVAL '1' HOUR + ts")[0][3] == dt.datetime(1970, 1, 1, 0, 0)
    assert ev("day + INTERVAL '1' DAY") == (
        [dt.date(2020, 2, 1), None, dt.date(2020, 3, 1), dt.date(1970, 1, 2)],
        pa.date32(),
    )
    # month arithmetic clamps the day to the end of the month
    assert ev("day + INTERVAL '1' MONTH")[0][0] == dt.date(2020, 2, 29)
    assert ev("day - INTERVAL '1' YEAR")[0][2] == dt.date(2019, 2, 28)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("EXTRACT(YEAR FROM ts)", [2020, 2021, None, 1969]),
        ("EXTRACT(QUARTER FROM ts)", [2, 1, None, 4]),
        ("EXTRACT(MONTH FROM ts)", [4, 1, None, 12]),
        ("EXTRACT(WEEK FROM ts)", [16, 4, None, 1]),
        ("EXTRACT(DAY FROM ts)", [15, 31, None, 31]),
        ("EXTRACT(DOW FROM ts)", [4, 1, None, 4]),
        ("EXTRACT(DOY FROM ts)", [106, 31, None, 365]),
        ("EXTRACT(HOUR FROM ts)", [8, 23, None, 23]),
        ("EXTRACT(MINUTE FROM ts)", [5, 59, None, 0]),
        ("EXTRACT(SECOND FROM ts)", [0, 59, None, 0]),
        ("EXTRACT(MILLISECOND FROM ts)", [123, 59000, None, 0]),
        ("EXTRACT(EPOCH FROM ts)", [1586937900, 1612137599, None, -3600]),
        ("EXTRACT(YEAR FROM day)", [2020, None, 2020, 1970]),
        ("YEAR(ts)", [2020, 2021, None, 1969]),
        ("QUARTER(day)", [1, None, 1, 1]),
        ("MONTH(ts)", [4, 1, None, 12]),
        ("WEEK(ts)", [16, 4, None, 1]),
        ("DAYOFMONTH(ts)", [15, 31, None, 31]),
        ("DAYOFWEEK(ts)", [4, 1, None, 4]),
        ("DAYOFYEAR(day)", [31, None, 60, 1]),
        ("HOUR(ts)", [8, 23, None, 23]),
        ("MINUTE(ts)", [5, 59, None, 0]),
        ("SECOND(ts)", [0, 59, None, 0]),
    ],
)
def test_fields(ev, sql, expected):
    assert ev(sql) == (expected, BIGINT)


def test_fields_of_ltz_use_the_session_time_zone(ev):
    assert ev("HOUR(CAST(ts AS TIMESTAMP_LTZ(3)))", ctx=SHANGHAI)[0] == [8, 23, None, 23]
    assert ev("HOUR(TO_TIMESTAMP_LTZ(0, 3))", ctx=SHANGHAI)[0] == [8] * 4


def test_floor_ceil_to_unit(ev):
    assert ev("FLOOR(ts TO HOUR)")[0][0] == dt.datetime(2020, 4, 15, 8)
    assert ev("CEIL(ts TO MINUTE)")[0][:2] == [
        dt.datetime(2020, 4, 15, 8, 6),
        dt.datetime(2021, 2, 1),
    ]
    assert ev("CEIL(TIMESTAMP '2020-01-01 10:00:00' TO HOUR)")[0][0] == dt.datetime(2020, 1, 1, 10)
    # weeks start on Sunday (Calcite)
    assert ev("FLOOR(ts TO WEEK)")[0][0] == dt.datetime(2020, 4, 12)
    assert ev("FLOOR(day TO MONTH)") == (
        [dt.date(2020, 1, 1), None, dt.date(2020, 2, 1), dt.date(1970, 1, 1)],
        pa.date32(),
    )
    assert ev("DATE_TRUNC('day', ts)")[0][1] == dt.datetime(2021, 1, 31)
    assert ev("FLOOR(ts TO YEAR)")[1] == TS


def test_timestampadd_and_diff(ev, one):
    assert ev("TIMESTAMPADD(HOUR, 2, ts)")[0][3] == dt.datetime(1970, 1, 1, 1)
    assert ev("TIMESTAMPADD(MONTH, a, ts)")[0][:2] == [
        dt.datetime(2020, 5, 15, 8, 5, 0, 123000),
        dt.datetime(2021, 3, 31, 23, 59, 59),
    ]
    assert ev("TIMESTAMPADD(DAY, 1, day)")[1] == pa.date32()
    end = "TIMESTAMP '2021-01-01 00:00:00'"
    assert ev(f"TIMESTAMPDIFF(DAY, ts, {end})") == ([260, -30, None, 18628], pa.int32())
    assert ev(f"TIMESTAMPDIFF(MONTH, ts, {end})")[0] == [8, 0, None, 612]
    assert ev("TIMESTAMPDIFF(SECOND, ts, ts + INTERVAL '90' SECOND)")[0] == [90, 90, None, 90]
    assert one("TIMESTAMPDIFF(YEAR, DATE '2020-03-01', DATE '2021-02-28')") == (0, pa.int32())


def test_date_format(ev, one):
    assert ev("DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm:ss')")[0] == [
        "2020-04-15 08:05:00",
        "2021-01-31 23:59:59",
        None,
        "1969-12-31 23:00:00",
    ]
    pattern = "yyyy/M/d h:mm:ss.SSS a EEE ''at'' HH''h''"  # quotes doubled inside SQL
    assert ev(f"DATE_FORMAT(ts, '{pattern}')")[0][0] == "2020/4/15 8:05:00.123 AM Wed at 08h"
    assert one("DATE_FORMAT('2020-01-02 10:00:00', 'yyyyMMdd')") == ("20200102", pa.string())
    assert one("DATE_FORMAT(DATE '2020-01-02', 'dd.MM.yy')") == ("02.01.20", pa.string())
    assert one("DATE_FORMAT(TIMESTAMP '2020-04-19 00:00:00', 'u D')") == ("7 110", pa.string())
    with pytest.raises(BindError, match="unsupported pattern letter 'Q'"):
        one("DATE_FORMAT(ts, 'Q')")
    with pytest.raises(BindError, match="TO_TIMESTAMP: unsupported pattern letter 'u'"):
        one("TO_TIMESTAMP('7', 'u')")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("TO_TIMESTAMP('2020-01-01 10:00:00')", dt.datetime(2020, 1, 1, 10)),
        ("TO_TIMESTAMP('2020-01-01 10:00:00.5')", dt.datetime(2020, 1, 1, 10, 0, 0, 500000)),
        ("TO_TIMESTAMP('01/02/2020', 'dd/MM/yyyy')", dt.datetime(2020, 2, 1)),
        ("TO_TIMESTAMP('20200102 0304', 'yyyyMMdd HHmm')", dt.datetime(2020, 1, 2, 3, 4)),
        (
            "TO_TIMESTAMP('05 Apr 2020 01:30 PM', 'dd MMM yyyy hh:mm a')",
            dt.datetime(2020, 4, 5, 13, 30),
        ),
        ("TO_TIMESTAMP('2020-02-30 00:00:00')", None),
        ("TO_TIMESTAMP('garbage')", None),
        ("TO_TIMESTAMP('2020-01-01', 'yyyy-MM-dd HH')", None),
    ],
)
def test_to_timestamp(one, sql, expected):
    assert one(sql) == (expected, TS)


def test_to_date_and_unix_time(one):
    assert one("TO_DATE('2020-02-29')") == (dt.date(2020, 2, 29), pa.date32())
    assert one("TO_DATE('20200229', 'yyyyMMdd')") == (dt.date(2020, 2, 29), pa.date32())
    assert one("TO_DATE('2021-02-29')") == (None, pa.date32())
    assert one("TO_TIMESTAMP_LTZ(1586937900123, 3)") == (
        dt.datetime(2020, 4, 15, 8, 5, 0, 123000, tzinfo=UTC),
        LTZ,
    )
    assert one("TO_TIMESTAMP_LTZ(1586937900, 0)")[0] == dt.datetime(2020, 4, 15, 8, 5, tzinfo=UTC)
    assert one("FROM_UNIXTIME(0)") == ("1970-01-01 00:00:00", pa.string())
    assert one("FROM_UNIXTIME(0, 'yyyy-MM-dd HH')", SHANGHAI) == ("1970-01-01 08", pa.string())
    assert one("UNIX_TIMESTAMP('1970-01-01 08:00:01')", SHANGHAI) == (1, BIGINT)
    assert one("UNIX_TIMESTAMP('1970/01/02', 'yyyy/MM/dd')") == (86400, BIGINT)
    assert one("UNIX_TIMESTAMP('nope')") == (None, BIGINT)
    assert one("UNIX_TIMESTAMP()", SHANGHAI) == (NOW // 1000, BIGINT)


def test_clocks_read_the_context(one):
    instant = dt.datetime(2020, 4, 15, 8, 5, 0, 123000, tzinfo=UTC)
    assert one("NOW()", SHANGHAI) == (instant, LTZ)
    assert one("CURRENT_TIMESTAMP", SHANGHAI) == (instant, LTZ)
    assert one("PROCTIME()", SHANGHAI) == (instant, LTZ)
    assert one("LOCALTIMESTAMP", SHANGHAI) == (dt.datetime(2020, 4, 15, 16, 5, 0, 123000), TS)
    assert one("CURRENT_DATE", SHANGHAI) == (dt.date(2020, 4, 15), pa.date32())
    assert one("CURRENT_TIME", SHANGHAI) == (dt.time(16, 5, 0, 123000), pa.time32("ms"))
    assert one("CAST(NOW() AS STRING)", SHANGHAI) == ("2020-04-15 16:05:00.123", pa.string())


def test_current_watermark(one):
    assert one("CURRENT_WATERMARK(ts)", SHANGHAI) == (dt.datetime(1970, 1, 1, 0, 0, 1), TS)
    assert one("CURRENT_WATERMARK(ts)") == (None, TS)
    with pytest.raises(BindError, match="CURRENT_WATERMARK expects a TIMESTAMP column, got INT"):
        one("CURRENT_WATERMARK(a)")
    with pytest.raises(BindError, match="CURRENT_WATERMARK takes the rowtime column"):
        one("CURRENT_WATERMARK(ts + INTERVAL '1' SECOND)")
