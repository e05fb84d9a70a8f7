"""Property test: where Flink and DuckDB agree, our results equal DuckDB's on random batches.

Left out on purpose (the engines differ): integer division and modulo, GREATEST/LEAST (DuckDB
skips NULLs), overflow (DuckDB raises), NaN ordering, SUBSTRING with start <= 0.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsql import duck
from streamsql.expr import compile_expr
from streamsql.parser.dialect import Flink

SCHEMA = pa.schema(
    [
        ("i1", pa.int32()),
        ("i2", pa.int64()),
        ("d1", pa.float64()),
        ("d2", pa.float64()),
        ("s1", pa.string()),
        ("s2", pa.string()),
        ("b1", pa.bool_()),
        ("b2", pa.bool_()),
    ]
)

# (ours, DuckDB's) spelling; one string when both read the same
EXPRESSIONS: list[str | tuple[str, str]] = [
    "i1 + i2",
    "i1 - i2 * 3",
    "-i1 + 1",
    "i1 * i1",
    "d1 * d2 + i1",
    "d1 - d2 / 4",
    "ABS(i1) + ABS(d1)",
    "i1 < i2",
    "d1 >= i1",
    "i2 <> d2",
    "s1 = s2",
    "s1 < s2",
    "s1 >= 'b'",
    "b1 AND b2",
    "b1 OR NOT b2",
    "(i1 > 0) AND (b1 OR s1 IS NULL)",
    "NOT (b1 OR b2) OR i1 = i2",
    "b1 IS TRUE",
    "b2 IS NOT FALSE",
    "i1 IS NULL OR d1 IS NOT NULL",
    "i1 IN (1, 2, NULL)",
    "i1 NOT IN (0, 1, 2)",
    "s1 IN ('a', 'ab', s2)",
    "i1 BETWEEN -5 AND i2",
    "i1 IS DISTINCT FROM i2",
    "UPPER(s1)",
    "LOWER(s1) || s2",
    ("CHAR_LENGTH(s1)", "length(s1)"),
    "REPLACE(s1, 'a', 'xy')",
    "SUBSTRING(s1, 2)",
    "SUBSTRING(s1, 2, 3)",
    ("SUBSTRING(s1 FROM 1 FOR 2)", "substring(s1, 1, 2)"),
    "COALESCE(i1, i2, 0)",
    "COALESCE(s1, s2)",
    "CASE WHEN i1 > i2 THEN s1 ELSE s2 END",
    "CASE i1 WHEN 1 THEN 'one' WHEN 2 THEN 'two' ELSE s1 END",
    "CASE WHEN b1 THEN d1 WHEN b2 THEN i1 END",
    "NULLIF(i1, 1)",
    "ROUND(d1)",
    "s1 LIKE 'a%'",
    "s2 NOT LIKE '%b_'",
]

ints = st.one_of(st.none(), st.integers(-30_000, 30_000))
floats = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64))
texts = st.one_of(st.none(), st.text(alphabet="abAB_é %", max_size=6))
bools = st.one_of(st.none(), st.booleans())
rows = st.lists(st.tuples(ints, ints, floats, floats, texts, texts, bools, bools), max_size=12)


def parse(sql: str) -> sqlglot.exp.Expression:
    return sqlglot.parse_one(f"SELECT {sql} FROM t", read=Flink).expressions[0]


def _batch(values: list[tuple]) -> pa.RecordBatch:
    columns = list(zip(*values, strict=True)) if values else [[] for _ in SCHEMA]
    return pa.RecordBatch.from_arrays(
        [pa.array(list(col), f.type) for col, f in zip(columns, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def _same(ours: object, theirs: object) -> bool:
    if isinstance(ours, float) and isinstance(theirs, (float, int)):
        return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-12)
    return ours == theirs


@pytest.fixture(scope="module")
def con():
    connection = duck.connect()
    yield connection
    connection.close()


def _split(item: str | tuple[str, str]) -> tuple[str, str]:
    return item if isinstance(item, tuple) else (item, item)


@pytest.fixture(scope="module")
def programs():
    """Every expression compiled once, with DuckDB's spelling of it."""
    return [
        (compile_expr(parse(ours), SCHEMA), theirs) for ours, theirs in map(_split, EXPRESSIONS)
    ]


@settings(max_examples=150, deadline=None)
@given(values=rows)
def test_agrees_with_duckdb(con, programs, values):
    batch = _batch(values)
    select = ", ".join(f"{theirs} AS c{i}" for i, (_, theirs) in enumerate(programs))
    expected = duck.query_arrow(con, f"SELECT {select} FROM t", t=batch)
    for i, (program, _) in enumerate(programs):
        got = program.evaluate(batch)
        assert got.type == program.type
        want = expected.column(f"c{i}").to_pylist()
        for row, (g, w) in enumerate(zip(got.to_pylist(), want, strict=True)):
            assert _same(g, w), f"{EXPRESSIONS[i]} on {values[row]}: ours {g!r}, DuckDB {w!r}"


def test_oracle_notices_a_difference(con):
    # the comparison above can fail: DuckDB's GREATEST skips NULLs, Flink's does not
    batch = _batch([(1, None, None, None, None, None, None, None)])
    ours = compile_expr(parse("GREATEST(i1, i2)"), SCHEMA).evaluate(batch)
    theirs = duck.query_arrow(con, "SELECT GREATEST(i1, i2) AS r FROM t", t=batch).column("r")
    assert ours.to_pylist() == [None]
    assert not _same(ours.to_pylist()[0], theirs.to_pylist()[0])
