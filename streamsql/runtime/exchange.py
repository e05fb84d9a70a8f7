"""Routing batches along an edge: forward, round-robin, hash(keys), singleton, broadcast."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from streamsql.physical.graph import Edge
from streamsql.runtime.hashing import hash_keys, instance_of_group, key_groups


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
        groups = key_groups(hash_keys(batch, self.keys), self.max_parallelism)
        owner = instance_of_group(groups, self.consumers, self.max_parallelism)
        counts = np.bincount(owner, minlength=self.consumers)
        if counts.max() == batch.num_rows:  # everything goes to one instance
            return [(int(owner[0]), batch)]
        order = np.argsort(owner, kind="stable")  # keeps each key's rows in arrival order
        taken = batch.take(pa.array(order))
        out, start = [], 0
        for target, n in enumerate(counts.tolist()):
            if n:
                out.append((target, taken.slice(start, n)))
            start += n
        return out
