"""Values as Java prints them (Flink's Row.toString), computed over whole Arrow arrays.

``flink_text`` renders any column the way Flink's print connector shows it: doubles as
``Double.toString`` (``1.0``, ``1.0E7``), TIMESTAMP as ``LocalDateTime`` (``2020-04-15T08:05``),
TIMESTAMP_LTZ as ``Instant`` (``2020-04-15T08:05:00Z``), BYTES as a Java byte array
(``[1, -1]``), ARRAY as ``[1, 2]``, MAP as ``{k=v}``, a nested ROW as ``+I[1, x]``, NULL as
``null``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NUMBER = r"^(?P<sign>-?)(?P<int>\d*)\.?(?P<frac>\d*)(?:e\+?(?P<exp>-?\d+))?$"
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and constants (NULL if any part is)."""
    return pc.binary_join_element_wise(*parts, "")


def java_double(arr: pa.Array) -> pa.Array:
    """``Double.toString`` (``Float.toString`` for FLOAT) of every value; NULL stays NULL.

    >>> java_double(pa.array([1.0, 1e7, 0.001, 1.5e-7, float("nan")])).to_pylist()
    ['1.0', '1.0E7', '0.001', '1.5E-7', 'NaN']
    """
    shortest = pc.cast(arr, pa.string())  # shortest round-trip digits, e.g. '1.5e-7', '-0'
    parts = pc.extract_regex(shortest, _NUMBER)
    sign, whole, frac = (pc.struct_field(parts, [i]) for i in range(3))
    exp = pc.struct_field(parts, [3])
    exp = pc.cast(pc.if_else(pc.equal(exp, ""), "0", exp), pa.int64())
    digits = join(whole, frac)
    stripped = pc.utf8_ltrim(digits, characters="0")
    # value = 0.D x 10^point with D the significant digits
    zeros = pc.subtract(pc.utf8_length(digits), pc.utf8_length(stripped))
    point = pc.subtract(pc.add(pc.utf8_length(whole), exp), zeros)
    sig = pc.utf8_rtrim(stripped, characters="0")
    magnitude = np.abs(pc.fill_null(pc.cast(arr, pa.float64()), 0.0).to_numpy(zero_copy_only=False))
    plain = pa.array((magnitude >= 1e-3) & (magnitude < 1e7))
    text = pc.if_else(plain, _plain(sig, point), _scientific(sig, point))
    text = pc.if_else(pc.equal(sig, ""), "0.0", text)
    text = join(sign, text)
    text = pc.if_else(pc.is_nan(arr), "NaN", text)
    inf = pc.if_else(pc.greater(arr, 0), "Infinity", "-Infinity")
    return pc.if_else(pc.is_inf(arr), inf, text)


def _plain(sig: pa.Array, point: pa.Array) -> pa.Array:
    """'ddd.ddd' for values in [1e-3, 1e7): the point sits between -2 and 7 digits in."""
    out = pa.nulls(len(sig), pa.string())
    for p in range(-2, 8):
        if p <= 0:
            text = join("0.", "0" * -p, sig)
        else:
            whole = pc.utf8_rpad(pc.utf8_slice_codeunits(sig, 0, p), width=p, padding="0")
            rest = pc.utf8_slice_codeunits(sig, p)
            text = join(whole, ".", pc.if_else(pc.equal(rest, ""), "0", rest))
        out = pc.if_else(pc.equal(point, p), text, out)
    return out


def _scientific(sig: pa.Array, point: pa.Array) -> pa.Array:
    rest = pc.utf8_slice_codeunits(sig, 1)
    rest = pc.if_else(pc.equal(rest, ""), "0", rest)
    exponent = pc.cast(pc.subtract(point, 1), pa.string())
    return join(pc.utf8_slice_codeunits(sig, 0, 1), ".", rest, "E", exponent)


