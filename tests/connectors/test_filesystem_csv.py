"""The filesystem source reading csv: every type, every csv.* option, bad rows."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pytest

from streamsql.errors import ConfigError, ExecError
from tests.connectors.util import fs_table, read_batches, read_rows, source

ALL_TYPES = pa.schema(
    [
        ("i8", pa.int8()),
        ("i16", pa.int16()),
        ("i32", pa.int32()),
        ("i64", pa.int64()),
        ("f32", pa.float32()),
        ("f64", pa.float64()),
        ("dec", pa.decimal128(10, 2)),
        ("ok", pa.bool_()),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("d", pa.date32()),
        ("t", pa.time32("ms")),
        ("ts", pa.timestamp("ms")),
        ("ts6", pa.timestamp("us")),
        ("ltz", pa.timestamp("ms", tz="UTC")),
        ("arr", pa.list_(pa.int64())),
        ("r", pa.struct([("x", pa.int32()), ("y", pa.string())])),
    ]
)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_type(tmp_path: Path) -> None:
    line1 = (
        "-8,-16,32,64,1.5,2.25,12.345,true,hello,aGk=,2020-04-15,08:05:01.5,"
        "2020-04-15 08:05:00,2020-04-15T08:05:00.123456,2020-04-15 08:05:00Z,1;2;3,7;seven"
    )
    line2 = "127,,,,,,,FALSE,,,,,,,,,"
    f = write(tmp_path / "all.csv", f"{line1}\n{line2}\n")
    rows = read_rows(source(fs_table(ALL_TYPES, f, "csv")))
    utc = dt.timezone.utc
    assert rows[0] == {
        "i8": -8,
        "i16": -16,
        "i32": 32,
        "i64": 64,
        "f32": 1.5,
        "f64": 2.25,
        "dec": decimal.Decimal("12.35"),  # rounded half-up to the declared scale, as Flink
        "ok": True,
        "s": "hello",
        "b": b"hi",
        "d": dt.date(2020, 4, 15),
        "t": dt.time(8, 5, 1, 500000),
        "ts": dt.datetime(2020, 4, 15, 8, 5),
        "ts6": dt.datetime(2020, 4, 15, 8, 5, 0, 123456),
        "ltz": dt.datetime(2020, 4, 15, 8, 5, tzinfo=utc),
        "arr": [1, 2, 3],
        "r": {"x": 7, "y": "seven"},
    }
    # empty fields: NULL for every type but STRING, which reads ''
    assert rows[1] == {**dict.fromkeys(ALL_TYPES.names), "i8": 127, "ok": False, "s": ""}


def test_batches_have_declared_types_and_requested_columns(tmp_path: Path) -> None:
    f = write(tmp_path / "a.csv", "1,x,2020-01-01 00:00:00\n2,y,2020-01-01 00:00:01\n")
    schema = pa.schema([("id", pa.int64()), ("s", pa.string()), ("ts", pa.timestamp("ms"))])
    (batch,) = read_batches(source(fs_table(schema, f, "csv"), columns=["ts", "id"]))
    assert batch.schema == pa.schema([("ts", pa.timestamp("ms")), ("id", pa.int64())])
    assert batch.column("id").to_pylist() == [1, 2]


def test_projection_of_no_columns_counts_rows(tmp_path: Path) -> None:
    f = write(tmp_path / "a.csv", "1,x\n2,y\n3,z\n")
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    batches = read_batches(source(fs_table(schema, f, "csv"), columns=[]))
    assert sum(b.num_rows for b in batches) == 3
    assert all(b.num_columns == 0 for b in batches)


def test_timestamp_forms(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "2020-04-15 08:05:00",
            "2020-04-15 08:05:00.5",
            "2020-04-15 08:05:00.123",
            "2020-04-15T08:05:00",
            "2020-04-15T08:05:00.123Z",
        ]
    )
    f = write(tmp_path / "ts.csv", text + "\n")
    schema = pa.schema([("ts", pa.timestamp("ms"))])
    got = [r["ts"] for r in read_rows(source(fs_table(schema, f, "csv")))]
    base = dt.datetime(2020, 4, 15, 8, 5)
    ms = dt.timedelta(milliseconds=1)
    assert got == [base, base + 500 * ms, base + 123 * ms, base, base + 123 * ms]


@pytest.mark.parametrize("batch_size", [1, 7, 65536])
def test_batch_sizes(tmp_path: Path, batch_size: int) -> None:
    f = write(tmp_path / "n.csv", "".join(f"{i},v{i}\n" for i in range(50)))
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    batches = read_batches(source(fs_table(schema, f, "csv"), batch_size=batch_size))
    assert all(0 < b.num_rows <= batch_size for b in batches)
    assert [r for b in batches for r in b.column("id").to_pylist()] == list(range(50))


def test_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_bytes(b"1,a\r\n2,b\r\n3,c")
    schema = pa.schema([("id", pa.int64()), ("s", pa.string())])
    assert read_rows(source(fs_table(schema, f, "csv"))) == [
        {"id": 1, "s": "a"},
        {"id": 2, "s": "b"},
        {"id": 3, "s": "c"},
    ]


SCHEMA2 = pa.schema([("id", pa.int64()), ("s", pa.string())])


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("1|a,b\n", {"csv.field-delimiter": "|"}, [(1, "a,b")]),
        ("1\ta\n", {"csv.field-delimiter": "\\t"}, [(1, "a")]),
        ("1,'a,b'\n", {"csv.quote-character": "'"}, [(1, "a,b")]),
        ('1,"a"\n', {"csv.disable-quote-character": "true"}, [(1, '"a"')]),
        ('1,"a""b"\n', {}, [(1, 'a"b')]),
        ("1,a\\,b\n", {"csv.escape-character": "\\"}, [(1, "a,b")]),
        ("#c,c\n1,a\n", {"csv.allow-comments": "true"}, [(1, "a")]),
        ("N,N\n1,a\n", {"csv.null-literal": "N"}, [(None, None), (1, "a")]),
        ("1,a\n\n\n2,b\n", {}, [(1, "a"), (2, "b")]),
    ],
)
def test_csv_options(tmp_path: Path, text: str, options: dict, expected: list) -> None:
    f = write(tmp_path / "o.csv", text)
    rows = read_rows(source(fs_table(SCHEMA2, f, "csv", **options)))
    assert [(r["id"], r["s"]) for r in rows] == expected


def test_array_element_delimiter(tmp_path: Path) -> None:
    f = write(tmp_path / "a.csv", "1|2||3,x|9\n")
    schema = pa.schema(
        [("a", pa.list_(pa.int32())), ("r", pa.struct([("s", pa.string()), ("n", pa.int8())]))]
    )
    t = fs_table(schema, f, "csv", **{"csv.array-element-delimiter": "|"})
    assert read_rows(source(t)) == [{"a": [1, 2, None, 3], "r": {"s": "x", "n": 9}}]


def test_line_numbers_count_comments_and_empty_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "c.csv", "# header\n\n1,a\n# note\nx,b\n")
    with pytest.raises(ExecError, match=r"c\.csv, line 5: 'x' is not a valid BIGINT"):
        read_rows(source(fs_table(SCHEMA2, f, "csv", **{"csv.allow-comments": "true"})))


def test_comment_lines_are_data_without_allow_comments(tmp_path: Path) -> None:
    f = write(tmp_path / "c.csv", "#c,c\n")
    with pytest.raises(ExecError, match="line 1: '#c' is not a valid BIGINT for column 'id'"):
        read_rows(source(fs_table(SCHEMA2, f, "csv")))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,a\n2,b\nabc,c\n", "bids.csv, line 3: 'abc' is not a valid BIGINT for column 'id'"),
        ("1,a\n2\n", "bids.csv, line 2: expected 2 fields, found 1"),
        ("1,a\n2,b,c\n", "bids.csv, line 2: expected 2 fields, found 3"),
        ("1,a\n1.5,b\n", "line 2: '1.5' is not a valid BIGINT"),
        ('1,a\n\n2,"b\n3,c\n', "line 3: unbalanced quote character"),
        ("99999999999999999999,a\n", "line 1: '99999999999999999999' is not a valid BIGINT"),
    ],
)
def test_bad_row_fails_with_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    f = write(tmp_path / "bids.csv", text)
    with pytest.raises(ExecError, match=message) as info:
        read_rows(source(fs_table(SCHEMA2, f, "csv")))
    assert "ignore-parse-errors" in (info.value.hint or "")


def test_bad_value_message_names_type_and_column(tmp_path: Path) -> None:
    f = write(tmp_path / "x.csv", "2020-01-01 00:00:00,yes\n")
    schema = pa.schema([("ts", pa.timestamp("ms")), ("flag", pa.bool_())])
    with pytest.raises(ExecError, match="line 1: 'yes' is not a valid BOOLEAN for column 'flag'"):
        read_rows(source(fs_table(schema, f, "csv")))


@pytest.mark.parametrize("switch", ["format.ignore-parse-errors", "csv.ignore-parse-errors"])
def test_ignore_parse_errors_counts_skipped_rows(tmp_path: Path, switch: str) -> None:
    text = '1,a\nx,b\n2,c\n3\n\n4,"d\n5,e,f\n6,g\n1.5,h\n7,i'
    f = write(tmp_path / "m.csv", text)
    src = source(fs_table(SCHEMA2, f, "csv", **{switch: "true"}), batch_size=2)
    rows = read_rows(src)
    assert [r["id"] for r in rows] == [1, 2, 6, 7]
    assert src.counters == {"rows_read": 4, "parse_errors_skipped": 5}


def test_bad_row_in_a_later_block_has_its_line_number(tmp_path: Path) -> None:
    n = 120_000  # about 1.6 MB: more than one block of lines
    lines = [f"{i},value-{i}" for i in range(n)]
    lines[100_000] = "oops,bad"
    f = write(tmp_path / "big.csv", "\n".join(lines) + "\n")
    with pytest.raises(ExecError, match=r"big\.csv, line 100001: 'oops'"):
        read_rows(source(fs_table(SCHEMA2, f, "csv"), batch_size=1000))
    src = source(fs_table(SCHEMA2, f, "csv", **{"csv.ignore-parse-errors": "true"}))
    ids = [i for b in read_batches(src) for i in b.column("id").to_pylist()]
    assert len(ids) == n - 1 and 100_000 not in ids
    assert src.counters["parse_errors_skipped"] == 1


def test_bad_row_only_in_unrequested_column_is_not_checked(tmp_path: Path) -> None:
    f = write(tmp_path / "p.csv", "1,2\nx,3\n")
    schema = pa.schema([("a", pa.int64()), ("b", pa.int64())])
    assert [r["b"] for r in read_rows(source(fs_table(schema, f, "csv"), columns=["b"]))] == [2, 3]


def test_csv_cannot_hold_maps(tmp_path: Path) -> None:
    schema = pa.schema([("m", pa.map_(pa.string(), pa.int32()))])
    with pytest.raises(ConfigError, match="csv format cannot hold column 'm'") as info:
        source(fs_table(schema, tmp_path, "csv"))
    assert info.value.option == "format"
