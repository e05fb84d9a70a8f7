"""Vectorized datagen values: a column of n rows per call, for every SQL type.

Random values are a pure function of (seed, column path, stream, row number): a counter-based
generator (numpy's Philox) is positioned at the first row, so a column's values do not depend
on the batch size, on the other columns, or on where a restarted source resumes.
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsql.connectors.datagen_spec import FieldGen

_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8
)
_DAY_MS = 86_400_000


@dataclasses.dataclass(frozen=True)
class Rows:
    """Which rows to generate: ``n`` rows from row number ``first`` of stream ``stream``."""

    seed: int
    stream: int
    first: int
    n: int
    now_ms: int

    def scaled(self, k: int) -> Rows:
        """The rows of the elements when every row holds ``k`` of them."""
        return dataclasses.replace(self, first=self.first * k, n=self.n * k)


def raw_words(rows: Rows, path: str, words: int) -> np.ndarray:
    """``words`` random uint64 per row, shape (n, words), a pure function of the row number."""
    digest = hashlib.blake2b(f"{path}#{rows.stream}".encode(), digest_size=8).digest()
    key = [rows.seed & 0xFFFF_FFFF_FFFF_FFFF, int.from_bytes(digest, "little")]
    # Word k of the stream comes from Philox block k // 4 (each block yields 4 words).
    first = rows.first * words
    gen = np.random.Philox(key=key, counter=first // 4)
    skip = first % 4
    return gen.random_raw(rows.n * words + skip)[skip:].reshape(rows.n, words)


def uniform(rows: Rows, path: str) -> np.ndarray:
    """Floats in [0, 1), one per row."""
    return (raw_words(rows, path, 1)[:, 0] >> np.uint64(11)) * (1.0 / (1 << 53))


def integers(rows: Rows, path: str, low: int, high: int) -> np.ndarray:
    """int64 in [low, high] (inclusive), one per row; ranges wider than int64 wrap correctly."""
    u = raw_words(rows, path, 1)[:, 0]
    span = high - low + 1
    if span < 2**64:
        u = u % np.uint64(span)
    return (u + np.uint64(low % 2**64)).view(np.int64)


def generate(gen: FieldGen, rows: Rows) -> pa.Array:
    """``rows.n`` values of one column (or subfield)."""
    values = _sequence(gen, rows) if gen.kind == "sequence" else _random(gen, rows)
    if gen.null_rate > 0:
        nulls = pa.array(uniform(rows, gen.path + "/null") < gen.null_rate)
        values = pc.if_else(nulls, pa.scalar(None, values.type), values)
    return values


def _sequence(gen: FieldGen, rows: Rows) -> pa.Array:
    t = gen.type
    offsets = np.arange(rows.first, rows.first + rows.n, dtype=np.int64)
    if pa.types.is_decimal(t):
        unscaled = int(decimal.Decimal(gen.start).scaleb(t.scale).to_integral_value())
        return _decimals(unscaled + offsets * 10**t.scale, t)
    if pa.types.is_floating(t):
        return pa.array(float(gen.start) + offsets, pa.float64()).cast(t)
    values = pa.array(int(gen.start) + offsets, pa.int64())
    return values.cast(t)  # a STRING sequence holds the numbers as text, as in Flink


def _random(gen: FieldGen, rows: Rows) -> pa.Array:
    t = gen.type
    if pa.types.is_boolean(t):
        return pa.array((raw_words(rows, gen.path, 1)[:, 0] >> np.uint64(63)) == 1)
    if pa.types.is_integer(t):
        bits = t.bit_width - (1 if pa.types.is_signed_integer(t) else 0)
        low = -(2**bits) if pa.types.is_signed_integer(t) else 0
        lo = low if gen.min is None else gen.min
        hi = 2**bits - 1 if gen.max is None else gen.max
        return pa.array(integers(rows, gen.path, lo, hi)).cast(t)
    if pa.types.is_floating(t):
        lo = 0.0 if gen.min is None else float(gen.min)
        hi = 1.0 if gen.max is None else float(gen.max)
        return pa.array(lo + (hi - lo) * uniform(rows, gen.path)).cast(t)
    if pa.types.is_decimal(t):
        return _random_decimal(gen, rows)
    if pa.types.is_string(t) or pa.types.is_binary(t):
        return _random_text(gen, rows)
    if pa.types.is_timestamp(t):
        past = integers(rows, gen.path, 0, gen.max_past_ms)
        return pa.array(rows.now_ms - past, pa.timestamp("ms", t.tz)).cast(t, safe=False)
    if pa.types.is_date(t):
        today = rows.now_ms // _DAY_MS
        past = integers(rows, gen.path, 0, gen.max_past_ms // _DAY_MS)
        return pa.array((today - past).astype(np.int32), pa.date32()).cast(t)
    if pa.types.is_time(t):
        ms = integers(rows, gen.path, 0, _DAY_MS - 1).astype(np.int32)
        return pa.array(ms, pa.time32("ms")).cast(t, safe=False)
    if pa.types.is_struct(t):
        children = [generate(c, rows) for c in gen.children]
        return pa.StructArray.from_arrays(children, fields=list(t))
    if pa.types.is_list(t) or pa.types.is_map(t):
        return _random_collection(gen, rows)
    raise NotImplementedError(f"datagen cannot generate {t}")


def _random_decimal(gen: FieldGen, rows: Rows) -> pa.Array:
    t = gen.type
    # Unscaled values live in int64 here: DECIMAL wider than 18 digits gets at most 18.
    limit = min(10**t.precision - 1, 2**63 - 1)
    lo = -limit if gen.min is None else int(decimal.Decimal(gen.min).scaleb(t.scale))
    hi = limit if gen.max is None else int(decimal.Decimal(gen.max).scaleb(t.scale))
    return _decimals(integers(rows, gen.path, max(lo, -limit), min(hi, limit)), t)


def _decimals(unscaled: np.ndarray, t: pa.DataType) -> pa.Array:
    """A decimal128 array from int64 unscaled values (two's complement, 16 bytes each)."""
    pairs = np.empty((len(unscaled), 2), dtype=np.int64)
    pairs[:, 0] = unscaled
    pairs[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(
        pa.decimal128(t.precision, t.scale), len(unscaled), [None, pa.py_buffer(pairs)]
    )


def _random_text(gen: FieldGen, rows: Rows) -> pa.Array:
    """Alphanumeric strings (or random bytes) of exactly ``length``."""
    length = gen.length
    words = max(1, -(-length // 8))
    data = raw_words(rows, gen.path, words).view(np.uint8)[:, :length]
    if pa.types.is_string(gen.type):
        data = _ALPHABET[data % len(_ALPHABET)]
    offsets = np.arange(rows.n + 1, dtype=np.int32) * length
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    return pa.Array.from_buffers(gen.type, rows.n, buffers)


def _random_collection(gen: FieldGen, rows: Rows) -> pa.Array:
    """ARRAY/MAP values of ``length`` elements; the elements take the column's options."""
    t, length = gen.type, gen.length
    inner = rows.scaled(length)
    offsets = pa.array(np.arange(rows.n + 1, dtype=np.int32) * length)

    def element(path: str, elem_type: pa.DataType) -> pa.Array:
        children = default_children(path, elem_type)
        elem = dataclasses.replace(gen, path=path, type=elem_type, null_rate=0.0, children=children)
        return generate(elem, inner)

    if pa.types.is_map(t):
        keys = element(gen.path + "{k}", t.key_type)
        items = element(gen.path + "{v}", t.item_type)
        return pa.MapArray.from_arrays(offsets, keys, items, type=t)
    return pa.ListArray.from_arrays(offsets, element(gen.path + "[]", t.value_type), type=t)


def default_children(path: str, t: pa.DataType) -> tuple[FieldGen, ...]:
    """Random subfields with default options, for a ROW inside an ARRAY or MAP."""
    if not pa.types.is_struct(t):
        return ()
    return tuple(
        FieldGen(f"{path}.{f.name}", f.type, children=default_children(f"{path}.{f.name}", f.type))
        for f in t
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000
