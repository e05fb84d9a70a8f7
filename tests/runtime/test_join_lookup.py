"""The lookup join operator: matches, NULL keys, duplicate table keys, the residual, LEFT
padding, updating inputs, computed and duckdb tables, and reloading after the cache TTL.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

import streamsql
from streamsql import duck
from streamsql.catalog import CatalogTable
from streamsql.errors import ExecError
from streamsql.parser.dialect import Flink
from streamsql.plan.join_nodes import LookupJoin
from streamsql.runtime.operators.join_lookup import LookupJoinOperator, TableIndex, _pad
from tests.runtime.stubs import Input, context, feed, opened

STREAM = pa.schema([("id", pa.int64()), ("k", pa.int32()), ("amount", pa.int64())])
DIM_DDL = "dk BIGINT, name STRING, v BIGINT"


def dim(tmp_path: Path, text: str, ddl: str = DIM_DDL, name: str = "dim") -> CatalogTable:
    """A csv filesystem table holding ``text``."""
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    session = streamsql.connect()
    session.execute(
        f"CREATE TABLE {name} ({ddl}) WITH ('connector' = 'filesystem', "
        f"'path' = '{path}', 'format' = 'csv')"
    )
    return session.catalog.table(name)


def rows(*values: tuple) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [dict(zip(STREAM.names, v, strict=True)) for v in values], STREAM
    )


def lookup(
    table: CatalogTable,
    kind: str = "INNER",
    where: str | None = None,
    ttl_ms: int = 0,
    keys: tuple[tuple[str, ...], tuple[str, ...]] = (("k",), ("dk",)),
    schema: pa.Schema = STREAM,
) -> LookupJoin:
    condition = sqlglot.parse_one(f"SELECT {where}", read=Flink).expressions[0] if where else None
    return LookupJoin(
        Input(fixed=schema),
        table,
        kind,
        keys[0],
        keys[1],
        ("name", "v"),
        ("d_name", "d_v"),
        condition=condition,
        cache_ttl_ms=ttl_ms,
    )


def joined(out: list[dict]) -> list[tuple]:
    return [(r["id"], r["d_name"]) for r in out]


TEXT = "1,one,10\n2,two,20\n2,deux,21\n,nothing,0\n3,three,30\n"


def test_inner_matches_every_duplicate_in_input_order(tmp_path: Path) -> None:
    op = opened(LookupJoinOperator(lookup(dim(tmp_path, TEXT))))
    out = feed(op, rows((1, 2, 5), (2, None, 5), (3, 1, 5), (4, 9, 5), (5, 2, 5)))
    assert joined(out) == [(1, "two"), (1, "deux"), (3, "one"), (5, "two"), (5, "deux")]
    assert out[2] == {"id": 3, "k": 1, "amount": 5, "d_name": "one", "d_v": 10}
    assert op.describe_state() == {"lookup_table_rows": 4}  # the NULL-keyed row can't match


def test_left_pads_rows_without_a_match(tmp_path: Path) -> None:
    op = opened(LookupJoinOperator(lookup(dim(tmp_path, TEXT), "LEFT")))
    out = feed(op, rows((1, 9, 5), (2, None, 5), (3, 3, 5), (4, 2, 5)))
    assert joined(out) == [(1, None), (2, None), (3, "three"), (4, "two"), (4, "deux")]
    assert out[0] == {"id": 1, "k": 9, "amount": 5, "d_name": None, "d_v": None}


def test_unique_keys_reuse_the_input_rows(tmp_path: Path) -> None:
    op = opened(LookupJoinOperator(lookup(dim(tmp_path, "1,one,10\n2,two,20\n"), "LEFT")))
    out = feed(op, rows((1, 2, 5), (2, 1, 5), (3, 7, 5)))
    assert joined(out) == [(1, "two"), (2, "one"), (3, None)]
    assert feed(op, rows()) == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("INNER", [(1, "deux"), (3, "three")]),
        ("LEFT", [(1, "deux"), (2, None), (3, "three"), (4, None)]),
    ],
)
def test_residual_condition(tmp_path: Path, kind: str, expected: list) -> None:
    op = opened(LookupJoinOperator(lookup(dim(tmp_path, TEXT), kind, where="d_v > amount")))
    out = feed(op, rows((1, 2, 20), (2, 1, 10), (3, 3, 0), (4, 8, 0)))
    assert joined(out) == expected


def test_several_keys_of_different_types(tmp_path: Path) -> None:
    table = dim(
        tmp_path, "1,a,x\n1,b,y\n2,a,z\n,a,w\n", "dk BIGINT, dk2 STRING, name STRING, v AS 1"
    )
    schema = pa.schema([("id", pa.int64()), ("k", pa.int16()), ("s", pa.string())])
    node = lookup(table, "LEFT", keys=(("k", "s"), ("dk", "dk2")), schema=schema)
    op = opened(LookupJoinOperator(node))
    batch = pa.record_batch(
        [[1, 2, 3, 4, 5], pa.array([1, 2, 1, None, 2], pa.int16()), ["b", "a", "c", "a", None]],
        schema=schema,
    )
    assert joined(feed(op, batch)) == [(1, "y"), (2, "z"), (3, None), (4, None), (5, None)]


def test_computed_table_columns(tmp_path: Path) -> None:
    table = dim(tmp_path, "1,one\n2,two\n", "raw BIGINT, name STRING, dk AS raw + 1, v AS raw * 10")
    op = opened(LookupJoinOperator(lookup(table)))
    assert feed(op, rows((1, 2, 0), (2, 3, 0))) == [
        {"id": 1, "k": 2, "amount": 0, "d_name": "one", "d_v": 10},
        {"id": 2, "k": 3, "amount": 0, "d_name": "two", "d_v": 20},
    ]


def test_updating_input_keeps_its_row_kinds(tmp_path: Path) -> None:
    op = opened(LookupJoinOperator(lookup(dim(tmp_path, TEXT))))
    batch = rows((1, 2, 0), (2, 9, 0), (3, 1, 0)).append_column(
        "_op", pa.array([0, 1, 3], pa.int8())
    )
    out = op.process_batch(batch, 0)[0]
    assert out.schema.names == [*STREAM.names, "d_name", "d_v", "_op"]
    assert out.column("_op").to_pylist() == [0, 0, 3]
    assert out.column("id").to_pylist() == [1, 1, 3]


def test_duckdb_table(tmp_path: Path) -> None:
    path = tmp_path / "dims.duckdb"
    con = duck.connect(str(path))
    duck.run(con, "CREATE TABLE dims AS SELECT 1::BIGINT AS dk, 'one' AS name, 10::BIGINT AS v")
    con.close()
    session = streamsql.connect()
    session.execute(
        f"CREATE TABLE dim ({DIM_DDL}) WITH ('connector' = 'duckdb', 'path' = '{path}', "
        "'table' = 'dims')"
    )
    op = opened(LookupJoinOperator(lookup(session.catalog.table("dim"))))
    assert joined(feed(op, rows((1, 1, 0), (2, 2, 0)))) == [(1, "one")]


def test_empty_table(tmp_path: Path) -> None:
    op = opened(LookupJoinOperator(lookup(dim(tmp_path, ""), "LEFT")))
    assert joined(feed(op, rows((1, 1, 0)))) == [(1, None)]
    assert op.describe_state() == {"lookup_table_rows": 0}


def test_reloads_after_the_cache_ttl(tmp_path: Path) -> None:
    table = dim(tmp_path, "1,old,10\n")
    now = [1_000_000]
    ctx = context()
    ctx.clock = lambda: now[0]
    op = opened(LookupJoinOperator(lookup(table, ttl_ms=60_000)), ctx)
    path = Path(table.options["path"])
    path.write_text("1,new,10\n2,two,20\n")
    os.utime(path, (0, 0))  # a different mtime cannot matter: the clock decides
    now[0] += 59_999
    assert joined(feed(op, rows((1, 1, 0), (2, 2, 0)))) == [(1, "old")]
    assert ctx.metrics.extra.get("lookup_reloads", 0) == 0
    now[0] += 1
    assert joined(feed(op, rows((1, 1, 0), (2, 2, 0)))) == [(1, "new"), (2, "two")]
    assert ctx.metrics.extra["lookup_reloads"] == 1
    assert op.describe_state() == {"lookup_table_rows": 2}


def test_without_a_ttl_the_table_is_read_once(tmp_path: Path) -> None:
    table = dim(tmp_path, "1,old,10\n")
    now = [0]
    ctx = context()
    ctx.clock = lambda: now[0]
    op = opened(LookupJoinOperator(lookup(table)), ctx)
    Path(table.options["path"]).write_text("1,new,10\n")
    now[0] += 10**9
    assert joined(feed(op, rows((1, 1, 0)))) == [(1, "old")]
    assert "lookup_reloads" not in ctx.metrics.extra


def test_an_unbounded_table_is_refused(tmp_path: Path) -> None:
    session = streamsql.connect()
    session.execute(
        "CREATE TABLE gen (dk BIGINT, name STRING, v BIGINT) WITH ('connector' = 'datagen')"
    )
    with pytest.raises(ExecError, match="unbounded"):
        opened(LookupJoinOperator(lookup(session.catalog.table("gen"))))


# -- the index against a reference -------------------------------------------------------

_keys = st.lists(st.one_of(st.none(), st.integers(0, 3)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    table=st.lists(st.tuples(st.none() | st.integers(0, 3), st.sampled_from("ab")), max_size=12),
    probe=st.lists(st.tuples(st.none() | st.integers(0, 4), st.sampled_from("abc")), max_size=12),
)
def test_index_matches_a_nested_loop(table: list, probe: list) -> None:
    def columns(pairs: list) -> list[pa.Array]:
        return [
            pa.array([p[0] for p in pairs], pa.int64()),
            pa.array([p[1] for p in pairs], pa.string()),
        ]

    index = TableIndex(columns(table), pa.table({"row": range(len(table))}))
    li, ri = index.probe(columns(probe))
    got = [(int(i), index.rows.column(0)[r].as_py()) for i, r in zip(li, ri, strict=True)]
    expected = [
        (i, j)
        for i, p in enumerate(probe)
        for j, t in enumerate(table)
        if p[0] is not None and p == t
    ]
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(0, 3), min_size=1, max_size=10))
def test_padding_keeps_pairs_and_adds_one_row_per_unmatched_row(counts: list[int]) -> None:
    li = np.repeat(np.arange(len(counts)), counts)
    ri = np.arange(len(li)) + 100
    got_li, got_ri = _pad(len(counts), li, ri)
    expected = [(i, 100 + j) for j, i in enumerate(li)] + [
        (i, -1) for i, c in enumerate(counts) if not c
    ]
    assert list(zip(got_li.tolist(), got_ri.tolist(), strict=True)) == sorted(expected)
