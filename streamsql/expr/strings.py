"""String functions: || CONCAT CONCAT_WS UPPER LOWER INITCAP CHAR_LENGTH SUBSTRING TRIM LTRIM
RTRIM REPLACE SPLIT_INDEX LPAD RPAD POSITION LOCATE REPEAT REVERSE LEFT RIGHT.

Lengths and positions count code points, positions are 1-based. Flink's choices kept here:
``||`` and CONCAT return NULL when any argument is NULL while CONCAT_WS skips NULL arguments;
SUBSTRING takes a negative start from the end and a 0 start as 1, and a negative length gives
NULL; SPLIT_INDEX is 0-based and NULL out of range; LPAD/RPAD shorten a longer string to the
requested length and return NULL for a negative length or an empty pad.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt
from sqlglot import exp

from streamsql.expr import registry
from streamsql.expr.casts import cast_node, coerce
from streamsql.expr.compiler import Compiler
from streamsql.expr.node import Node, Value, lift, lift_first, null_of
from streamsql.expr.promote import is_string
from streamsql.expr.vectorize import by_params

STR = pa.string()
INT = pa.int32()
_PREFIX_TABLE_LIMIT = 1024  # LPAD/RPAD lengths up to this use a table of all pad prefixes


def text_arg(c: Compiler, e: exp.Expression | None, what: str) -> Node:
    """A STRING argument (NULL is accepted)."""
    node = c.compile(e)
    c.expect(node, is_string, what, "STRING")
    return coerce(c, node, STR)


def int_arg(c: Compiler, e: exp.Expression | None, what: str) -> Node:
    """An integer argument, as BIGINT."""
    node = c.compile(e)
    c.expect(node, pt.is_integer, what, "an integer")
    return coerce(c, node, pa.int64())


def as_text(c: Compiler, e: exp.Expression) -> Node:
    """Any scalar argument converted to STRING (for the lenient concatenations)."""
    node = c.compile(e)
    return node if is_string(node.type) else cast_node(c, e, node, STR, strict=True)


def apply_kernel(
    c: Compiler,
    e: exp.Expression,
    kernel: Callable[..., Value],
    nodes: Sequence[Node],
    params: Sequence[Node] = (),
    out: pa.DataType = STR,
) -> Node:
    """A node computing ``kernel(*data, *param_values)``.

    ``params`` are arguments the kernel needs as Python values (a pattern, a width): constants
    are passed once, columns go through :func:`by_params`.
    """
    fns = [n.fn for n in nodes]
    pfns = [p.fn for p in params]
    if not params:
        return c.make(e, lambda b, ctx: kernel(*(f(b, ctx) for f in fns)), nodes)
    return c.make(
        e,
        lambda b, ctx: by_params(kernel, [f(b, ctx) for f in fns], [g(b, ctx) for g in pfns], out),
        [*nodes, *params],
    )


@registry.handles(exp.DPipe, exp.Concat, names=("CONCAT",))
def _concat(c: Compiler, e: exp.Expression) -> Node:
    args = [e.this, e.expression] if isinstance(e, exp.DPipe) else e.expressions
    nodes = [as_text(c, a) for a in args]
    return apply_kernel(c, e, lambda *xs: pc.binary_join_element_wise(*xs, ""), nodes)


@lift
def concat_ws(sep: pa.Array, *values: pa.Array) -> pa.Array:
    """Join the non-NULL values with ``sep``; NULL only when ``sep`` is NULL."""
    # Arrow's join drops the rows where every value is NULL: give those an empty first value
    all_null = pc.is_null(values[0])
    for v in values[1:]:
        all_null = pc.and_(all_null, pc.is_null(v))
    first = pc.if_else(all_null, "", values[0])
    return pc.binary_join_element_wise(first, *values[1:], sep, null_handling="skip")


@registry.handles(exp.ConcatWs, names=("CONCAT_WS",))
def _concat_ws(c: Compiler, e: exp.ConcatWs) -> Node:
    sep, *args = e.expressions
    if not args:
        raise c.error("CONCAT_WS needs a separator and at least one value", e)
    nodes = [text_arg(c, sep, "CONCAT_WS"), *(as_text(c, a) for a in args)]
    return apply_kernel(c, e, concat_ws, nodes)


def _unary(kernel, name: str):
    def handler(c: Compiler, e: exp.Func) -> Node:
        return apply_kernel(c, e, kernel, [text_arg(c, e.this, name)])

    return handler


registry.handles(exp.Upper, names=("UPPER", "UCASE"))(_unary(pc.utf8_upper, "UPPER"))
registry.handles(exp.Lower, names=("LOWER", "LCASE"))(_unary(pc.utf8_lower, "LOWER"))
registry.handles(exp.Initcap, names=("INITCAP",))(_unary(pc.utf8_title, "INITCAP"))
registry.handles(exp.Reverse, names=("REVERSE",))(_unary(pc.utf8_reverse, "REVERSE"))


@registry.handles(exp.Length, names=("CHAR_LENGTH", "CHARACTER_LENGTH", "LENGTH"))
def _length(c: Compiler, e: exp.Length) -> Node:
    return apply_kernel(c, e, pc.utf8_length, [text_arg(c, e.this, "CHAR_LENGTH")])


def nulls_like(s: Value) -> Value:
    """STRING NULLs shaped like ``s`` (a scalar or an array of the same length)."""
    return pc.if_else(True, null_of(STR), s)


@lift_first
def substring(s: Value, pos: int, length: int | None) -> Value:
    """Flink's SUBSTRING for constant start and length."""
    if length is not None and length < 0:
        return nulls_like(s)
    if pos > 0:
        stop = pos - 1 + length if length is not None else None
        return pc.utf8_slice_codeunits(s, pos - 1, stop)
    if pos == 0:
        return pc.utf8_slice_codeunits(s, 0, length)
    stop = pos + length if length is not None and pos + length < 0 else None
    sliced = pc.utf8_slice_codeunits(s, pos, stop)
    return pc.if_else(pc.less(pc.utf8_length(s), -pos), "", sliced)


