"""Bind and run-time errors: messages, hints and positions in the SQL text."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from streamsql.errors import BindError, ExecError
from streamsql.expr import compile_expr, compile_predicate


def where(err: pytest.ExceptionInfo) -> tuple[int, int]:
    span = err.value.span
    assert span is not None
    return span.line, span.column


def test_unknown_column_suggests_close_names(sample, expr):
    schema = pa.schema([("price", pa.int64()), ("auction", pa.int64()), ("bidder", pa.int64())])
    with pytest.raises(BindError, match="unknown column 'pirce'") as err:
        compile_expr(expr("auction +\n  pirce * 2"), schema)
    assert err.value.hint == "did you mean 'price'?"
    assert where(err) == (2, 3)
    assert err.value.span.end - err.value.span.start == len("pirce")


def test_column_names_match_case_insensitively_when_unique(expr):
    schema = pa.schema([("Price", pa.int64())])
    assert compile_expr(expr("price"), schema).columns == frozenset({"Price"})
    ambiguous = pa.schema([("Price", pa.int64()), ("PRICE", pa.int64())])
    with pytest.raises(BindError, match="ambiguous"):
        compile_expr(expr("price"), ambiguous)


def test_unknown_function_points_at_its_name(sample, expr):
    with pytest.raises(BindError, match="unknown function UPPPER") as err:
        compile_expr(expr("a + UPPPER(s)"), sample.schema)
    assert err.value.hint.startswith("did you mean 'UPPER'")
    assert where(err) == (1, 12)


def test_aggregates_are_refused(sample, expr):
    with pytest.raises(BindError, match="aggregate function COUNT is not allowed here") as err:
        compile_expr(expr("1 + COUNT(a)"), sample.schema)
    assert where(err) == (1, 12)
    with pytest.raises(BindError, match="aggregate function SUM is not allowed here"):
        compile_expr(expr("SUM(a)"), sample.schema)


@pytest.mark.parametrize(
    ("sql", "message", "column"),
    [
        ("'a' + 1", "cannot apply '+' to STRING and INT", 8),
        ("a - s", "cannot apply '-' to INT and STRING", 8),
        ("s > 1", "cannot compare STRING and INT", 8),
        ("UPPER(a)", "UPPER expects STRING, got INT", 14),
        ("ABS(s)", "ABS expects a number, got STRING", 12),
        ("NOT a", "NOT expects BOOLEAN, got INT", 12),
        ("EXTRACT(HOUR FROM day)", "cannot extract HOUR from DATE", 26),
        ("ts - ts", "cannot apply '-' to TIMESTAMP(3) and TIMESTAMP(3)", 8),
    ],
)
def test_type_errors_name_sql_types_and_point_at_the_expression(sample, expr, sql, message, column):
    with pytest.raises(BindError, match=re.escape(message)) as err:
        compile_expr(expr(sql), sample.schema)
    assert where(err) == (1, column)


def test_predicate_must_be_boolean(sample, expr):
    with pytest.raises(BindError, match="WHERE condition must be BOOLEAN, got INT") as err:
        compile_predicate(expr("a + 1"), sample.schema)
    assert where(err) == (1, 8)
    assert compile_predicate(expr("a > 1"), sample.schema).type == pa.bool_()
    assert compile_predicate(expr("NULL"), sample.schema).type == pa.bool_()


def test_runtime_errors_are_exec_errors_with_the_sql(sample, expr):
    compiled = compile_expr(expr("CAST(s AS DOUBLE)"), sample.schema)
    with pytest.raises(ExecError, match=r"cannot CAST 'hello' to DOUBLE in CAST\(s AS DOUBLE\)"):
        compiled.evaluate(sample)
    # a kernel error that is not ours is wrapped too, never a raw pyarrow exception
    bad = compile_expr(expr("DATE_FORMAT(ts, s)"), sample.schema)
    with pytest.raises(ExecError, match=r"cannot evaluate DATE_FORMAT\(ts, s\)"):
        bad.evaluate(sample)


def test_subqueries_are_refused(sample, expr):
    with pytest.raises(BindError, match="IN \\(subquery\\) is not supported"):
        compile_expr(expr("a IN (SELECT 1)"), sample.schema)
