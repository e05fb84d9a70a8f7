"""Window results as updates: allowed lateness and early firing for TUMBLE, HOP and
CUMULATE window aggregates.

The window operator keeps its partial aggregates per window (or per pane) and computes a
range of windows' rows on request; this class decides when, and turns each result into
changes against what was emitted before. It keeps the emitted rows of every window that
may still change in a state table of its own: open windows that fired early, and fired
windows within their allowed lateness. A window fires when the watermark passes its end
(its final result: +I, or -U/+U after early results); rows that arrive later but within
the lateness update it at once (-U/+U); once the watermark passes ``end - 1 + lateness``
its state and emitted rows are dropped. With early firing, the open windows that changed
are emitted every ``delay`` of processing time.

At a checkpoint it keeps the emitted rows (keyed by the group keys, as the operator's
input is hashed), its marks ``fired`` and ``kept`` (watermark-derived), the range of open
windows changed since early firing and when that firing is due (see ``snapshot``).
"""

from __future__ import annotations

from typing import Any, Protocol

import pyarrow as pa

from streamsql.plan.emit import WindowEmit
from streamsql.runtime.operators.base import OperatorContext
from streamsql.runtime.operators.window_emit import EarlyFiring, changes, keep_limit
from streamsql.runtime.operators.window_state import WindowState, fire_limit
from streamsql.runtime.snapshot import OperatorSnapshot
from streamsql.runtime.timeutil import MIN_WATERMARK, to_ms


class Windows(Protocol):
    """What the window operator offers: rows of a range of windows, and purging."""

    def window_rows(self, after: int, upto: int) -> pa.Table | None:
        """Output rows of the windows ending in ``(after, upto]`` (None: no rows)."""

    def purge(self, limit: int) -> None:
        """Drop the state that only windows ending at or before ``limit`` need."""


class WindowUpdates:
    """The updating side of a window operator: what it emitted for the windows that may
    still change, when they fire again, and the changes they then emit.
    """

    def __init__(
        self,
        windows: Windows,
        emit: WindowEmit,
        ctx: OperatorContext,
        schema: pa.Schema,
        n_keys: int,
    ) -> None:
        self.windows = windows
        self.lateness = emit.allow_lateness_ms
        self.early = EarlyFiring(emit.early_fire_ms, ctx.now_ms) if emit.early_fire_ms else None
        self.schema = schema
        # The upsert key: window_start, window_end and the group keys.
        self.key = [schema.names[0], schema.names[1], *schema.names[3 : 3 + n_keys]]
        stored = pa.schema(
            [pa.field("we", pa.int64()), *(pa.field(f"c{i}", f.type) for i, f in enumerate(schema))]
        )
        table = ctx.state.create(f"{ctx.state_prefix}_window_agg_emitted_i{ctx.instance}", stored)
        self.emitted = WindowState(ctx.state, {"emitted": table}, {"emitted": stored})
        self.fired = MIN_WATERMARK  # windows ending at or before this have fired
        self.kept = MIN_WATERMARK  # windows ending at or before this are gone
        self.open: tuple[int, int] | None = None  # open windows changed since early firing

    def added(self, first: int, last: int) -> list[pa.Table]:
        """Rows went into the windows ending in ``[first, last]``: the fired ones among
        them are emitted again now, the open ones at the next early firing.
        """
        after, upto = max(first - 1, self.kept), min(last, self.fired)
        out = [self._refresh(after, upto)] if after < upto else []
        if last > self.fired and self.early is not None:
            low = max(first, self.fired + 1)
            if self.open is not None:
                low, last = min(low, self.open[0]), max(last, self.open[1])
            self.open = (low, last)
            self.early.changed()
        return out + self.flush()

    def flush(self) -> list[pa.Table]:
        """The open windows that changed, when early firing is due."""
        if self.open is None or self.early is None or not self.early.due():
            return []
        first, last = self.open
        self.open = None
        return [self._refresh(max(first - 1, self.fired), last)]

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        """Fire the windows the watermark closes; drop those past their lateness."""
        limit, keep = fire_limit(watermark), keep_limit(watermark, self.lateness)
        out = []
        if limit > self.fired:
            out.append(self._refresh(self.fired, limit))
            self.fired = limit
            if self.open is not None:
                self.open = None if self.open[1] <= limit else (limit + 1, self.open[1])
        if keep > self.kept:
            self.emitted.discard(keep)
            self.windows.purge(keep)
            self.kept = keep
        return out

    def _refresh(self, after: int, upto: int) -> pa.Table:
        """Changes of the windows ending in ``(after, upto]`` since they were last
        emitted; their new rows are remembered.
        """
        new = self.windows.window_rows(after, upto)
        if new is None:
            new = self.schema.empty_table()
        old = self.emitted.take(upto, after)["emitted"]
        self.emitted.add("emitted", self._stored(new))
        return changes(self._rows(old), new, self.key)

    def _stored(self, rows: pa.Table) -> pa.Table:
        ends = to_ms(rows.column(1))
        return rows.rename_columns([f"c{i}" for i in range(rows.num_columns)]).add_column(
            0, "we", ends
        )

    def _rows(self, stored: pa.Table) -> pa.Table:
        return stored.drop_columns(["we"]).rename_columns(self.schema.names)

    def flush_state(self) -> None:
        self.emitted.flush()

    def snapshot(self, hashed: list[int]) -> OperatorSnapshot:
        """The emitted rows of the windows that may still change, keyed by the group keys
        at positions ``hashed`` (those the operator's input is hashed on; none: unkeyed),
        and the marks. The early-firing clock is processing time, kept as epoch ms: after a
        restore, a firing that fell due in between happens at the next chance.
        """
        table = self.emitted.contents()["emitted"]
        keys = {"emitted": tuple(f"c{3 + i}" for i in hashed)} if hashed else {}
        values = {
            "fired": self.fired,
            "kept": self.kept,
            "open": list(self.open) if self.open is not None else None,
            "early_due": self.early.due_at if self.early is not None else None,
        }
        return OperatorSnapshot({"emitted": table}, keys, values)

    def restore(self, snapshot: OperatorSnapshot, values: list[dict[str, Any]]) -> None:
        """Go on from ``snapshot``'s emitted rows and the marks of every old instance in
        ``values``: all instances saw the same watermarks, so the marks agree (max is safe);
        the changed open windows are the union of theirs, due at the earliest.
        """
        table = snapshot.table("emitted")
        if table is not None:
            self.emitted.load({"emitted": table})
        self.fired = max((v["fired"] for v in values), default=MIN_WATERMARK)
        self.kept = max((v["kept"] for v in values), default=MIN_WATERMARK)
        opened = [v["open"] for v in values if v["open"] is not None]
        if opened:
            self.open = (min(o[0] for o in opened), max(o[1] for o in opened))
        due = [v["early_due"] for v in values if v["early_due"] is not None]
        if due and self.early is not None:
            self.early.due_at = min(due)

    def describe_state(self) -> dict[str, int]:
        return {"emitted_rows": self.emitted.rows()}
