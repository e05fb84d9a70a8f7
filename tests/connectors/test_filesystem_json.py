"""The filesystem source reading JSON lines: types, nesting, missing fields, bad lines."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import pyarrow as pa
import pytest

from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import fs_table, read_batches, read_rows, source

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("small", pa.int16()),
        ("name", pa.string()),
        ("price", pa.decimal128(10, 2)),
        ("f", pa.float64()),
        ("ok", pa.bool_()),
        ("d", pa.date32()),
        ("t", pa.time32("ms")),
        ("ts", pa.timestamp("ms")),
        ("ltz", pa.timestamp("ms", tz="UTC")),
        ("b", pa.binary()),
        ("r", pa.struct([("x", pa.int32()), ("inner", pa.struct([("z", pa.string())]))])),
        ("arr", pa.list_(pa.int64())),
        ("m", pa.map_(pa.string(), pa.int32())),
    ]
)


def lines(path: Path, *objects: object) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objects))
    return path


def test_every_type(tmp_path: Path) -> None:
    full = {
        "id": 1,
        "small": -2,
        "name": "x",
        "price": 12.5,
        "f": 0.25,
        "ok": True,
        "d": "2020-04-15",
        "t": "08:05:01",
        "ts": "2020-04-15 08:05:00.123",
        "ltz": "2020-04-15 08:05:00.123Z",
        "b": "aGk=",
        "r": {"x": 3, "inner": {"z": "deep"}},
        "arr": [1, None, 3],
        "m": {"k": 1, "j": 2},
        "not_declared": [1, 2],
    }
    f = lines(tmp_path / "a.json", full, {"id": 2})
    rows = read_rows(source(fs_table(SCHEMA, f, "json")))
    assert rows[0] == {
        "id": 1,
        "small": -2,
        "name": "x",
        "price": decimal.Decimal("12.50"),
        "f": 0.25,
        "ok": True,
        "d": dt.date(2020, 4, 15),
        "t": dt.time(8, 5, 1),
        "ts": dt.datetime(2020, 4, 15, 8, 5, 0, 123000),
        "ltz": dt.datetime(2020, 4, 15, 8, 5, 0, 123000, tzinfo=dt.timezone.utc),
        "b": b"hi",
        "r": {"x": 3, "inner": {"z": "deep"}},
        "arr": [1, None, 3],
        "m": [("k", 1), ("j", 2)],
    }
    assert rows[1] == {**dict.fromkeys(SCHEMA.names), "id": 2}  # missing fields are NULL


def test_timestamps_in_sql_and_iso_form(tmp_path: Path) -> None:
    schema = pa.schema([("ts", pa.timestamp("ms")), ("ltz", pa.timestamp("ms", tz="UTC"))])
    sql = {"ts": "2020-04-15 08:05:00.5", "ltz": "2020-04-15 08:05:00.5Z"}
    iso = {"ts": "2020-04-15T08:05:00.5", "ltz": "2020-04-15T08:05:00.5Z"}
    f = lines(tmp_path / "t.json", sql, iso)
    for std in ("SQL", "ISO-8601"):
        t = fs_table(schema, f, "json", **{"json.timestamp-format.standard": std})
        rows = read_rows(source(t))
        assert rows[0] == rows[1]
        assert rows[0]["ts"] == dt.datetime(2020, 4, 15, 8, 5, 0, 500000)


def test_names_are_case_sensitive_and_values_convert_leniently(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("ok", pa.bool_())])
    f = lines(
        tmp_path / "c.json", {"ID": 5, "name": 7, "ok": "true"}, {"id": "12", "name": {"a": 1}}
    )
    rows = read_rows(source(fs_table(schema, f, "json")))
    assert rows == [
        {"id": None, "name": "7", "ok": True},
        {"id": 12, "name": '{"a":1}', "ok": None},
    ]


def test_projection_and_batch_sizes(tmp_path: Path) -> None:
    f = lines(tmp_path / "p.json", *({"id": i, "name": f"n{i}", "f": i / 2} for i in range(30)))
    for batch_size in (1, 7, 1000):
        batches = read_batches(source(fs_table(SCHEMA, f, "json"), ["f", "id"], batch_size))
        assert all(b.schema.names == ["f", "id"] and b.num_rows <= batch_size for b in batches)
        assert [i for b in batches for i in b.column("id").to_pylist()] == list(range(30))


def test_blank_lines_are_skipped_and_leading_blanks_allowed(tmp_path: Path) -> None:
    f = lines(tmp_path / "b.json", {"id": 1}, "", "   ", {"id": 2}, '  \t{"id": 3}', "\t")
    assert [r["id"] for r in read_rows(source(fs_table(SCHEMA, f, "json")))] == [1, 2, 3]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "bids.json, line 3: invalid JSON"),
        ("[1, 2]", "bids.json, line 3: not a JSON object"),
        ('{"id": "abc"}', "line 3: 'abc' is not a valid BIGINT for column 'id'"),
        ('{"small": 70000}', "line 3: '70000' is not a valid SMALLINT for column 'small'"),
        ('{"r": "text"}', "line 3: 'text' is not a valid ROW<.*> for column 'r'"),
        ('{"arr": {"a": 1}}', "line 3: .* is not a valid ARRAY<BIGINT> for column 'arr'"),
    ],
)
def test_bad_line_fails_with_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    f = lines(tmp_path / "bids.json", {"id": 1}, "", bad, {"id": 2})
    with pytest.raises(ExecError, match=message):
        read_rows(source(fs_table(SCHEMA, f, "json")))


@pytest.mark.parametrize("switch", ["format.ignore-parse-errors", "json.ignore-parse-errors"])
def test_ignore_parse_errors_counts_skipped_lines(tmp_path: Path, switch: str) -> None:
    f = lines(
        tmp_path / "m.json",
        {"id": 1},
        "{broken",
        {"id": "x"},
        {"id": 2},
        "7",
        {"id": 3, "arr": "no"},
        {"id": 4},
    )
    src = source(fs_table(SCHEMA, f, "json", **{switch: "true"}), batch_size=2)
    assert [r["id"] for r in read_rows(src)] == [1, 2, 4]
    assert src.counters == {"rows_read": 3, "parse_errors_skipped": 4}


def test_fail_on_missing_field(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    f = lines(tmp_path / "f.json", {"id": 1, "name": None}, {"id": 2})
    t = fs_table(schema, f, "json", **{"json.fail-on-missing-field": "true"})
    with pytest.raises(ExecError, match=r"f\.json, line 2: field 'name' is missing"):
        read_rows(source(t))
    # an explicit null is not missing
    t = fs_table(schema, lines(tmp_path / "g.json", {"id": 1, "name": None}), "json")
    assert read_rows(source(t)) == [{"id": 1, "name": None}]


def test_fail_on_missing_field_and_ignore_errors_conflict(tmp_path: Path) -> None:
    options = {"json.fail-on-missing-field": "true", "json.ignore-parse-errors": "true"}
    with pytest.raises(ConfigError, match="cannot both be true"):
        source(fs_table(SCHEMA, tmp_path, "json", **options))
