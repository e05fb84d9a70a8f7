"""When a window aggregate emits: at window close only (append-only), or also early and
late ('table.exec.emit.*' settings), which makes its output an updating stream.

The binder reads the settings once per window aggregate into a :class:`WindowEmit`, so that
the node's changelog mode, EXPLAIN and the checks on its consumers (an append-only sink, a
window Top-N) all know it at bind time.

>>> WindowEmit(allow_lateness_ms=10_000, early_fire_ms=5_000).describe()
'on window close, early every 5 s, allow lateness 10 s'
>>> WindowEmit().updating
False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamsql.errors import ConfigError, PlanError

if TYPE_CHECKING:
    from streamsql.config import Settings
    from streamsql.errors import Span

ALLOW_LATENESS = "table.exec.emit.allow-lateness"
EARLY_FIRE = "table.exec.emit.early-fire.enabled"
EARLY_DELAY = "table.exec.emit.early-fire.delay"

#: Where an updating window result may be written (the hint of every refusal).
UPDATING_SINKS = (
    "write to a sink that accepts updates (e.g. 'connector' = 'duckdb' with a PRIMARY KEY, "
    "or 'print')"
)


@dataclass(frozen=True)
class WindowEmit:
    """A window aggregate's emit strategy: windows fire when the watermark passes their
    end; with ``allow_lateness_ms`` a fired window is kept that much longer and updated by
    late rows; with ``early_fire_ms`` an open window's partial result is emitted every
    that much processing time while it changes.
    """

    allow_lateness_ms: int = 0
    early_fire_ms: int = 0  # 0: no early firing

    def __post_init__(self) -> None:
        assert self.allow_lateness_ms >= 0 and self.early_fire_ms >= 0

    @property
    def updating(self) -> bool:
        """Whether a window's result may change after it was emitted."""
        return bool(self.allow_lateness_ms or self.early_fire_ms)

    def describe(self) -> str:
        parts = ["on window close"]
        if self.early_fire_ms:
            parts.append(f"early every {duration_text(self.early_fire_ms)}")
        if self.allow_lateness_ms:
            parts.append(f"allow lateness {duration_text(self.allow_lateness_ms)}")
        return ", ".join(parts)

    def because(self) -> str:
        """Why the output updates, naming the settings ('' when it does not)."""
        reasons = []
        if self.early_fire_ms:
            reasons.append(f"'{EARLY_FIRE}' is true")
        if self.allow_lateness_ms:
            reasons.append(f"'{ALLOW_LATENESS}' is set")
        return " and ".join(reasons)


def window_emit(settings: Settings | None, kind: str, span: Span | None = None) -> WindowEmit:
    """The emit strategy the settings give a window aggregate over ``kind`` windows.

    Raises ConfigError when early firing is on without a positive delay, and PlanError for
    early firing of SESSION windows (a session's extent is only known when it closes).
    """
    if settings is None:
        return WindowEmit()
    early = 0
    if settings[EARLY_FIRE]:
        early = int(settings[EARLY_DELAY])
        if early <= 0:
            raise ConfigError(
                f"'{EARLY_FIRE}' is true but '{EARLY_DELAY}' is {early} ms: early firing "
                "needs a positive delay",
                option=EARLY_DELAY,
                hint=f"SET '{EARLY_DELAY}' = '5 s' (or SET '{EARLY_FIRE}' = 'false')",
            )
        if kind == "SESSION":
            raise PlanError(
                f"'{EARLY_FIRE}' is not supported for SESSION windows: a session's "
                "bounds are only known when it closes",
                span=span,
                hint=f"SET '{EARLY_FIRE}' = 'false' for this query, or use TUMBLE, HOP "
                "or CUMULATE windows",
            )
    return WindowEmit(int(settings[ALLOW_LATENESS]), early)


def duration_text(ms: int) -> str:
    """A duration in its largest whole unit: '1 min', '10 s', '250 ms'."""
    for unit, n in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms % n == 0:
            return f"{ms // n} {unit}"
    return f"{ms} ms"
