"""Stable, vectorized hashing of key columns, and key groups for partitioning.

The hash must be the same in every process and every release (checkpointed state is
redistributed by it), so it is computed here with numpy rather than taken from a library
whose hash may change.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_NULL = np.uint64(0x6A09E667F3BCC909)
_PRIME = np.uint64(1099511628211)
_powers = np.ones(1, dtype=np.uint64)
#: Hashes are mixed this many at a time: the pieces stay in the CPU cache between steps.
_PIECE = 32768


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit affects every output bit."""
    return _mix_in_place(x.copy())


def _mix_in_place(x: np.ndarray) -> np.ndarray:
    """``_mix`` overwriting ``x``, a cache-sized piece at a time (one scratch array)."""
    scratch = np.empty(min(len(x), _PIECE), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, len(x), _PIECE):
            v = x[start : start + _PIECE]
            t = scratch[: len(v)]
            np.right_shift(v, np.uint64(30), out=t)
            np.bitwise_xor(v, t, out=v)
            np.multiply(v, _M1, out=v)
            np.right_shift(v, np.uint64(27), out=t)
            np.bitwise_xor(v, t, out=v)
            np.multiply(v, _M2, out=v)
            np.right_shift(v, np.uint64(31), out=t)
            np.bitwise_xor(v, t, out=v)
    return x


def _pow_table(n: int) -> np.ndarray:
    global _powers
    if len(_powers) < n:
        size = max(n, 2 * len(_powers))
        table = np.empty(size, dtype=np.uint64)
        table[0] = 1
        with np.errstate(over="ignore"):
            for i in range(1, size):  # once per length, not per row
                table[i] = table[i - 1] * _PRIME
        _powers = table
    return _powers[:n]


def _hash_bytes(arr: pa.Array) -> np.ndarray:
    """Polynomial hash of each string/binary value, over the raw data buffer."""
    if not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)):
        arr = arr.cast(pa.large_string())
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64 if large else np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    out = lengths.astype(np.uint64)
    total = int(lengths.sum())
    if total:
        start = offsets[0]
        chunk = data[start : start + total].astype(np.uint64)
        rel = offsets[:-1] - start
        pos = np.arange(total, dtype=np.int64) - np.repeat(rel, lengths)
        with np.errstate(over="ignore"):
            weighted = chunk * _pow_table(int(lengths.max()))[pos]
        nonempty = lengths > 0
        sums = np.zeros(len(lengths), dtype=np.uint64)
        with np.errstate(over="ignore"):
            sums[nonempty] = np.add.reduceat(weighted, rel[nonempty])
            out = out * _GOLDEN + sums
    return out


def _is_bytes_like(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_string_view(t)
    )


def _hash_column(col: pa.Array) -> np.ndarray:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    if _is_bytes_like(t):
        values = _hash_bytes(col)
    elif pa.types.is_floating(t):
        as_float = pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        as_float = np.where(as_float == 0.0, 0.0, as_float)  # -0.0 and 0.0 agree
        values = as_float.view(np.uint64).copy()
    elif pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_temporal(t):
        if pa.types.is_temporal(t):
            ints = col.view(pa.int64()) if t.bit_width == 64 else col.view(pa.int32())
            ints = ints.cast(pa.int64())
        else:
            ints = col if t == pa.int64() else col.cast(pa.int64())
        if ints.null_count:
            ints = pc.fill_null(ints, 0)
        values = ints.to_numpy(zero_copy_only=False).view(np.uint64)
    else:  # decimals, nested types: hash their canonical text
        values = _hash_bytes(col.cast(pa.string()))
    with np.errstate(over="ignore"):
        values = _mix_in_place(values + _GOLDEN)  # the offset keeps 0 and '' from hashing to 0
    if col.null_count:
        nulls = col.is_null().to_numpy(zero_copy_only=False)
        values = np.where(nulls, _NULL, values)
    return values


def hash_keys(batch: pa.RecordBatch | pa.Table, keys: tuple[str, ...] | list[str]) -> np.ndarray:
    """A uint64 hash per row of the given key columns (NULL hashes like any other value)."""
    h: np.ndarray | None = None
    for name in keys:
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        values = _hash_column(col)
        with np.errstate(over="ignore"):
            # h starts at 0: the first key's step (0 * golden + values) is values itself.
            if h is not None:
                np.multiply(h, _GOLDEN, out=h)
                np.add(h, values, out=values)
            h = _mix_in_place(values)
    return h if h is not None else np.zeros(batch.num_rows, dtype=np.uint64)


def key_groups(hashes: np.ndarray, max_parallelism: int) -> np.ndarray:
    """Key group of each hash: the unit in which keyed state moves between instances."""
    return (hashes % np.uint64(max_parallelism)).astype(np.int64)


def instance_of_group(groups: np.ndarray, parallelism: int, max_parallelism: int) -> np.ndarray:
    """The instance that owns each key group (contiguous ranges of groups, as Flink)."""
    return (groups * parallelism) // max_parallelism


def instances_of(hashes: np.ndarray, parallelism: int, max_parallelism: int) -> np.ndarray:
    """The instance that owns each hash: ``instance_of_group(key_groups(...))``, small ints.

    >>> h = hash_keys(pa.table({"k": [1, 2, 3, 4]}), ["k"])
    >>> bool((instances_of(h, 3, 128) == instance_of_group(key_groups(h, 128), 3, 128)).all())
    True
    """
    if max_parallelism & (max_parallelism - 1):  # not a power of two: the general way
        owner = instance_of_group(key_groups(hashes, max_parallelism), parallelism, max_parallelism)
    else:  # a mask and a shift instead of a division
        owner = hashes & np.uint64(max_parallelism - 1)
        owner *= np.uint64(parallelism)
        owner >>= np.uint64(max_parallelism.bit_length() - 1)
    return owner.astype(np.uint8 if parallelism <= 256 else np.int64)
