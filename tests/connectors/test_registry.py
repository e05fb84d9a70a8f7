"""The registry, the blackhole sink, and option validation common to every connector."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from streamsql.connectors import REGISTRY, get_connector
from streamsql.connectors.base import SinkContext, SourceContext
from streamsql.connectors.blackhole import BlackholeSink
from streamsql.errors import ConfigError
from tests.connectors.util import fs_table, table

SCHEMA = pa.schema([("id", pa.int64()), ("m", pa.map_(pa.string(), pa.int32()))])


def test_every_connector_is_registered() -> None:
    assert sorted(REGISTRY.connectors) == [
        "blackhole",
        "datagen",
        "duckdb",
        "filesystem",
        "memory",
        "print",
    ]
    assert get_connector("DataGen").name == "datagen"


def test_unknown_connector_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="unknown connector 'filesystm'") as info:
        get_connector("filesystm")
    assert info.value.hint == "did you mean 'filesystem'?"
    assert info.value.option == "connector"


def test_blackhole_counts_and_discards() -> None:
    sink = get_connector("blackhole").create_sink(
        table(SCHEMA, connector="blackhole"), SinkContext()
    )
    assert isinstance(sink, BlackholeSink)
    sink.open()
    sink.write(pa.record_batch({"id": [1, 2, 3]}))
    sink.write(pa.record_batch({"id": pa.array([], pa.int64())}))
    sink.flush()
    sink.close()
    assert sink.counters == {"rows_written": 3}
    assert sink.guarantee == "at-least-once"


def test_blackhole_has_no_options_and_no_source() -> None:
    with pytest.raises(ConfigError, match="has no sink option 'path'") as info:
        get_connector("blackhole").create_sink(
            table(SCHEMA, connector="blackhole", path="/x"), SinkContext()
        )
    assert info.value.option == "path"
    with pytest.raises(ConfigError, match="cannot be read from"):
        get_connector("blackhole").create_source(
            table(SCHEMA, connector="blackhole"), SourceContext([])
        )


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        ({"format": "csv"}, "needs option 'path'", None),
        ({"path": "/d"}, "needs option 'format'", None),
        ({"path": "/d", "format": "avro"}, "'avro' is not one of: csv, json, parquet", None),
        (
            {"path": "/d", "format": "csv", "csv.field-delimeter": ";"},
            "has no source option",
            "'csv.field-delimiter'",
        ),
        (
            {"path": "/d", "format": "csv", "json.fail-on-missing-field": "true"},
            "has no source option 'json.fail-on-missing-field' for format 'csv'",
            "'json.*' options apply when 'format' = 'json'",
        ),
        (
            {"path": "/d", "format": "json", "csv.allow-comments": "true"},
            "has no source option",
            "'csv.*'",
        ),
        (
            {"path": "/d", "format": "csv", "nope": "1"},
            "has no source option 'nope'",
            "available option names: path, format",
        ),
        (
            {"path": "/d", "format": "csv", "csv.field-delimiter": ";;"},
            "';;' is not a single character",
            None,
        ),
        (
            {"path": "/d", "format": "csv", "csv.array-element-delimiter": ""},
            "must not be empty",
            None,
        ),
        (
            {"path": "/d", "format": "parquet", "parquet.compression": "zip"},
            "'zip' is not one of",
            None,
        ),
    ],
)
def test_filesystem_option_errors(options: dict, message: str, hint: str | None) -> None:
    t = table(SCHEMA.remove(1), connector="filesystem", **options)
    with pytest.raises(ConfigError, match=message) as info:
        get_connector("filesystem").validate(t, "source")
    if hint is not None:
        assert hint in (info.value.hint or ""), info.value.hint


def test_filesystem_reading_and_writing_options_live_together(tmp_path: Path) -> None:
    options = {"sink.rolling-policy.file-size": "1 MB", "format.ignore-parse-errors": "true"}
    t = fs_table(SCHEMA.remove(1), tmp_path, "csv", **options)
    assert get_connector("filesystem").validate(t, "source")["format.ignore-parse-errors"] is True
    parsed = get_connector("filesystem").validate(t, "sink")
    assert parsed["sink.rolling-policy.file-size"] == 1 << 20
    assert parsed["sink.rolling-policy.rollover-interval"] == 30 * 60_000
    assert parsed["csv.field-delimiter"] == ","


def test_json_allows_maps_csv_does_not(tmp_path: Path) -> None:
    get_connector("filesystem").validate(fs_table(SCHEMA, tmp_path, "json"), "source")
    get_connector("filesystem").validate(fs_table(SCHEMA, tmp_path, "parquet"), "sink")
    with pytest.raises(ConfigError, match="csv format cannot hold column 'm' of type MAP"):
        get_connector("filesystem").validate(fs_table(SCHEMA, tmp_path, "csv"), "sink")


def test_describe_and_boundedness(tmp_path: Path) -> None:
    t = fs_table(SCHEMA, tmp_path, "parquet")
    fs = get_connector("filesystem")
    assert fs.describe(t) == f"filesystem(path={tmp_path}, format=parquet)"
    assert fs.is_bounded(t)
