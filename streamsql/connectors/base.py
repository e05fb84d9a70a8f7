"""What a connector is: its options, and the Source and Sink objects it creates."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TextIO

import pyarrow as pa

from streamsql.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Option:
    """One connector option as it appears in ``WITH ('name' = 'value')``.

    ``name`` may hold one ``#`` standing for a column name, as in ``fields.#.kind``.
    ``kind`` is one of: string, int, bool, duration (e.g. '10 s', '500 ms', '1 min'),
    memory (e.g. '128 MB'), choice (one of ``choices``, case-insensitive), char.
    ``minimum`` bounds an int, duration (ms) or memory (bytes) value from below.
    """

    name: str
    kind: str = "string"
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    minimum: int | None = None

    def matches(self, key: str) -> str | None:
        """The column name bound to ``#`` (or "" when the option has none) if ``key`` fits."""
        if "#" not in self.name:
            return "" if key == self.name else None
        head, tail = self.name.split("#", 1)
        if key.startswith(head) and key.endswith(tail) and len(key) > len(head) + len(tail):
            return key[len(head) : len(key) - len(tail)]
        return None


#: How many parallel instances read a table (Flink's name); the planner asks
#: ``Connector.scan_parallelism``. Connectors whose sources split their work list it.
SCAN_PARALLELISM = Option(
    "scan.parallelism", "int", minimum=1, help="parallel instances that read the table"
)

#: How often a lookup join reloads the table (Flink's name); unset: loaded once per job.
LOOKUP_CACHE_TTL = Option(
    "lookup.cache.ttl",
    "duration",
    minimum=1,
    help="a lookup join reloads the table when its copy is this old",
)


@dataclass(frozen=True)
class TableContext:
    """What a connector knows about the table it serves."""

    name: str
    schema: pa.Schema  # physical (declared, non-computed) columns, in declaration order
    options: Mapping[str, str]
    primary_key: tuple[str, ...] = ()


@dataclass
class SourceContext:
    """Per-instance settings a source is created with."""

    columns: Sequence[str]  # the physical columns the query needs, a subset of the schema
    batch_size: int = 262144
    instance: int = 0
    parallelism: int = 1


@dataclass
class SinkContext:
    """Per-instance settings a sink is created with."""

    instance: int = 0
    parallelism: int = 1
    stdout: TextIO | None = None  # where print writes (None: sys.stdout at write time)
    job_name: str = "job"
    #: Stable across restarts of a job from the same state directory (names pending
    #: files and commit markers); a fresh one for a job without checkpoints.
    job_id: str = "job"
    #: Exactly-once checkpointing is on: a transactional sink makes rows visible only in
    #: ``commit`` (never in ``flush``, ``write`` or ``close``).
    exactly_once: bool = False


class Source:
    """Reads one table (or one split of it) as Arrow record batches.

    ``read()`` returns the next batch of at most ``batch_size`` rows holding exactly the
    requested columns with the declared Arrow types, or None at the end of a bounded input.
    An unbounded source with nothing to deliver right now returns an empty batch.
    """

    bounded: bool = True

    def __init__(self) -> None:
        self.counters: dict[str, int] = {"rows_read": 0, "parse_errors_skipped": 0}

    def open(self) -> None:
        """Acquire files or handles."""

    def read(self) -> pa.RecordBatch | None:
        raise NotImplementedError

    def position(self) -> dict[str, Any]:
        """Where the next read() starts, as JSON-serialisable data (for checkpoints)."""
        return {}

    def seek(self, position: Mapping[str, Any]) -> None:
        """Continue from a position returned by position()."""
        raise NotImplementedError(f"{type(self).__name__} cannot resume from a position")

    def watermark(self) -> int | None:
        """A watermark (epoch ms) the source itself vouches for, beyond what its rows show.

        For sources that know no earlier row can come (the driver takes the larger of this
        and the rows' watermark). None: the source vouches for nothing.
        """
        return None

    def close(self) -> None:
        """Release files or handles."""


