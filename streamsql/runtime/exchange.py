"""Routing batches along an edge: forward, round-robin, hash(keys), singleton, broadcast."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from streamsql.physical.graph import Edge
from streamsql.runtime.hashing import hash_keys, instances_of

#: Up to this many consumers a batch is split with a take per consumer, not a sort.
FEW_CONSUMERS = 8


class Router:
    """Splits a producer instance's batch among the consumer's instances."""

    def __init__(self, edge: Edge, consumers: int, max_parallelism: int) -> None:
        self.edge = edge
        self.kind = edge.distribution.kind
        self.keys = edge.distribution.keys
        self.consumers = consumers
        self.max_parallelism = max_parallelism
        self._next: dict[int, int] = {}

    def route(self, batch: pa.RecordBatch, producer: int) -> list[tuple[int, pa.RecordBatch]]:
        match self.kind:
            case "forward":
                return [(producer % self.consumers, batch)]
            case "singleton":
                return [(0, batch)]
            case "broadcast":
                return [(i, batch) for i in range(self.consumers)]
            case "round_robin":
                target = self._next.get(producer, producer % self.consumers)
                self._next[producer] = (target + 1) % self.consumers
                return [(target, batch)]
            case "hash":
                return self._by_hash(batch)
        raise ValueError(f"unknown distribution {self.kind}")

    def _by_hash(self, batch: pa.RecordBatch) -> list[tuple[int, pa.RecordBatch]]:
        if self.consumers == 1:
            return [(0, batch)]
        if not batch.num_rows:
            return []
        owner = instances_of(hash_keys(batch, self.keys), self.consumers, self.max_parallelism)
        if not (owner != owner[0]).any():  # everything goes to one instance
            return [(int(owner[0]), batch)]
        if self.consumers <= FEW_CONSUMERS:
            # A take per consumer of its rows' positions, in arrival order.
            parts = [(i, np.flatnonzero(owner == i)) for i in range(self.consumers)]
            return [(i, batch.take(pa.array(rows))) for i, rows in parts if len(rows)]
        counts = np.bincount(owner, minlength=self.consumers)
        order = np.argsort(owner, kind="stable")  # keeps each key's rows in arrival order
        taken = batch.take(pa.array(order))
        out, start = [], 0
        for target, n in enumerate(counts.tolist()):
            if n:
                out.append((target, taken.slice(start, n)))
            start += n
        return out
