"""UNION ALL: every input's batches pass through unchanged (the driver keeps the
watermark at the minimum over the inputs). It keeps no state: a checkpoint stores nothing
for it (``snapshot`` is None).
"""

from __future__ import annotations

import pyarrow as pa

from streamsql.plan.join_nodes import Union
from streamsql.runtime.operators.base import Operator


class UnionOperator(Operator):
    def __init__(self, node: Union) -> None:
        self.node = node

    def process_batch(self, batch: pa.RecordBatch, input_index: int) -> list[pa.RecordBatch]:
        return [batch]
