"""An operator instance's state at a checkpoint barrier, and how it is handed back on restore.

An operator's snapshot is a few named Arrow tables plus a small dict of JSON values. A table
that is *keyed* names the columns whose hash decides which instance owns a row: the same
values and types as the hash keys of the operator's input edge, so that a row of state goes
to the instance the router sends that key's rows to. On restore at the parallelism of the
checkpoint every instance gets its own snapshot back; at another parallelism each instance
gets the rows of every keyed table that it owns now (from all the old instances), and its
``restore`` merges the values of all the old instances. A table that is not
keyed cannot be split: its operator can only be restored at the same parallelism (or when
it runs one instance both times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from streamsql.errors import StreamSQLError
from streamsql.runtime.hashing import hash_keys, instances_of


class RestoreError(StreamSQLError):
    """A checkpoint cannot be restored into this job."""


@dataclass
class OperatorSnapshot:
    """State of one operator instance: ``tables`` (rows), ``keys`` (per keyed table, its key
    columns) and ``values`` (JSON-serialisable scalars: counters, times, flags).
    """

    tables: dict[str, pa.Table] = field(default_factory=dict)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str, schema: pa.Schema | None = None) -> pa.Table | None:
        """The table ``name`` (None when the snapshot has none), cast to ``schema`` if given."""
        t = self.tables.get(name)
        if t is None or schema is None or t.schema == schema:
            return t
        return t.cast(schema)

    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables.values())


def redistribute(
    old: list[OperatorSnapshot | None],
    instance: int,
    parallelism: int,
    max_parallelism: int,
    label: str,
) -> tuple[OperatorSnapshot | None, list[dict[str, Any]]]:
    """The snapshot instance ``instance`` of ``parallelism`` restores from the snapshots of
    the old instances (``old[i]`` is old instance i's), and the old instances' values for
    ``merge_values``. Keyed tables are split by key hash; an unkeyed table is refused
    unless one instance runs before and after.
    """
    present = [s for s in old if s is not None]
    if not present:
        return None, []
    if len(old) == parallelism:
        mine = old[instance]
        return mine, [mine.values] if mine is not None else []
    all_keys = {name: keys for s in present for name, keys in s.keys.items()}
    out = OperatorSnapshot(keys=all_keys)
    names = list(dict.fromkeys(n for s in present for n in s.tables))
    for name in names:
        parts = [s.tables[name] for s in present if name in s.tables]
        keys = all_keys.get(name)
        if keys is None:
            if len(old) == 1 and parallelism == 1:
                out.tables[name] = parts[0]
                continue
            raise RestoreError(
                f"{label}: its state '{name}' is not partitioned by key, so it cannot be "
                f"restored at parallelism {parallelism} (the checkpoint ran {len(old)})",
                hint=f"restore with -p {len(old)}",
            )
        table = pa.concat_tables(parts, promote_options="default")
        if table.num_rows:
            owner = instances_of(hash_keys(table, keys), parallelism, max_parallelism)
            table = table.take(pa.array(np.flatnonzero(owner == instance)))
        out.tables[name] = table
    return out, [s.values for s in present]
