"""ROW fields, ARRAY and MAP access and constructors, CARDINALITY, ELEMENT."""

from __future__ import annotations

import pyarrow as pa
import pytest
from sqlglot import exp

from streamsql.errors import BindError, ExecError
from streamsql.expr import compile_expr

INT = pa.int32()


def test_row_field_access(ev):
    assert ev("r.x") == ([1, None, None, 4], INT)
    assert ev("r.y") == (["a", None, "c", None], pa.string())
    assert ev("r.X")[0] == [1, None, None, 4]  # case-insensitive when unique
    assert ev("r.x + 1") == ([2, None, None, 5], INT)


def test_dot_nodes_from_the_binder(sample):
    # the binder hands over field access as exp.Dot
    tree = exp.Dot(this=exp.column("r"), expression=exp.to_identifier("y"))
    assert compile_expr(tree, sample.schema).evaluate(sample).to_pylist() == ["a", None, "c", None]


def test_unknown_field(ev):
    with pytest.raises(BindError, match=r"unknown field 'z' in ROW<`x` INT, `y` STRING>") as err:
        ev("r.z")
    assert err.value.hint == "available field names: x, y"
    assert (err.value.span.line, err.value.span.column) == (1, 10)


def test_array_subscripts_are_one_based(ev, one):
    assert ev("arr[1]") == ([1, None, None, 4], INT)
    assert ev("arr[3]")[0] == [3, None, None, None]
    assert ev("arr[0]")[0] == [None] * 4
    assert ev("arr[-1]")[0] == [None] * 4
    assert ev("arr[a]")[0] == [1, None, None, None]
    assert ev("arr[a + 1]")[0] == [2, None, None, None]
    assert one("ARRAY[10, 20, 30][2]") == (20, INT)


def test_map_subscripts(ev, one):
    assert ev("m['k']") == ([1, None, None, 2], INT)
    assert ev("m['j']")[0] == [None, None, None, 3]
    assert ev("m[s]")[0] == [None] * 4
    assert one("MAP['a', 1, 'b', 2]['b']") == (2, INT)


def test_constructors(ev):
    assert ev("ARRAY[a, b]") == ([[1, 10], [2, 0], [None, 3], [-7, 2]], pa.list_(pa.int64()))
    values, t = ev("ROW(a, s)")
    assert t == pa.struct([("EXPR$0", INT), ("EXPR$1", pa.string())])
    assert values[0] == {"EXPR$0": 1, "EXPR$1": "hello"}
    assert ev("(a, s)")[1] == t
    values, t = ev("MAP['x', a]")
    assert t == pa.map_(pa.string(), INT)
    assert values[0] == [("x", 1)]


def test_cardinality_and_element(ev):
    assert ev("CARDINALITY(arr)") == ([3, 0, None, 1], INT)
    assert ev("CARDINALITY(m)") == ([1, 0, None, 2], INT)
    assert ev("ELEMENT(ARRAY[a])")[0] == [1, 2, None, -7]
    with pytest.raises(ExecError, match="ELEMENT of an array with more than one element"):
        ev("ELEMENT(arr)")


def test_subscript_errors(ev):
    with pytest.raises(BindError, match="cannot subscript INT"):
        ev("a[1]")
    with pytest.raises(BindError, match="an ARRAY subscript expects an integer, got STRING"):
        ev("arr['x']")
    with pytest.raises(BindError, match="ARRAY elements have incompatible types INT, STRING"):
        ev("ARRAY[1, 'x']")
