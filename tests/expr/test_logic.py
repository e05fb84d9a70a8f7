"""Comparisons, NULL tests, IN, BETWEEN, Kleene logic and conditionals."""

from __future__ import annotations

import pyarrow as pa
import pytest

from streamsql.errors import BindError, ExecError

BOOL = pa.bool_()


def test_comparisons(ev):
    assert ev("a > b") == ([False, True, None, False], BOOL)
    assert ev("a = 1") == ([True, False, None, False], BOOL)
    assert ev("a <> 1") == ([False, True, None, True], BOOL)
    assert ev("a != 2") == ([True, False, None, True], BOOL)
    assert ev("x <= a") == ([False, True, None, False], BOOL)
    assert ev("d >= 0") == ([True, False, None, True], BOOL)
    assert ev("s < 'i'") == ([True, True, None, True], BOOL)


def test_temporal_comparisons(ev):
    assert ev("ts > '2020-06-01 00:00:00'")[0] == [False, True, None, False]
    assert ev("ts >= DATE '2020-04-15'")[0] == [True, True, None, False]
    assert ev("day = TIMESTAMP '2020-02-29 00:00:00'")[0] == [False, None, True, False]


def test_string_and_number_do_not_compare(ev):
    with pytest.raises(BindError, match="cannot compare STRING and INT"):
        ev("s = 1")


def test_null_tests(ev):
    assert ev("a IS NULL") == ([False, False, True, False], BOOL)
    assert ev("a IS NOT NULL") == ([True, True, False, True], BOOL)
    assert ev("f IS TRUE") == ([True, False, False, True], BOOL)
    assert ev("f IS NOT TRUE") == ([False, True, True, False], BOOL)
    assert ev("f IS FALSE") == ([False, True, False, False], BOOL)
    assert ev("f IS NOT FALSE") == ([True, False, True, True], BOOL)
    assert ev("a IS DISTINCT FROM 2") == ([True, False, True, True], BOOL)
    assert ev("a IS NOT DISTINCT FROM NULL") == ([False, False, True, False], BOOL)


def test_in_lists_follow_sql_null_semantics(ev):
    assert ev("a IN (1, 2)") == ([True, True, None, False], BOOL)
    assert ev("a IN (1, NULL)") == ([True, None, None, None], BOOL)
    assert ev("a NOT IN (1, NULL)") == ([False, None, None, None], BOOL)
    assert ev("a NOT IN (5, 6)") == ([True, True, None, True], BOOL)
    assert ev("a IN (b, 1)") == ([True, False, None, False], BOOL)
    assert ev("s IN ('hello', 'x')") == ([True, False, None, False], BOOL)


def test_between(ev):
    assert ev("a BETWEEN 0 AND 2") == ([True, True, None, False], BOOL)
    assert ev("a BETWEEN 2 AND 0") == ([False, False, None, False], BOOL)
    assert ev("a BETWEEN SYMMETRIC 2 AND 0") == ([True, True, None, False], BOOL)
    assert ev("a NOT BETWEEN 0 AND 1") == ([False, True, None, True], BOOL)


def test_kleene_logic(ev):
    assert ev("f AND a > 0") == ([True, False, None, False], BOOL)
    assert ev("f OR NULL") == ([True, None, None, True], BOOL)
    assert ev("f AND NULL") == ([None, False, None, None], BOOL)
    assert ev("NOT f") == ([False, True, None, False], BOOL)
    assert ev("(a > 0) OR (a IS NULL)") == ([True, True, True, False], BOOL)


def test_case(ev):
    assert ev("CASE WHEN a > 1 THEN 'big' WHEN a > 0 THEN 'small' ELSE 'neg' END") == (
        ["small", "big", "neg", "neg"],
        pa.string(),
    )
    assert ev("CASE a WHEN 1 THEN 'one' WHEN 2 THEN 'two' END") == (
        ["one", "two", None, None],
        pa.string(),
    )
    assert ev("CASE WHEN f THEN a ELSE b END") == ([1, 0, 3, -7], pa.int64())
    assert ev("CASE WHEN f THEN 1.5 ELSE 2 END")[1] == pa.decimal128(11, 1)


def test_if_coalesce_nullif(ev):
    assert ev("IF(f, a, b)") == ([1, 0, 3, -7], pa.int64())
    assert ev("IF(a > 1, 'y', 'n')") == (["n", "y", "n", "n"], pa.string())
    assert ev("COALESCE(a, b)") == ([1, 2, 3, -7], pa.int64())
    assert ev("COALESCE(s, 'none')") == (["hello", "World", "none", " 42 "], pa.string())
    assert ev("IFNULL(a, 0)") == ([1, 2, 0, -7], pa.int32())
    assert ev("NULLIF(a, 2)") == ([1, None, None, -7], pa.int32())


def test_greatest_least_are_null_if_any_argument_is(ev):
    assert ev("GREATEST(a, b)") == ([10, 2, None, 2], pa.int64())
    assert ev("LEAST(a, 1, x)") == ([1.0, -2.5, None, -7.0], pa.float64())
    assert ev("GREATEST(s, 'b')") == (["hello", "b", None, "b"], pa.string())


def test_branches_see_only_their_rows(ev):
    # a CAST that would fail on 'hello' and 'World' is evaluated only where the guard lets it
    evaluate = ev
    guarded = "CASE WHEN s IN ('hello', 'World') THEN 0 ELSE CAST(s AS INT) END"
    assert evaluate(guarded) == ([0, 0, None, 42], pa.int32())
    assert evaluate("IF(a < 0, CAST(s AS INT), -1)")[0] == [-1, -1, -1, 42]
    assert evaluate("a < 0 AND CAST(s AS INT) > 0")[0] == [False, False, None, True]
    assert evaluate("a > 0 OR CAST(s AS INT) > 0")[0] == [True, True, None, True]
    assert evaluate("COALESCE(CAST(a AS STRING), CAST(CAST(s AS INT) AS STRING))")[0][2] is None
    with pytest.raises(ExecError, match="cannot CAST 'hello' to INT"):
        evaluate("CASE WHEN a > 0 THEN CAST(s AS INT) END")


def test_conditional_type_errors(ev):
    with pytest.raises(BindError, match="CASE branches have incompatible types INT, STRING"):
        ev("CASE WHEN f THEN 1 ELSE 'x' END")
    with pytest.raises(BindError, match="WHEN expects BOOLEAN, got INT"):
        ev("CASE WHEN a THEN 1 END")
    with pytest.raises(BindError, match="AND expects BOOLEAN, got STRING"):
        ev("f AND s")


def test_date_comparison(ev):
    assert ev("day < CAST('2020-02-01' AS DATE)") == ([True, None, False, True], BOOL)
