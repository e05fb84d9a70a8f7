"""Session settings: the keys `SET 'k' = 'v'` accepts, their defaults and their parsing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamsql.connectors.base import Option, parse_value
from streamsql.errors import ConfigError, did_you_mean

SETTINGS: tuple[Option, ...] = (
    Option("parallelism.default", "int", 1, help="parallel instances of each stateful operator"),
    Option(
        "execution.batch-size", "int", 262144, help="most rows a source puts in one micro-batch"
    ),
    Option(
        "execution.runtime",
        "choice",
        "threads",
        choices=("threads", "deterministic"),
        help="'threads': each operator instance on a thread of its own, joined by bounded "
        "channels; 'deterministic': all on one thread in a fixed order (the reference)",
    ),
    Option(
        "execution.buffer.max-batches",
        "int",
        8,
        minimum=1,
        help="most batches waiting in an instance's input channel before producers block "
        "('threads' runtime)",
    ),
    Option(
        "execution.buffer.max-bytes",
        "memory",
        64 << 20,
        minimum=1,
        help="most bytes of batches waiting in an instance's input channel before producers "
        "block ('threads' runtime)",
    ),
    Option(
        "execution.overload.policy",
        "choice",
        "block",
        choices=("block", "drop"),
        help="what a source does when its consumers' channels stay full: 'block' waits "
        "(lossless backpressure), 'drop' drops and counts the events ('threads' runtime)",
    ),
    Option(
        "execution.overload.timeout",
        "duration",
        1000,
        minimum=1,
        help="how long a channel stays full before a source drops events under "
        "'execution.overload.policy' = 'drop'",
    ),
    Option(
        "execution.checkpointing.interval",
        "string",
        "",
        help="take a checkpoint this often: a duration ('10 s') or a row count ('100000 "
        "rows'), or both ('10 s, 100000 rows': whichever comes first); '' (default): every "
        "10 s when the session has a state directory, else never",
    ),
    Option(
        "execution.checkpointing.mode",
        "choice",
        "EXACTLY_ONCE",
        choices=("EXACTLY_ONCE", "AT_LEAST_ONCE", "AT_MOST_ONCE"),
        help="EXACTLY_ONCE: aligned barriers and transactional sinks; AT_LEAST_ONCE: no "
        "alignment, a restart may repeat output; AT_MOST_ONCE: a restart goes on after "
        "everything read before, without state, and never repeats output",
    ),
    Option(
        "state.checkpoints.num-retained",
        "int",
        2,
        minimum=1,
        help="completed checkpoints kept in the state directory (savepoints are kept until "
        "deleted)",
    ),
    Option("pipeline.name", "string", "streamsql", help="the job's name in metrics and files"),
    Option(
        "pipeline.max-parallelism",
        "int",
        128,
        help="key groups: the upper bound of parallelism keyed state can be rescaled to",
    ),
    Option("table.local-time-zone", "string", "UTC", help="time zone of TIMESTAMP_LTZ values"),
    Option(
        "table.exec.source.idle-timeout",
        "duration",
        0,
        help="an input quiet for this long stops holding back the watermark (0: never)",
    ),
    Option(
        "table.exec.mini-batch.enabled",
        "bool",
        True,
        help="let updating operators apply many micro-batches to their state at once",
    ),
    Option(
        "table.exec.mini-batch.size",
        "int",
        1_048_576,
        help="most input rows an updating operator holds before it updates its state",
    ),
    Option(
        "table.exec.mini-batch.allow-latency",
        "duration",
        1000,
        help="longest an updating operator holds rows back (also flushed when input is idle)",
    ),
    Option(
        "table.exec.state.ttl",
        "duration",
        0,
        help="keys of unbounded state untouched this long are dropped (0: kept forever)",
    ),
    Option(
        "table.exec.late-rows.sink",
        "string",
        "",
        help="table that receives the rows windowed operators drop as late ('': drop, count)",
    ),
    Option(
        "table.exec.emit.allow-lateness",
        "duration",
        0,
        help="window aggregates keep fired windows this long and update them with late rows "
        "(an updating result)",
    ),
    Option(
        "table.exec.emit.early-fire.enabled",
        "bool",
        False,
        help="window aggregates emit partial results before their windows close (an "
        "updating result)",
    ),
    Option(
        "table.exec.emit.early-fire.delay",
        "duration",
        0,
        help="processing time between a window aggregate's early results (> 0 when enabled)",
    ),
    Option(
        "table.optimizer.agg-phase-strategy",
        "choice",
        "AUTO",
        choices=("AUTO", "ONE_PHASE", "TWO_PHASE"),
        help="window aggregates: 'TWO_PHASE' pre-aggregates each batch where the rows are "
        "read (local phase) and merges the partial results behind the exchange (global "
        "phase); 'ONE_PHASE' sends every row across; 'AUTO' splits when the input crosses an "
        "exchange at parallelism > 1. DISTINCT aggregates, SESSION windows, a CUMULATE "
        "window assigned by the aggregate, a late-rows sink and updating emits stay one-phase",
    ),
    Option(
        "table.optimizer.disabled-rules",
        "string",
        "",
        help="comma-separated optimizer rules to skip (for debugging)",
    ),
)


INTERVAL_KEY = "execution.checkpointing.interval"


def checkpoint_interval(raw: str) -> tuple[int | None, int | None]:
    """'execution.checkpointing.interval' as (milliseconds, rows), either None when not given:
    '10 s', '100000 rows' or both separated by a comma.

    >>> checkpoint_interval("10 s, 100000 rows")
    (10000, 100000)
    >>> checkpoint_interval("")
    (None, None)
    """
    ms = rows = None
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        counted = re.fullmatch(r"(\d+)\s*rows?", part, re.IGNORECASE)
        if counted:
            rows = int(counted.group(1))
            if rows < 1:
                raise ConfigError(f"'{INTERVAL_KEY}' needs at least 1 row", option=INTERVAL_KEY)
            continue
        ms = parse_value(Option(INTERVAL_KEY, "duration", minimum=1), INTERVAL_KEY, part)
    return ms, rows


def _validate_int(key: str, value: Any) -> None:
    positive = ("parallelism.default", "execution.batch-size", "pipeline.max-parallelism")
    if key in positive and value < 1:
        raise ConfigError(f"'{key}' must be at least 1, got {value}", option=key)


@dataclass
class Settings:
    """The session's current settings (mutable: SET and RESET change them)."""

    values: dict[str, Any]

    @classmethod
    def defaults(cls) -> Settings:
        return cls({o.name: o.default for o in SETTINGS})

    def set(self, key: str, raw: str) -> None:
        """Apply ``SET 'key' = 'raw'``; unknown keys are an error with a suggestion."""
        option = next((o for o in SETTINGS if o.name == key), None)
        if option is None:
            raise ConfigError(
                f"unknown setting '{key}'",
                option=key,
                hint=did_you_mean(key, [o.name for o in SETTINGS], "setting"),
            )
        value = parse_value(option, key, raw)
        if option.kind == "int":
            _validate_int(key, value)
        if key == "execution.checkpointing.interval":
            checkpoint_interval(value)  # refuse a bad one now, not when a job starts
        if key == "pipeline.max-parallelism" and value > 32768:
            raise ConfigError("'pipeline.max-parallelism' is at most 32768", option=key)
        self.values[key] = value

    def reset(self, key: str | None = None) -> None:
        defaults = Settings.defaults().values
        if key is None:
            self.values = defaults
        elif key in defaults:
            self.values[key] = defaults[key]
        else:
            raise ConfigError(f"unknown setting '{key}'", option=key)

    def update(self, pairs: Mapping[str, str]) -> None:
        for k, v in pairs.items():
            self.set(k, v)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def copy(self) -> Settings:
        return Settings(dict(self.values))

    @property
    def parallelism(self) -> int:
        return int(self.values["parallelism.default"])

    @property
    def batch_size(self) -> int:
        return int(self.values["execution.batch-size"])

    @property
    def max_parallelism(self) -> int:
        return int(self.values["pipeline.max-parallelism"])

    @property
    def agg_phase_strategy(self) -> str:
        return str(self.values["table.optimizer.agg-phase-strategy"])

    @property
    def disabled_rules(self) -> frozenset[str]:
        raw = str(self.values.get("table.optimizer.disabled-rules") or "")
        return frozenset(r.strip() for r in raw.split(",") if r.strip())
