"""A changelog-consistency checker for tests: every -U/-D must take back a row that was
emitted before and is still there; in an upsert stream each key holds at most one row.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from streamsql.plan.changelog import DELETE, OP, UPDATE_BEFORE

RETRACTIONS = (UPDATE_BEFORE, DELETE)


def check_changelog(
    batches: list[pa.RecordBatch], upsert_keys: tuple[str, ...] | None = None
) -> Counter:
    """Replay the changes row by row; returns the live rows (as a multiset)."""
    live: Counter = Counter()
    by_key: Counter = Counter()
    for batch in batches:
        if OP not in batch.schema.names:
            for row in batch.to_pylist():
                live[tuple(row.items())] += 1
            continue
        names = [n for n in batch.schema.names if n != OP]
        for row in batch.to_pylist():
            op = row.pop(OP)
            key = tuple(row.items())
            ukey = tuple(row[k] for k in upsert_keys) if upsert_keys else None
            if op in RETRACTIONS:
                assert live[key] > 0, f"{op} retracts a row that is not there: {row}"
                live[key] -= 1
                if ukey is not None:
                    by_key[ukey] -= 1
            else:
                live[key] += 1
                if ukey is not None:
                    by_key[ukey] += 1
                    assert by_key[ukey] == 1, f"two live rows for upsert key {ukey}: {names}"
    return +live
