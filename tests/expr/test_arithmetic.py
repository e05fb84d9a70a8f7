"""Arithmetic, numeric promotion, literals and math functions."""

from __future__ import annotations

import math
from decimal import Decimal

import pyarrow as pa
import pytest


@pytest.mark.parametrize(
    ("sql", "expected", "type_"),
    [
        ("1", 1, pa.int32()),
        ("2147483647", 2147483647, pa.int32()),
        ("2147483648", 2147483648, pa.int64()),
        ("-2147483648", -2147483648, pa.int32()),
        ("99999999999999999999", Decimal("99999999999999999999"), pa.decimal128(20, 0)),
        ("1.5", Decimal("1.5"), pa.decimal128(2, 1)),
        ("0.05", Decimal("0.05"), pa.decimal128(2, 2)),
        ("1e3", 1000.0, pa.float64()),
        ("'x'", "x", pa.string()),
        ("TRUE", True, pa.bool_()),
        ("NULL", None, pa.null()),
    ],
)
def test_literal_types(one, sql, expected, type_):
    assert one(sql) == (expected, type_)


def test_integer_promotion(ev):
    assert ev("a + 1") == ([2, 3, None, -6], pa.int32())
    assert ev("a + b") == ([11, 2, None, -5], pa.int64())
    assert ev("a * b - 1") == ([9, -1, None, -15], pa.int64())
    assert ev("-a") == ([-1, -2, None, 7], pa.int32())
    assert ev("CAST(a AS TINYINT) + CAST(1 AS SMALLINT)")[1] == pa.int16()


def test_mixed_promotion(ev):
    assert ev("a + x") == ([2.5, -0.5, None, -7.0], pa.float64())
    assert ev("CAST(a AS FLOAT) + 1")[1] == pa.float32()
    assert ev("d + x") == ([2.75, -6.0, None, 0.01], pa.float64())


def test_integer_division_truncates_toward_zero(ev, one):
    assert one("-7 / 2") == (-3, pa.int32())
    assert one("7 / -2") == (-3, pa.int32())
    assert ev("a / 2") == ([0, 1, None, -3], pa.int32())
    assert ev("b / a") == ([10, 0, None, 0], pa.int64())


def test_division_and_modulo_by_zero_are_null(ev, one):
    assert ev("a / 0") == ([None] * 4, pa.int32())
    assert ev("a / b") == ([0, None, None, -3], pa.int64())
    assert ev("a % b") == ([1, None, None, -1], pa.int64())
    assert ev("x / 0.0")[0] == [None] * 4
    assert one("1.5 / 0") == (None, pa.decimal128(13, 12))


def test_modulo_takes_the_sign_of_the_dividend(ev, one):
    assert ev("a % 2") == ([1, 0, None, -1], pa.int32())
    assert ev("MOD(a, -3)") == ([1, 2, None, -1], pa.int32())
    assert one("MOD(-7.5, 2)") == (Decimal("-1.5"), pa.decimal128(2, 1))


def test_overflow_wraps(one):
    assert one("2147483647 + 1") == (-2147483648, pa.int32())
    assert one("CAST(127 AS TINYINT) + CAST(1 AS TINYINT)") == (-128, pa.int8())


def test_decimal_arithmetic_follows_flink_types(ev, one):
    assert ev("d + 1") == (
        [Decimal("2.25"), Decimal("-2.50"), None, Decimal("1.01")],
        pa.decimal128(13, 2),
    )
    assert ev("d * d")[1] == pa.decimal128(10, 4)
    assert one("1.0 / 3") == (Decimal("0.333333333333"), pa.decimal128(13, 12))
    # HALF_UP rounding at the result scale
    assert one("2.0 / 3") == (Decimal("0.666666666667"), pa.decimal128(13, 12))
    assert ev("d / d")[1] == pa.decimal128(13, 8)


def test_null_operands(one):
    assert one("NULL + 1") == (None, pa.int32())
    assert one("1.5 * NULL") == (None, pa.decimal128(4, 2))  # NULL takes the DECIMAL(2, 1) type


@pytest.mark.parametrize(
    ("sql", "expected", "type_"),
    [
        ("ABS(-3)", 3, pa.int32()),
        ("ABS(-1.25)", Decimal("1.25"), pa.decimal128(3, 2)),
        ("CEIL(1.2E0)", 2.0, pa.float64()),
        ("CEILING(-1.5)", Decimal("-1"), pa.decimal128(2, 0)),
        ("FLOOR(-1.5)", Decimal("-2"), pa.decimal128(2, 0)),
        ("FLOOR(7)", 7, pa.int32()),
        ("ROUND(2.5)", Decimal("3"), pa.decimal128(2, 0)),
        ("ROUND(-2.5)", Decimal("-3"), pa.decimal128(2, 0)),
        ("ROUND(2.675, 2)", Decimal("2.68"), pa.decimal128(4, 2)),
        ("ROUND(CAST(2.675 AS DOUBLE), 2)", 2.68, pa.float64()),
        ("ROUND(-2.5E0)", -3.0, pa.float64()),
        ("ROUND(1250, -2)", 1300, pa.int32()),
        ("ROUND(3.14159, 3)", Decimal("3.142"), pa.decimal128(5, 3)),
        ("TRUNCATE(3.789, 1)", Decimal("3.7"), pa.decimal128(3, 1)),
        ("TRUNCATE(-3.7E0)", -3.0, pa.float64()),
        ("POWER(2, 10)", 1024.0, pa.float64()),
        ("SQRT(16)", 4.0, pa.float64()),
        ("EXP(0)", 1.0, pa.float64()),
        ("LN(1)", 0.0, pa.float64()),
        ("LOG10(1000)", 3.0, pa.float64()),
        ("LOG2(8)", 3.0, pa.float64()),
        ("LOG(3, 81)", 4.0, pa.float64()),
        ("SIGN(-5)", -1, pa.int32()),
        ("SIGN(0.5)", Decimal("1.0"), pa.decimal128(2, 1)),
        ("PI()", math.pi, pa.float64()),
        ("DEGREES(PI())", 180.0, pa.float64()),
    ],
)
def test_math_functions(one, sql, expected, type_):
    value, t = one(sql)
    assert t == type_
    assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected


def test_math_on_bad_input_follows_java(one):
    assert math.isnan(one("SQRT(-1)")[0])
    assert one("LN(0)")[0] == -math.inf


def test_rand(ev):
    values, t = ev("RAND()")
    assert t == pa.float64() and all(0 <= v < 1 for v in values)
    assert ev("RAND(7)")[0] == ev("RAND(7)")[0]
    ints, t = ev("RAND_INTEGER(3)")
    assert t == pa.int32() and all(0 <= v < 3 for v in ints)
    assert ev("RAND_INTEGER(1, b)")[0][1] is None  # bound 0 gives NULL
