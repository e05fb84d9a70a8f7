"""Changelog modes: what kinds of changes a stream carries.

An append-only stream only inserts. An updating stream carries one extra column, ``_op``
(int8), holding Flink's row kinds: +I insert, -U update-before, +U update-after, -D delete.
An updating stream is *upsert(keys)* when the keys identify the row each change replaces,
and *retract* when only an identical earlier row can be retracted.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

OP = "_op"
INSERT, UPDATE_BEFORE, UPDATE_AFTER, DELETE = 0, 1, 2, 3
OP_TYPE = pa.int8()
KINDS = {INSERT: "+I", UPDATE_BEFORE: "-U", UPDATE_AFTER: "+U", DELETE: "-D"}


@dataclass(frozen=True)
class Changelog:
    """A node's changelog mode: ``append``, ``upsert`` (with ``keys``) or ``retract``."""

    kind: str = "append"
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert self.kind in ("append", "upsert", "retract"), self.kind

    @property
    def updating(self) -> bool:
        return self.kind != "append"

    def describe(self) -> str:
        """The row kinds, as Flink's EXPLAIN CHANGELOG_MODE spells them."""
        return "I" if self.kind == "append" else "I,UB,UA,D"

    def details(self) -> list[str]:
        """EXPLAIN items: the changelog mode and, for upsert streams, the upsert key."""
        if self.kind == "append":
            return []
        items = [f"changelogMode=[{self.describe()}]"]
        if self.kind == "upsert":
            items.append(f"upsertKey=[{', '.join(self.keys)}]")
        return items

    def renamed(self, mapping: dict[str, str]) -> Changelog:
        """The same mode after a projection that renames (or drops) columns: an upsert key
        that does not survive the projection leaves a retract stream.
        """
        if self.kind != "upsert":
            return self
        if all(k in mapping for k in self.keys):
            return Changelog("upsert", tuple(mapping[k] for k in self.keys))
        return Changelog("retract")


APPEND = Changelog()
RETRACT = Changelog("retract")


def signs(ops: pa.Array) -> pa.Array:
    """+1 for +I/+U rows, -1 for -U/-D rows (int64)."""
    import pyarrow.compute as pc

    retract = pc.or_(pc.equal(ops, UPDATE_BEFORE), pc.equal(ops, DELETE))
    return pc.if_else(retract, pa.scalar(-1, pa.int64()), pa.scalar(1, pa.int64()))