class Sink:
    """Writes the rows of one sink instance."""

    #: Delivery guarantee the sink gives on its own, as EXPLAIN states it.
    guarantee: ClassVar[str] = "at-least-once"

    def __init__(self) -> None:
        self.counters: dict[str, int] = {"rows_written": 0}

    def open(self) -> None:
        """Prepare for writing."""

    def write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make everything written so far durable/visible (without exactly-once checkpoints:
        at each checkpoint barrier and on a stop).
        """

    def close(self) -> None:
        """End of input: finish and publish whatever is pending. With exactly-once
        checkpoints a transactional sink publishes nothing here: the executor pre-commits
        after close and commits with the job's final checkpoint.
        """

    # -- two-phase commit (transactional sinks, exactly-once checkpoints) ---------------------

    #: Whether the sink takes part in exactly-once checkpoints (pre_commit/commit).
    transactional: ClassVar[bool] = False

    def pre_commit(self, epoch: int) -> Any:
        """Checkpoint ``epoch``'s barrier reached the sink: make every row written before it
        durable but not yet visible, and return a JSON-serialisable handle that ``commit``
        (of this sink or, after a crash, of ``Connector.recover_sink``) publishes them with.
        """
        return None

    def commit(self, epoch: int, handle: Any) -> None:
        """Checkpoint ``epoch`` completed: publish what ``pre_commit(epoch)`` returned
        ``handle`` for. Idempotent; called from another thread than ``write``.
        """


class Connector:
    """A named connector: validates options and creates sources and sinks."""

    name: ClassVar[str] = ""
    source_options: ClassVar[tuple[Option, ...]] = ()
    sink_options: ClassVar[tuple[Option, ...]] = ()
    #: The Sink class create_sink returns, if the connector can be written to.
    sink_class: ClassVar[type[Sink] | None] = None

    def accepts_updates(self, table: TableContext) -> bool:
        """Whether the sink can take an updating stream (rows with ``_op``)."""
        return False

    def guarantee(self) -> str:
        """The delivery guarantee of this connector's sink, as EXPLAIN states it."""
        return self.sink_class.guarantee if self.sink_class is not None else "none"

    def options_for(self, role: str, options: Mapping[str, str]) -> tuple[Option, ...]:
        """The options valid for ``role`` ('source' or 'sink'); may depend on e.g. 'format'."""
        return self.source_options if role == "source" else self.sink_options

    def validate(self, table: TableContext, role: str) -> dict[str, Any]:
        """Check the table's options for ``role`` and return them parsed (name -> value)."""
        return parse_options(self.name, table.options, self.options_for(role, table.options), role)

    def is_bounded(self, table: TableContext) -> bool:
        return True

    def scan_parallelism(self, table: TableContext) -> int | None:
        """The table's 'scan.parallelism' (instances that read it), None when not set.

        None too when the connector takes no such option (validation reports it as unknown).
        """
        raw = table.options.get(SCAN_PARALLELISM.name)
        if raw is None or SCAN_PARALLELISM not in self.options_for("source", table.options):
            return None
        return parse_value(SCAN_PARALLELISM, SCAN_PARALLELISM.name, raw)

    def lookup_cache_ttl(self, table: TableContext) -> int:
        """The table's 'lookup.cache.ttl' in ms (0 when not set or not supported)."""
        raw = table.options.get(LOOKUP_CACHE_TTL.name)
        if raw is None or LOOKUP_CACHE_TTL not in self.options_for("source", table.options):
            return 0
        return parse_value(LOOKUP_CACHE_TTL, LOOKUP_CACHE_TTL.name, raw)

    def recover_sink(self, table: TableContext, job_id: str, handles: list[Any]) -> None:
        """Before a job restored from a checkpoint starts: publish what the checkpoint's
        sink instances pre-committed (``handles``, each as ``pre_commit`` returned it; some
        may be published already) and discard whatever job ``job_id`` pre-committed or
        wrote after it. Transactional sinks only.
        """

    def create_source(self, table: TableContext, ctx: SourceContext) -> Source:
        raise ConfigError(f"connector {self.name!r} cannot be read from", option="connector")

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        raise ConfigError(f"connector {self.name!r} cannot be written to", option="connector")

    def describe(self, table: TableContext) -> str:
        """A one-line description for EXPLAIN, e.g. ``filesystem(path=/d, format=csv)``."""
        keys = [k for k in ("path", "format") if k in table.options]
        inner = ", ".join(f"{k}={table.options[k]}" for k in keys)
        return f"{self.name}({inner})" if inner else self.name


_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(ms|milli|millis|millisecond|milliseconds|s|sec|secs|second|seconds|"
    r"min|mins|minute|minutes|h|hour|hours|d|day|days)?\s*$",
    re.IGNORECASE,
)
_DURATION_MS = {
    "ms": 1,
    "mil": 1,
    "s": 1000,
    "se": 1000,
    "mi": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|bytes|kb|k|mb|m|gb|g)?\s*$", re.IGNORECASE)