@registry.handles(exp.Substring, names=("SUBSTRING", "SUBSTR"))
def _substring(c: Compiler, e: exp.Substring) -> Node:
    s = text_arg(c, e.this, "SUBSTRING")
    params = [int_arg(c, e.args.get("start"), "SUBSTRING")]
    if e.args.get("length") is not None:
        params.append(int_arg(c, e.args["length"], "SUBSTRING"))
        return apply_kernel(c, e, substring, [s], params)
    return apply_kernel(c, e, lambda x, p: substring(x, p, None), [s], params)


@registry.handles(exp.Left, exp.Right, names=("LEFT", "RIGHT"))
def _left_right(c: Compiler, e: exp.Func) -> Node:
    left = isinstance(e, exp.Left)
    s = text_arg(c, e.this, "LEFT" if left else "RIGHT")
    n = int_arg(c, e.expression, "LEFT" if left else "RIGHT")

    def cut(x: Value, k: int) -> Value:
        if k <= 0:
            return pc.utf8_slice_codeunits(x, 0, 0)
        return pc.utf8_slice_codeunits(x, 0, k) if left else pc.utf8_slice_codeunits(x, -k)

    return apply_kernel(c, e, cut, [s], [n])


@registry.handles(exp.Trim, names=("TRIM", "LTRIM", "RTRIM", "BTRIM"))
def _trim(c: Compiler, e: exp.Trim) -> Node:
    s = text_arg(c, e.this, "TRIM")
    position = (e.args.get("position") or "BOTH").upper()
    kernel = {"BOTH": pc.utf8_trim, "LEADING": pc.utf8_ltrim, "TRAILING": pc.utf8_rtrim}[position]
    chars = e.args.get("expression")
    if chars is None:
        return apply_kernel(c, e, lambda x: kernel(x, " "), [s])
    return apply_kernel(c, e, lambda x, cs: kernel(x, cs), [s], [text_arg(c, chars, "TRIM")])


@registry.handles(exp.Replace, names=("REPLACE",))
def _replace(c: Compiler, e: exp.Replace) -> Node:
    s = text_arg(c, e.this, "REPLACE")
    old = text_arg(c, e.expression, "REPLACE")
    new = text_arg(c, e.args.get("replacement"), "REPLACE")

    def replace(x: Value, a: str, b: str) -> Value:
        return pc.replace_substring(x, a, b) if a else x

    return apply_kernel(c, e, replace, [s], [old, new])


