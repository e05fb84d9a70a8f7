"""STRING -> other types, NULL where a string is malformed (CAST turns that NULL into an error).

Every parser validates with a regular expression before handing well-formed text to an Arrow
cast, so one bad row never fails the kernel for the whole batch. Leading and trailing blanks
are ignored, as Flink does; booleans accept TRUE/FALSE/T/F/YES/NO/Y/N/1/0 in any case;
timestamps accept ``yyyy-MM-dd[ HH:mm[:ss[.fffffffff]]]`` with a blank or ``T`` in between.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pt

from streamsql.expr import javafmt
from streamsql.expr.node import EvalContext, null_of
from streamsql.expr.textformat import from_local

INT_RE = r"^[+-]?\d{1,38}$"
FLOAT_RE = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|NaN|Infinity)$"
DECIMAL_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
DATE_RE = r"^(?P<year>\d{1,4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})$"
TIME_RE = (
    r"^(?P<hour>\d{1,2}):(?P<minute>\d{1,2})(?::(?P<second>\d{1,2})(?:\.(?P<frac>\d{1,9}))?)?$"
)
TIMESTAMP_RE = (
    r"^(?P<year>\d{1,4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"(?:[ T](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:\.(?P<frac>\d{1,9}))?)?)?$"
)
_TRUE = pa.array(["true", "t", "yes", "y", "1"])
_FALSE = pa.array(["false", "f", "no", "n", "0"])
_INT_RANGE = {8: 2**7, 16: 2**15, 32: 2**31, 64: 2**63}


def _where(ok: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(ok, values, null_of(values.type))


def _between(values: pa.Array, low: int, high: int) -> pa.Array:
    """``low < values < high`` for a decimal array (bounds beyond its precision always hold)."""
    t = values.type
    ok = pa.repeat(pa.scalar(True), len(values))
    digits = t.precision - t.scale
    if len(str(abs(low))) <= digits:
        ok = pc.and_(ok, pc.greater(values, pa.scalar(low, pa.decimal128(38, 0)).cast(t)))
    if len(str(abs(high))) <= digits:
        ok = pc.and_(ok, pc.less(values, pa.scalar(high, pa.decimal128(38, 0)).cast(t)))
    return ok


def parse_int(text: pa.Array, t: pa.DataType) -> pa.Array:
    ok = pc.match_substring_regex(text, INT_RE)
    wide = pc.cast(_where(ok, text), pa.decimal128(38, 0))
    bound = _INT_RANGE[t.bit_width]
    wide = _where(_between(wide, -bound - 1, bound), wide)
    return pc.cast(wide, t)


def parse_decimal(text: pa.Array, t: pa.DataType) -> pa.Array:
    ok = pc.match_substring_regex(text, DECIMAL_RE)
    text = _where(ok, text)
    # keep one digit beyond the scale (enough to round HALF_UP) so the Arrow cast is exact
    keep = t.scale + 1
    text = pc.replace_substring_regex(text, rf"^([+-]?\d*\.\d{{{keep}}})\d+$", r"\1")
    wide = pc.cast(text, pa.decimal128(38, keep))
    rounded = pc.round(wide, t.scale, round_mode="half_towards_infinity")
    limit = 10 ** (t.precision - t.scale)
    fits = _between(rounded, -limit, limit)
    return pc.cast(_where(fits, rounded), t)


def parse_float(text: pa.Array, t: pa.DataType) -> pa.Array:
    ok = pc.match_substring_regex(text, FLOAT_RE)
    return pc.cast(_where(ok, text), t)


def parse_bool(text: pa.Array) -> pa.Array:
    lowered = pc.utf8_lower(text)
    yes = pc.is_in(lowered, value_set=_TRUE)
    no = pc.is_in(lowered, value_set=_FALSE)
    return _where(pc.or_(yes, no), yes)


def parse_timestamp(text: pa.Array, t: pa.DataType, ctx: EvalContext) -> pa.Array:
    naive = javafmt.parse(text, TIMESTAMP_RE, t.unit)
    return from_local(naive, ctx) if t.tz else naive


def from_text(text: pa.Array, t: pa.DataType, ctx: EvalContext) -> pa.Array:
    """Parse a string array into type ``t``; malformed strings become NULL."""
    if pt.is_binary(t) or pt.is_large_binary(t):
        return pc.cast(text, t)
    text = pc.utf8_trim_whitespace(text)
    if pt.is_boolean(t):
        return parse_bool(text)
    if pt.is_integer(t):
        return parse_int(text, t)
    if pt.is_decimal(t):
        return parse_decimal(text, t)
    if pt.is_floating(t):
        return parse_float(text, t)
    if pt.is_timestamp(t):
        return parse_timestamp(text, t, ctx)
    if pt.is_date(t):
        return pc.cast(javafmt.parse(text, DATE_RE, "s"), t)
    if pt.is_time(t):
        return pc.cast(javafmt.parse(text, TIME_RE, "ms"), t)
    raise TypeError(f"cannot parse strings as {t}")
