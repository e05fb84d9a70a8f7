"""Nested values: ROW field access and ROW(...), ARRAY[...] and MAP[...] constructors, element
access ``arr[i]`` (1-based, NULL out of range) and ``map[key]`` (NULL when absent), CARDINALITY,
ELEMENT.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp
from sqlglot.expressions.builders import apply_index_offset

from streamsql.errors import ExecError, did_you_mean
from streamsql.expr import registry
from streamsql.expr.casts import coerce
from streamsql.expr.compare import unify
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, Value, as_array, lift, null_of
from streamsql.expr.promote import common_type
from streamsql.expr.vectorize import by_params
from streamsql.parser.dialect import Flink, to_sql
from streamsql.types import sql_type_name


def field_access(c: Compiler, e: exp.Expression, node: Node, name: str, at: exp.Expression) -> Node:
    """``node.name`` for a ROW-typed node (exact name, else a unique case-insensitive match)."""
    t = node.type
    if not pt.is_struct(t):
        raise c.error(f"cannot access field '{name}' of {sql_type_name(t)}", at)
    names = [f.name for f in t]
    if name not in names:
        folded = [n for n in names if n.lower() == name.lower()]
        if len(folded) != 1:
            raise c.error(
                f"unknown field '{name}' in {sql_type_name(t)}",
                at,
                hint=did_you_mean(name, names, "field"),
            )
        name = folded[0]
    index = names.index(name)
    f = node.fn
    get = lift(lambda v: pc.struct_field(v, [index]))
    return c.make(e, lambda b, ctx: get(f(b, ctx)), [node])


@registry.handles(exp.Dot)
def _dot(c: Compiler, e: exp.Dot) -> Node:
    field = e.expression
    name = field.name if isinstance(field, (exp.Identifier, exp.Column)) else None
    if name is None:
        raise c.error(f"unsupported field access {to_sql(e)}", e)
    return field_access(c, e, c.compile(e.this), name, field)


def list_get(lists: pa.Array, index0: Value) -> pa.Array:
    """Element ``index0`` (0-based, per row or constant) of each list; NULL out of range."""
    lengths = pc.list_value_length(lists)
    ok = pc.and_(pc.greater_equal(index0, 0), pc.less(index0, lengths))
    starts = pc.cast(lists.offsets.slice(0, len(lists)), pa.int64())
    positions = pc.if_else(ok, pc.add(starts, index0), null_of(pa.int64()))
    return pc.take(lists.values, positions)


def _one_based(e: exp.Bracket) -> exp.Expression:
    """The index as the user wrote it (1-based).

    The Flink dialect has INDEX_OFFSET = 1, so sqlglot stores ``arr[1]`` as ``arr[0]`` when it
    can tell the index is an integer at parse time; ask sqlglot to undo exactly what it did,
    on copies stripped of any types a later stage attached.
    """
    this, index = e.this.copy(), e.expressions[0].copy()
    for node in (*this.walk(), *index.walk()):
        node.type = None
    return apply_index_offset(this, [index], Flink.INDEX_OFFSET, dialect=Flink)[0]


def _is_map_keyword(c: Compiler, e: exp.Expression) -> bool:
    """``MAP[...]`` reaches us as a subscript of a column named MAP (when there is none)."""
    if not isinstance(e, exp.Column) or e.name.upper() != "MAP" or e.table:
        return False
    return not any(n.lower() == "map" for n in c.schema.names)


@registry.handles(exp.Bracket)
def _bracket(c: Compiler, e: exp.Bracket) -> Node:
    if _is_map_keyword(c, e.this):
        return map_constructor(c, e)
    if len(e.expressions) != 1:
        raise c.error("a subscript takes one index", e)
    base = c.compile(e.this)
    t = base.type
    if pt.is_list(t) or pt.is_large_list(t):
        index = c.compile(_one_based(e))
        c.expect(index, pt.is_integer, "an ARRAY subscript", "an integer")
        index = coerce(c, index, pa.int64())
        f, g = base.fn, index.fn
        get = lift(lambda lists, i: list_get(lists, pc.subtract(i, 1)))
        return c.make(e, lambda b, ctx: get(f(b, ctx), g(b, ctx)), [base, index])
    if pt.is_map(t):
        key = coerce(c, c.compile(e.expressions[0]), t.key_type)
        f, g = base.fn, key.fn

        def lookup_rows(b, ctx):
            return by_params(
                lambda m, k: pc.map_lookup(m, pa.scalar(k, t.key_type), "first"),
                [f(b, ctx)],
                [g(b, ctx)],
                t.item_type,
            )

        return c.make(e, lookup_rows, [base, key])
    raise c.error(f"cannot subscript {sql_type_name(t)}", e)


def _interleave(columns: list[Value], n: int) -> pa.Array:
    """Row-major concatenation: row 0's values, then row 1's, ..."""
    k = len(columns)
    flat = pa.concat_arrays([as_array(v, n) for v in columns])
    order = np.arange(n * k, dtype=np.int64)
    indices = (order % k) * n + order // k
    return flat.take(pa.array(indices))


@registry.handles(exp.Array, names=("ARRAY",))
def _array(c: Compiler, e: exp.Array) -> Node:
    if not e.expressions:
        raise c.error("ARRAY[] needs at least one element", e)
    nodes = [c.compile(x) for x in e.expressions]
    t = common_type([n.type for n in nodes])
    if t is None:
        names = ", ".join(dict.fromkeys(sql_type_name(n.type) for n in nodes))
        raise c.error(f"ARRAY elements have incompatible types {names}", e)
    t = pa.int32() if pt.is_null(t) else t
    nodes = [coerce(c, n, t) for n in nodes]
    fns = [n.fn for n in nodes]
    k = len(nodes)

    @lift
    def build(*columns: pa.Array) -> pa.Array:
        n = len(columns[0])
        offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, _interleave(list(columns), n), type=pa.list_(t))

    return c.make(e, lambda b, ctx: build(*(f(b, ctx) for f in fns)), nodes)


def map_constructor(c: Compiler, e: exp.Bracket) -> Node:
    """MAP[k1, v1, k2, v2, ...]."""
    items = [c.compile(x) for x in e.expressions]
    if not items or len(items) % 2:
        raise c.error("MAP[...] needs key, value pairs", e)
    keys, values = unify(c, e, items[0::2], "use as MAP keys"), items[1::2]
    vt = common_type([v.type for v in values])
    if vt is None:
        raise c.error("MAP values have incompatible types", e)
    vt = pa.int32() if pt.is_null(vt) else vt
    values = [coerce(c, v, vt) for v in values]
    kt = keys[0].type
    kfns, vfns = [k.fn for k in keys], [v.fn for v in values]
    pairs = len(keys)

    @lift
    def build(*columns: pa.Array) -> pa.Array:
        n = len(columns[0])
        offsets = pa.array(np.arange(0, n * pairs + 1, pairs, dtype=np.int32))
        ks = _interleave(list(columns[:pairs]), n)
        vs = _interleave(list(columns[pairs:]), n)
        return pa.MapArray.from_arrays(offsets, ks, vs, type=pa.map_(kt, vt))

    return c.make(
        e,
        lambda b, ctx: build(*(f(b, ctx) for f in kfns), *(g(b, ctx) for g in vfns)),
        [*keys, *values],
    )


@registry.function("ROW")
@registry.handles(exp.Tuple)
def _row(c: Compiler, e: exp.Expression) -> Node:
    if not e.expressions:
        raise c.error("ROW() needs at least one field", e)
    nodes = [c.compile(x) for x in e.expressions]
    nodes = [coerce(c, n, pa.int32()) if pt.is_null(n.type) else n for n in nodes]
    names = [f"EXPR${i}" for i in range(len(nodes))]
    fns = [n.fn for n in nodes]
    make = lift(lambda *cols: pc.make_struct(*cols, field_names=names))
    return c.make(e, lambda b, ctx: make(*(f(b, ctx) for f in fns)), nodes)


def _lengths(v: pa.Array) -> pa.Array:
    if pt.is_map(v.type):
        v = (
            pa.ListArray.from_arrays(v.offsets, v.keys, mask=pc.is_null(v))
            if len(v)
            else pa.array([], pa.list_(v.type.key_type))
        )
    return pc.cast(pc.list_value_length(v), pa.int32())


@registry.function("CARDINALITY")
def _cardinality(c: Compiler, e: exp.Anonymous) -> Node:
    if len(e.expressions) != 1:
        raise c.error("CARDINALITY takes 1 argument", e)
    node = c.compile(e.expressions[0])
    c.expect(node, lambda t: pt.is_list(t) or pt.is_map(t), "CARDINALITY", "an ARRAY or MAP")
    f = node.fn
    size = lift(_lengths)
    return c.make(e, lambda b, ctx: size(f(b, ctx)), [node])


@registry.function("ELEMENT")
def _element(c: Compiler, e: exp.Anonymous) -> Node:
    if len(e.expressions) != 1:
        raise c.error("ELEMENT takes 1 argument", e)
    node = c.compile(e.expressions[0])
    c.expect(node, pt.is_list, "ELEMENT", "an ARRAY")
    f = node.fn

    @lift
    def element(lists: pa.Array) -> pa.Array:
        sizes = pc.list_value_length(lists)
        if pc.any(pc.greater(sizes, 1)).as_py():
            raise ExecError(f"ELEMENT of an array with more than one element in {to_sql(e)}")
        return list_get(lists, 0)

    return c.make(e, lambda b, ctx: element(f(b, ctx)), [node], can_fail=True)