@lift_first
def split_index(s: Value, delim: str, index: int) -> Value:
    """The ``index``-th (0-based) piece of ``s`` split by ``delim``, NULL out of range."""
    if index < 0:
        return nulls_like(s)
    parts = pc.split_pattern(s, delim) if delim else pc.utf8_split_whitespace(s)
    enough = pc.and_(pc.greater(pc.list_value_length(parts), index), pc.not_equal(s, ""))
    parts = pc.if_else(enough, parts, pa.scalar(None, parts.type))
    return pc.list_element(parts, index)


@registry.function("SPLIT_INDEX")
def _split_index(c: Compiler, e: exp.Anonymous) -> Node:
    if len(e.expressions) != 3:
        raise c.error("SPLIT_INDEX takes 3 arguments (string, delimiter, index)", e)
    s, delim, index = e.expressions
    params = [text_arg(c, delim, "SPLIT_INDEX"), int_arg(c, index, "SPLIT_INDEX")]
    return apply_kernel(c, e, split_index, [text_arg(c, s, "SPLIT_INDEX")], params)


@lift_first
def pad(s: Value, length: int, fill: str, left: bool) -> Value:
    """Flink's LPAD/RPAD for a constant length and pad string."""
    if length < 0 or fill == "":
        return nulls_like(s)
    if length == 0:
        return pc.utf8_slice_codeunits(s, 0, 0)
    lacking = pc.max_element_wise(pc.subtract(length, pc.utf8_length(s)), 0, skip_nulls=False)
    full = (fill * (length // len(fill) + 1))[:length]
    if len(fill) == 1:
        padding = pc.binary_repeat(fill, lacking)
    elif length <= _PREFIX_TABLE_LIMIT:
        # the pad of every row is a prefix of one string: pick it by how much the row lacks
        prefixes = pa.array([full[:k] for k in range(length + 1)], STR)
        padding = pc.take(prefixes, lacking)
    else:
        padding = by_params(lambda _, k: pa.scalar(full[:k]), [s], [lacking], STR)
    joined = pc.binary_join_element_wise(*((padding, s) if left else (s, padding)), "")
    return pc.utf8_slice_codeunits(joined, 0, length)


@registry.handles(exp.Pad, names=("LPAD", "RPAD"))
def _pad(c: Compiler, e: exp.Pad) -> Node:
    left = bool(e.args.get("is_left"))
    name = "LPAD" if left else "RPAD"
    s = text_arg(c, e.this, name)
    length = int_arg(c, e.expression, name)
    fill = e.args.get("fill_pattern")
    fill_node = text_arg(c, fill, name) if fill is not None else c.constant(e, pa.scalar(" "))
    return apply_kernel(c, e, lambda x, n, f: pad(x, n, f, left), [s], [length, fill_node])


@lift_first
def locate(s: Value, needle: str, start: int = 1) -> Value:
    """1-based position of ``needle`` in ``s`` from ``start`` on; 0 when absent (Java indexOf)."""
    offset = max(start - 1, 0)
    if needle == "":
        return pc.cast(
            pc.add(pc.min_element_wise(pc.utf8_length(s), offset, skip_nulls=False), 1), INT
        )
    tail = pc.utf8_slice_codeunits(s, offset) if offset else s
    parts = pc.split_pattern(tail, needle, max_splits=1)
    found = pc.greater(pc.list_value_length(parts), 1)
    before = pc.utf8_length(pc.list_element(parts, 0))
    return pc.cast(pc.if_else(found, pc.add(before, offset + 1), 0), INT)


@registry.handles(exp.StrPosition, names=("POSITION", "LOCATE"))
def _position(c: Compiler, e: exp.StrPosition) -> Node:
    s = text_arg(c, e.this, "POSITION")
    params = [text_arg(c, e.args.get("substr"), "POSITION")]
    if e.args.get("position") is not None:
        params.append(int_arg(c, e.args["position"], "LOCATE"))
    return apply_kernel(c, e, locate, [s], params, out=INT)


@registry.handles(exp.Repeat, names=("REPEAT",))
def _repeat(c: Compiler, e: exp.Repeat) -> Node:
    s = text_arg(c, e.this, "REPEAT")
    n = int_arg(c, e.args.get("times"), "REPEAT")

    def repeat(x: Value, k: Value) -> Value:
        return pc.binary_repeat(x, pc.max_element_wise(k, 0, skip_nulls=False))

    return apply_kernel(c, e, repeat, [s, n])
