"""The filesystem connector: csv, json (lines) and parquet files, read and written.

Options follow Flink's names: 'path', 'format', the format's own options ('csv.*', 'json.*',
'parquet.compression'), 'source.monitor-interval' (set: the directory is watched for new
files and the table is unbounded, see fs_monitor), 'scan.parallelism',
'sink.rolling-policy.file-size' and 'sink.rolling-policy.rollover-interval'.
'format.ignore-parse-errors' (not in Flink) skips malformed rows whatever the format, and
'source.read-ahead' (not in Flink either: auto, true, false) decodes the next chunks on a
thread of their own (see read_ahead). As in
Flink, a table may carry both reading and writing options (it can be read and written); only
the format's own options are accepted.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from streamsql.connectors import fs_sink, read_ahead
from streamsql.connectors.base import (
    LOOKUP_CACHE_TTL,
    SCAN_PARALLELISM,
    Connector,
    Option,
    Sink,
    SinkContext,
    Source,
    SourceContext,
    TableContext,
    register,
)
from streamsql.connectors.formats.common import ReadSpec
from streamsql.connectors.formats.csv_reader import CsvOptions
from streamsql.connectors.formats.text_casts import duck_type
from streamsql.connectors.formats.writers import (
    ParquetFileWriter,
    TextWriter,
    encode_csv,
    encode_json,
)
from streamsql.connectors.fs_monitor import MonitoredFileSource
from streamsql.connectors.fs_sink import FileSink
from streamsql.connectors.fs_source import FileSource
from streamsql.errors import ConfigError
from streamsql.types import sql_type_name

FORMATS = ("csv", "json", "parquet")

COMMON = (
    Option("path", required=True, help="a file or directory"),
    Option("format", "choice", required=True, choices=FORMATS, help="csv, json or parquet"),
)
MONITOR_INTERVAL = Option(
    "source.monitor-interval",
    "duration",
    minimum=1,
    help="watch the directory: list it again this often and read new files (unbounded)",
)
READ_AHEAD = Option(
    "source.read-ahead",
    "choice",
    "auto",
    choices=("auto", "true", "false"),
    help="decode the next chunks on a thread of their own while the job works on the "
    "current one; auto: when the table is read by fewer instances than there are cores",
)
READING = (
    Option("format.ignore-parse-errors", "bool", False, help="skip malformed rows"),
    READ_AHEAD,
    MONITOR_INTERVAL,
    SCAN_PARALLELISM,
    LOOKUP_CACHE_TTL,
)
WRITING = (
    Option("sink.rolling-policy.file-size", "memory", 128 << 20),
    Option("sink.rolling-policy.rollover-interval", "duration", 30 * 60_000),
)
CSV = (
    Option("csv.field-delimiter", "char", ","),
    Option("csv.quote-character", "char", '"'),
    Option("csv.disable-quote-character", "bool", False),
    Option("csv.allow-comments", "bool", False),
    Option("csv.ignore-parse-errors", "bool", False),
    Option("csv.escape-character", "char"),
    Option("csv.null-literal", "string"),
    Option("csv.array-element-delimiter", "string", ";"),
)
JSON = (
    Option("json.ignore-parse-errors", "bool", False),
    Option("json.fail-on-missing-field", "bool", False),
    Option("json.timestamp-format.standard", "choice", "SQL", choices=("SQL", "ISO-8601")),
)
PARQUET = (
    Option(
        "parquet.compression",
        "choice",
        "snappy",
        choices=("snappy", "gzip", "zstd", "lz4", "brotli", "none", "uncompressed"),
    ),
)
BY_FORMAT = {"csv": CSV, "json": JSON, "parquet": PARQUET}


@register
class FilesystemConnector(Connector):
    """``'connector' = 'filesystem'``."""

    name = "filesystem"
    source_options = COMMON + READING + CSV + JSON
    sink_options = COMMON + WRITING + CSV + JSON + PARQUET
    sink_class = FileSink

    def options_for(self, role: str, options: Mapping[str, str]) -> tuple[Option, ...]:
        fmt = str(options.get("format", "")).lower()
        formats = BY_FORMAT.get(fmt)
        own = formats if formats is not None else CSV + JSON + PARQUET
        return COMMON + READING + WRITING + own

    def validate(self, table: TableContext, role: str) -> dict[str, Any]:
        fmt = str(table.options.get("format", "")).lower()
        for key in table.options:
            other = key.split(".", 1)[0]
            if other in BY_FORMAT and other != fmt and fmt in BY_FORMAT:
                raise ConfigError(
                    f"connector 'filesystem' has no {role} option '{key}' for format '{fmt}'",
                    option=key,
                    hint=f"'{other}.*' options apply when 'format' = '{other}'",
                )
        opts = super().validate(table, role)
        fmt = opts["format"]
        if (
            fmt == "json"
            and opts.get("json.ignore-parse-errors")
            and opts.get("json.fail-on-missing-field")
        ):
            raise ConfigError(
                "'json.fail-on-missing-field' and 'json.ignore-parse-errors' cannot both be true",
                option="json.fail-on-missing-field",
            )
        if fmt == "csv":
            _check_csv(table.schema, opts)
        if fmt in ("csv", "json"):
            for f in table.schema:
                duck_type(f.type)  # raises for a type that has no text form
        return opts

    def create_source(self, table: TableContext, ctx: SourceContext) -> Source:
        opts = self.validate(table, "source")
        missing = [c for c in ctx.columns if c not in table.schema.names]
        if missing:
            raise ValueError(f"table '{table.name}' has no column {missing[0]!r}")
        if not os.path.exists(opts["path"]):
            raise ConfigError(f"path '{opts['path']}' does not exist", option="path")
        fmt = opts["format"]
        ignore = opts["format.ignore-parse-errors"] or opts.get(f"{fmt}.ignore-parse-errors", False)
        batch_size = max(1, ctx.batch_size)
        spec = ReadSpec(table.schema, tuple(ctx.columns), opts, batch_size, bool(ignore))
        spec.read_ahead = read_ahead.wanted(opts[READ_AHEAD.name], ctx.parallelism)
        interval = opts.get(MONITOR_INTERVAL.name)
        if interval is not None:
            return MonitoredFileSource(
                opts["path"], fmt, spec, ctx.instance, ctx.parallelism, interval
            )
        return FileSource(opts["path"], fmt, spec, ctx.instance, ctx.parallelism)

    def is_bounded(self, table: TableContext) -> bool:
        return MONITOR_INTERVAL.name not in table.options

    def describe(self, table: TableContext) -> str:
        keys = ("path", "format", MONITOR_INTERVAL.name)
        inner = ", ".join(f"{k}={table.options[k]}" for k in keys if k in table.options)
        return f"filesystem({inner})"

    def create_sink(self, table: TableContext, ctx: SinkContext) -> Sink:
        opts = self.validate(table, "sink")
        fmt = opts["format"]
        return FileSink(
            opts["path"],
            table.schema,
            fmt,
            functools.partial(_writer, fmt, table.schema, opts),
            job=ctx.job_id if ctx.exactly_once else ctx.job_name,
            instance=ctx.instance,
            max_bytes=opts["sink.rolling-policy.file-size"],
            max_age_ms=opts["sink.rolling-policy.rollover-interval"],
            exactly_once=ctx.exactly_once,
        )

    def recover_sink(self, table: TableContext, job_id: str, handles: list[Any]) -> None:
        """Publish the part files the checkpoint's handles name and delete the job's other
        pending and in-progress files (rows after the checkpoint, written again on restart).
        """
        fs_sink.recover(self.validate(table, "sink")["path"], job_id, handles)


def _writer(fmt: str, schema: pa.Schema, opts: Mapping[str, Any], path: str, con: Any) -> Any:
    if fmt == "parquet":
        compression = opts["parquet.compression"]
        return ParquetFileWriter(
            path, schema, "none" if compression == "uncompressed" else compression
        )
    if fmt == "csv":
        csv = CsvOptions.from_options(opts)
        return TextWriter(path, lambda batch: encode_csv(batch, csv, con))
    iso = opts["json.timestamp-format.standard"] == "ISO-8601"
    return TextWriter(path, lambda batch: encode_json(batch, iso, con))


def _check_csv(schema: pa.Schema, opts: Mapping[str, Any]) -> None:
    """The csv format holds scalars, and ARRAY/ROW of scalars joined by a delimiter."""
    if not opts["csv.array-element-delimiter"]:
        raise ConfigError(
            "'csv.array-element-delimiter' must not be empty", option="csv.array-element-delimiter"
        )
    for f in schema:
        t = f.type
        inner = []
        if pa.types.is_list(t):
            inner = [t.value_type]
        elif pa.types.is_struct(t):
            inner = [c.type for c in t]
        if pa.types.is_map(t) or any(pa.types.is_nested(i) for i in inner):
            raise ConfigError(
                f"the csv format cannot hold column '{f.name}' of type {sql_type_name(t)}",
                option="format",
                hint="use 'format' = 'json' for MAP and nested ROW/ARRAY columns",
            )
