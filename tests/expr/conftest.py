"""Shared fixtures for the expression tests: parse one expression, compile it, evaluate it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
import sqlglot

from streamsql.expr import Compiled, EvalContext, compile_expr
from streamsql.parser.dialect import Flink

#: A small batch with a column of every kind the tests need; row 2 is mostly NULL.
SAMPLE = pa.record_batch(
    {
        "a": pa.array([1, 2, None, -7], pa.int32()),
        "b": pa.array([10, 0, 3, 2], pa.int64()),
        "x": pa.array([1.5, -2.5, None, 0.0], pa.float64()),
        "d": pa.array(
            [Decimal("1.25"), Decimal("-3.50"), None, Decimal("0.01")], pa.decimal128(5, 2)
        ),
        "s": pa.array(["hello", "World", None, " 42 "], pa.string()),
        "f": pa.array([True, False, None, True], pa.bool_()),
        "ts": pa.array(
            [
                dt.datetime(2020, 4, 15, 8, 5, 0, 123000),
                dt.datetime(2021, 1, 31, 23, 59, 59),
                None,
                dt.datetime(1969, 12, 31, 23, 0),
            ],
            pa.timestamp("ms"),
        ),
        "day": pa.array([dt.date(2020, 1, 31), None, dt.date(2020, 2, 29), dt.date(1970, 1, 1)]),
        "arr": pa.array([[1, 2, 3], [], None, [4]], pa.list_(pa.int32())),
        "r": pa.array(
            [{"x": 1, "y": "a"}, None, {"x": None, "y": "c"}, {"x": 4, "y": None}],
            pa.struct([("x", pa.int32()), ("y", pa.string())]),
        ),
        "m": pa.array(
            [[("k", 1)], [], None, [("k", 2), ("j", 3)]], pa.map_(pa.string(), pa.int32())
        ),
    }
)


def parse(sql: str) -> sqlglot.exp.Expression:
    """The expression of ``SELECT <sql> FROM t`` (so column 8 of line 1 is where it starts)."""
    return sqlglot.parse_one(f"SELECT {sql} FROM t", read=Flink).expressions[0]


def compile_sql(sql: str, schema: pa.Schema = SAMPLE.schema) -> Compiled:
    return compile_expr(parse(sql), schema)


def evaluate(
    sql: str, batch: pa.RecordBatch = SAMPLE, ctx: EvalContext | None = None
) -> tuple[list, pa.DataType]:
    """Values and type of ``sql`` over ``batch``, checking the evaluate() contract on the way."""
    compiled = compile_sql(sql, batch.schema)
    out = compiled.evaluate(batch, ctx)
    assert isinstance(out, pa.Array)
    assert out.type == compiled.type
    assert len(out) == batch.num_rows
    empty = compiled.evaluate(batch.slice(0, 0), ctx)
    assert empty.type == compiled.type and len(empty) == 0
    return out.to_pylist(), compiled.type


@pytest.fixture
def sample() -> pa.RecordBatch:
    return SAMPLE


@pytest.fixture
def expr():
    """``expr(sql)``: the sqlglot tree of one expression."""
    return parse


@pytest.fixture
def ev():
    """``ev(sql, batch=SAMPLE, ctx=None) -> (values, type)``."""
    return evaluate


@pytest.fixture
def one():
    """``one(sql, ctx=None)``: the value of a constant expression (evaluated on one row)."""

    def run(sql: str, ctx: EvalContext | None = None):
        values, t = evaluate(sql, SAMPLE.slice(0, 1), ctx)
        return values[0], t

    return run