def sub_second_nanos(arr: pa.Array) -> np.ndarray:
    """Nanoseconds within the second of every TIMESTAMP or TIME value (0 for NULL)."""
    per = _PER_SECOND[arr.type.unit]
    width = pa.int32() if pa.types.is_time32(arr.type) else pa.int64()
    ticks = pc.fill_null(arr.cast(width), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return (ticks % per) * (1_000_000_000 // per)


def java_fraction(nanos: np.ndarray) -> pa.Array:
    """'' or '.SSS', '.SSSSSS', '.SSSSSSSSS': the fewest groups of 3 digits, as Java prints."""
    nine = pc.utf8_lpad(pa.array(nanos).cast(pa.string()), width=9, padding="0")
    text = pc.if_else(pa.array(nanos % 1_000 == 0), pc.utf8_slice_codeunits(nine, 0, 6), nine)
    text = pc.if_else(pa.array(nanos % 1_000_000 == 0), pc.utf8_slice_codeunits(nine, 0, 3), text)
    return pc.if_else(pa.array(nanos == 0), "", join(".", text))


def java_timestamp(arr: pa.Array) -> pa.Array:
    """``LocalDateTime.toString`` (TIMESTAMP) or ``Instant.toString`` (TIMESTAMP_LTZ)."""
    return _java_clock(pc.utf8_replace_slice(pc.cast(arr, pa.string()), 10, 11, "T"), 16, arr)


def java_time(arr: pa.Array) -> pa.Array:
    """``LocalTime.toString``: '08:05', '08:05:01', '08:05:01.500'."""
    return _java_clock(pc.cast(arr, pa.string()), 5, arr)


def _java_clock(text: pa.Array, minute_end: int, arr: pa.Array) -> pa.Array:
    """Cut pyarrow's 'yyyy-MM-ddTHH:mm:ss.fff' (or 'HH:mm:ss.fff') to Java's form: seconds
    only when not zero (always for an Instant), the fraction in the fewest groups of 3.
    """
    nanos = sub_second_nanos(arr)
    minutes = pc.utf8_slice_codeunits(text, 0, minute_end)
    seconds = pc.utf8_slice_codeunits(text, minute_end, minute_end + 3)
    full = join(minutes, seconds, java_fraction(nanos))
    if pa.types.is_timestamp(arr.type) and arr.type.tz:
        return join(full, "Z")
    whole_minute = pc.and_(pa.array(nanos == 0), pc.equal(seconds, ":00"))
    return pc.if_else(whole_minute, minutes, full)


def flink_text(arr: pa.Array) -> pa.Array:
    """Every value of ``arr`` as Flink's Row.toString prints it; NULL as 'null'."""
    return pc.fill_null(_text(arr), "null")


def _text(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_dictionary(t):
        return _text(arr.dictionary_decode())
    if pa.types.is_floating(t):
        return java_double(arr)
    if pa.types.is_timestamp(t):
        return java_timestamp(arr)
    if pa.types.is_time(t):
        return java_time(arr)
    if pa.types.is_binary(t):
        return _list_text(_byte_lists(arr), "[", "]")
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _list_text(arr, "[", "]")
    if pa.types.is_map(t):
        offsets, start, stop = _offsets(arr.offsets)
        keys = flink_text(arr.keys.slice(start, stop - start))
        entries = join(keys, "=", flink_text(arr.items.slice(start, stop - start)))
        lists = pa.ListArray.from_arrays(offsets, entries, mask=arr.is_null())
        return _joined(lists, "{", "}")
    if pa.types.is_struct(t):
        fields = [flink_text(child) for child in arr.flatten()]
        if fields:
            body = pc.binary_join_element_wise(*fields, ", ")
        else:
            body = pc.if_else(arr.is_null(), "", "")
        text = join("+I[", body, "]")
        return pc.if_else(arr.is_null(), pa.scalar(None, pa.string()), text)
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    return pc.cast(arr, pa.string())


def _list_text(arr: pa.Array, left: str, right: str) -> pa.Array:
    offsets, start, stop = _offsets(arr.offsets)
    items = flink_text(arr.values.slice(start, stop - start))
    lists = pa.ListArray.from_arrays(offsets, items, mask=arr.is_null())
    return _joined(lists, left, right)


def _offsets(offsets: pa.Array) -> tuple[pa.Array, int, int]:
    """List offsets rebased to 0 (a sliced list array), and the child range they cover."""
    start, stop = offsets[0].as_py(), offsets[-1].as_py()
    return pc.subtract(offsets, start).cast(pa.int32()), start, stop


def _joined(lists: pa.Array, left: str, right: str) -> pa.Array:
    return join(left, pc.binary_join(lists, ", "), right)


def _byte_lists(arr: pa.Array) -> pa.Array:
    """BYTES as lists of signed bytes (Java's byte[] prints as [1, -1])."""
    raw = pa.Array.from_buffers(
        pa.int32(), len(arr) + 1, [None, arr.buffers()[1]], offset=arr.offset
    )
    offsets, start, stop = _offsets(raw)
    data = arr.buffers()[2]
    values = pa.array([], pa.int8())
    if stop > start and data is not None:
        values = pa.Array.from_buffers(pa.int8(), stop - start, [None, data], offset=start)
    return pa.ListArray.from_arrays(offsets, values, mask=arr.is_null())


def sql_timestamp(arr: pa.Array, sep: str = " ") -> pa.Array:
    """'yyyy-MM-dd HH:mm:ss.SSS' with as many fraction digits as the precision (3 for
    TIMESTAMP(3)); TIMESTAMP_LTZ values end in 'Z'. NULL stays NULL.

    >>> sql_timestamp(pa.array([0], pa.timestamp("ms")), "T").to_pylist()
    ['1970-01-01T00:00:00.000']
    """
    text = pc.cast(arr, pa.string())  # pyarrow's form is exactly this one
    return text if sep == " " else pc.utf8_replace_slice(text, 10, 11, sep)


def sql_time(arr: pa.Array) -> pa.Array:
    """'HH:mm:ss' with as many fraction digits as the precision. NULL stays NULL."""
    return pc.cast(arr, pa.string())
