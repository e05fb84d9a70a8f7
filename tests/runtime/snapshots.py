"""Helpers for operator snapshot tests: a snapshot as a checkpoint stores it (Arrow IPC and
JSON, read back), an operator restored from one, and snapshots spread over another
parallelism the way a restore does.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow as pa

from streamsql.physical.graph import Edge
from streamsql.plan.nodes import Distribution
from streamsql.runtime.exchange import Router
from streamsql.runtime.operators.base import Operator
from streamsql.runtime.snapshot import OperatorSnapshot, redistribute
from tests.runtime.stubs import context

MAX_PARALLELISM = 128


def stored(snapshot: OperatorSnapshot | None) -> OperatorSnapshot | None:
    """``snapshot`` after a trip through the checkpoint format: tables as Arrow IPC
    streams, values as JSON.
    """
    if snapshot is None:
        return None
    tables = {}
    for name, table in snapshot.tables.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        tables[name] = pa.ipc.open_stream(sink.getvalue()).read_all()
    values = json.loads(json.dumps(snapshot.values))
    return OperatorSnapshot(tables, {k: tuple(v) for k, v in snapshot.keys.items()}, values)


def checkpoint(op: Operator, epoch: int = 1) -> OperatorSnapshot | None:
    """What a checkpoint keeps of ``op``: ``on_barrier`` then ``snapshot``, stored."""
    op.on_barrier(epoch)
    return stored(op.snapshot())


def restored(
    make: Callable[[], Operator],
    snapshot: OperatorSnapshot | None,
    values: list[dict] | None = None,
    instance: int = 0,
    **settings: str,
) -> Operator:
    """A fresh operator from ``make``, opened on a fresh state database and restored from
    ``snapshot`` (nothing restored when it is None).
    """
    op = make()
    op.open(context(instance, **settings))
    if snapshot is not None:
        op.restore(snapshot, [snapshot.values] if values is None else values)
    return op


def rescaled(
    snapshots: list[OperatorSnapshot | None], parallelism: int
) -> list[tuple[OperatorSnapshot | None, list[dict]]]:
    """What each of ``parallelism`` new instances restores from the old instances'
    ``snapshots``.
    """
    return [
        redistribute(snapshots, i, parallelism, MAX_PARALLELISM, "op") for i in range(parallelism)
    ]


def split(batch: pa.RecordBatch, keys: tuple[str, ...], parallelism: int) -> list[pa.RecordBatch]:
    """``batch``'s rows for each of ``parallelism`` instances, as a hash exchange on
    ``keys`` routes them (an empty batch for an instance that gets none).
    """
    edge = Edge(0, 1, Distribution("hash", keys))
    parts = dict(Router(edge, parallelism, MAX_PARALLELISM).route(batch, 0))
    return [parts.get(i, batch.slice(0, 0)) for i in range(parallelism)]