_MEMORY_BYTES = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_UNITS = {"int": "", "duration": " ms", "memory": " bytes"}  # kinds a minimum applies to


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a Flink-style duration such as '10 s', '500ms' or '2 min'.

    >>> parse_duration_ms("2 min"), parse_duration_ms("250 ms"), parse_duration_ms("3")
    (120000, 250, 3)
    """
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration (try '10 s', '500 ms' or '1 min')")
    value, unit = float(m.group(1)), (m.group(2) or "ms").lower()
    if unit in ("min", "mins", "minute", "minutes"):
        factor = 60_000
    elif unit.startswith("mil") or unit == "ms":
        factor = 1
    else:
        factor = _DURATION_MS.get(unit[:2], _DURATION_MS.get(unit[:1], 1))
    return int(value * factor)


def parse_memory_bytes(text: str) -> int:
    """Bytes in a memory size such as '128 MB' or '64kb'.

    >>> parse_memory_bytes("2 kb")
    2048
    """
    m = _MEMORY.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a memory size (try '128 MB')")
    return int(float(m.group(1)) * _MEMORY_BYTES[(m.group(2) or "b")[0].lower()])


def parse_value(option: Option, key: str, raw: str) -> Any:
    """One option's value converted to its kind, or a ConfigError naming the option."""
    try:
        if option.minimum is not None and option.kind in _UNITS:
            value = parse_value(replace(option, minimum=None), key, raw)
            if value < option.minimum:
                least = f"{option.minimum}{_UNITS[option.kind]}"
                raise ValueError(f"{raw!r} is less than the minimum ({least})")
            return value
        if option.kind == "int":
            return int(raw)
        if option.kind == "bool":
            low = raw.strip().lower()
            if low not in ("true", "false"):
                raise ValueError(f"{raw!r} is not 'true' or 'false'")
            return low == "true"
        if option.kind == "duration":
            return parse_duration_ms(raw)
        if option.kind == "memory":
            return parse_memory_bytes(raw)
        if option.kind == "char":
            escaped = raw.startswith("\\") and len(raw) > 1  # '\t' is a tab, '\' a backslash
            text = raw.encode().decode("unicode_escape") if escaped else raw
            if len(text) != 1:
                raise ValueError(f"{raw!r} is not a single character")
            return text
        if option.kind == "choice":
            for choice in option.choices:
                if raw.lower() == choice.lower():
                    return choice
            raise ValueError(f"{raw!r} is not one of: " + ", ".join(option.choices))
        return raw
    except ValueError as e:
        raise ConfigError(f"option '{key}': {e}", option=key) from None


def parse_options(
    connector: str, raw: Mapping[str, str], specs: Sequence[Option], role: str
) -> dict[str, Any]:
    """Validate ``raw`` against ``specs``: unknown keys and missing required keys are errors.

    Returns the parsed values of every option given or defaulted, keyed by the option's
    concrete key (``fields.id.kind``, not ``fields.#.kind``).
    """
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "connector":
            continue
        spec = next((s for s in specs if s.matches(key) is not None), None)
        if spec is None:
            names = [s.name for s in specs]
            hint = did_you_mean(key, names, "option")
            raise ConfigError(
                f"connector {connector!r} has no {role} option '{key}'",
                hint=hint or ("valid options: " + ", ".join(names) if names else None),
                option=key,
            )
        parsed[key] = parse_value(spec, key, value)
    for spec in specs:
        if "#" in spec.name:
            continue
        if spec.name not in parsed:
            if spec.required:
                raise ConfigError(
                    f"connector {connector!r} needs option '{spec.name}'"
                    + (f" ({spec.help})" if spec.help else ""),
                    option="connector",
                )
            if spec.default is not None:
                parsed[spec.name] = spec.default
    return parsed


@dataclass
class Registry:
    """Connectors by name."""

    connectors: dict[str, Connector] = field(default_factory=dict)

    def add(self, connector: Connector) -> Connector:
        self.connectors[connector.name] = connector
        return connector

    def get(self, name: str) -> Connector:
        try:
            return self.connectors[name.lower()]
        except KeyError:
            raise ConfigError(
                f"unknown connector {name!r}",
                hint=did_you_mean(name, sorted(self.connectors), "connector")
                or "available connectors: " + ", ".join(sorted(self.connectors)),
                option="connector",
            ) from None


REGISTRY = Registry()


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector available by its ``name``."""
    REGISTRY.add(cls())
    return cls
