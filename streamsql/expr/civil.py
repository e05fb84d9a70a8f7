"""Vectorized civil-calendar arithmetic: dates from fields, month lengths, adding months.

Arrow extracts fields from timestamps but has no kernel that builds one from fields or adds
calendar months; these do it with integer kernels over whole arrays (Howard Hinnant's
days-from-civil algorithm).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from streamsql.expr.node import Value

MS_PER_DAY = 86_400_000
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_MONTH_DAYS = pa.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], pa.int64())
# 12 eras of 400 years: shifting years by this keeps them non-negative, so that the
# truncating integer division of Arrow is a floor division
_ERA_SHIFT = 4800


def i64(v: Value) -> Value:
    return pc.cast(v, pa.int64())


def floordiv(a: Value, b: int) -> Value:
    """Floor division of an integer array by a positive constant."""
    q = pc.divide(a, b)
    return pc.subtract(q, pc.cast(pc.greater(pc.multiply(q, b), a), pa.int64()))


def is_leap(y: Value) -> Value:
    by4 = pc.equal(pc.remainder(y, 4), 0)
    by100 = pc.equal(pc.remainder(y, 100), 0)
    by400 = pc.equal(pc.remainder(y, 400), 0)
    return pc.or_(pc.and_(by4, pc.invert(by100)), by400)


def days_in_month(y: Value, m: Value) -> Value:
    """Days in month ``m`` (1-12) of year ``y``; month must be valid."""
    base = pc.take(_MONTH_DAYS, pc.subtract(m, 1))
    feb29 = pc.and_(pc.equal(m, 2), is_leap(y))
    return pc.add(base, pc.cast(feb29, pa.int64()))


def days_from_civil(y: Value, m: Value, d: Value) -> Value:
    """Days since 1970-01-01 of the proleptic Gregorian date (y, m, d), int64."""
    y = pc.add(pc.subtract(i64(y), pc.cast(pc.less_equal(m, 2), pa.int64())), _ERA_SHIFT)
    era = pc.divide(y, 400)
    yoe = pc.subtract(y, pc.multiply(era, 400))
    mp = pc.remainder(pc.add(i64(m), 9), 12)
    doy = pc.add(pc.divide(pc.add(pc.multiply(mp, 153), 2), 5), pc.subtract(i64(d), 1))
    doe = pc.add(
        pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)), doy
    )
    return pc.subtract(pc.add(pc.multiply(era, 146097), doe), 719468 + 12 * 146097)


def valid_date(y: Value, m: Value, d: Value) -> Value:
    """Whether (y, m, d) is a real date (NULL fields give NULL)."""
    month_ok = pc.and_(pc.greater_equal(m, 1), pc.less_equal(m, 12))
    safe_m = pc.if_else(month_ok, m, 1)
    return pc.and_(
        month_ok,
        pc.and_(pc.greater_equal(d, 1), pc.less_equal(d, days_in_month(y, safe_m))),
    )


def epoch_units(ts: Value) -> Value:
    """A timestamp (or date) as an int64 count of its unit (days for a date)."""
    if pa.types.is_date64(ts.type):
        return pc.divide(pc.cast(ts, pa.int64()), MS_PER_DAY)
    return pc.cast(ts, pa.int64())


def add_months(ts: Value, months: Value) -> Value:
    """``ts`` plus ``months`` calendar months, the day clamped to the month's length.

    Works for timestamps of any unit and for date32.
    """
    t = ts.type
    y, m, d = i64(pc.year(ts)), i64(pc.month(ts)), i64(pc.day(ts))
    total = pc.add(pc.add(pc.multiply(y, 12), pc.subtract(m, 1)), i64(months))
    y2 = floordiv(total, 12)
    m2 = pc.add(pc.subtract(total, pc.multiply(y2, 12)), 1)
    d2 = pc.min_element_wise(d, days_in_month(y2, m2), skip_nulls=False)
    days = days_from_civil(y2, m2, d2)
    if pa.types.is_date32(t):
        return pc.cast(pc.cast(days, pa.int32()), t)
    per_day = PER_SECOND[t.unit] * 86_400
    naive = pa.timestamp(t.unit)
    whole = epoch_units(pc.cast(ts, naive) if t.tz else ts)
    time_of_day = pc.subtract(whole, pc.multiply(floordiv(whole, per_day), per_day))
    out = pc.cast(pc.add(pc.multiply(days, per_day), time_of_day), naive)
    return pc.cast(out, t) if t.tz else out


def months_between(a: Value, b: Value) -> Value:
    """Whole calendar months from ``a`` to ``b`` (negative when b < a), as Calcite counts."""
    ya, ma = i64(pc.year(a)), i64(pc.month(a))
    yb, mb = i64(pc.year(b)), i64(pc.month(b))
    months = pc.subtract(pc.add(pc.multiply(yb, 12), mb), pc.add(pc.multiply(ya, 12), ma))
    shifted = add_months(a, months)
    too_far = pc.and_(pc.greater(months, 0), pc.greater(shifted, b))
    too_short = pc.and_(pc.less(months, 0), pc.less(shifted, b))
    return pc.add(pc.subtract(months, pc.cast(too_far, pa.int64())), pc.cast(too_short, pa.int64()))
