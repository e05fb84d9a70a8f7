"""Binding joins: which strategy a join gets, and the errors for joins that cannot stream."""

from __future__ import annotations

import pytest

import streamsql
from streamsql.errors import BindError, PlanError
from streamsql.plan.join_nodes import (
    IntervalJoin,
    Join,
    LookupJoin,
    RegularJoin,
    TemporalJoin,
    WindowJoin,
)
from streamsql.plan.nodes import walk

DDL = """
CREATE TABLE s (k BIGINT, v BIGINT, ts TIMESTAMP(3), pt AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE t (k BIGINT, w STRING, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE versions (k BIGINT, rate DOUBLE, ts TIMESTAMP(3), PRIMARY KEY (k) NOT ENFORCED,
    WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
"""
W = "(SELECT * FROM TABLE(TUMBLE(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND)))"


@pytest.fixture
def session(tmp_path):
    s = streamsql.connect()
    s.execute(DDL)
    (tmp_path / "d.csv").write_text("1,a\n")
    s.execute(
        f"CREATE TABLE dim (k BIGINT, name STRING) WITH ('connector' = 'filesystem', "
        f"'path' = '{tmp_path}/d.csv', 'format' = 'csv')"
    )
    return s


def joins(session, sql: str) -> list:
    from streamsql.parser import parse_statement
    from streamsql.plan.binder import Binder

    root = Binder(session.catalog).query(parse_statement(sql))
    return [n for n in walk(root) if isinstance(n, Join | LookupJoin)]


@pytest.mark.parametrize(
    ("sql", "strategy"),
    [
        ("SELECT * FROM s JOIN t ON s.k = t.k", RegularJoin),
        (
            "SELECT * FROM s JOIN t ON s.k = t.k AND t.ts BETWEEN s.ts - INTERVAL '5' SECOND "
            "AND s.ts",
            IntervalJoin,
        ),
        (
            "SELECT * FROM s JOIN t ON s.k = t.k AND s.ts >= t.ts AND s.ts < t.ts + "
            "INTERVAL '1' MINUTE",
            IntervalJoin,
        ),
        (
            f"SELECT * FROM {W.format(t='s')} a JOIN {W.format(t='t')} b ON a.k = b.k "
            "AND a.window_start = b.window_start AND a.window_end = b.window_end",
            WindowJoin,
        ),
        (
            "SELECT * FROM s JOIN versions FOR SYSTEM_TIME AS OF s.ts AS r ON s.k = r.k",
            TemporalJoin,
        ),
    ],
)
def test_strategy(session, sql, strategy):
    (join,) = joins(session, sql)
    assert isinstance(join.strategy, strategy)


def test_interval_bounds_are_read_from_either_side(session):
    (join,) = joins(
        session,
        "SELECT * FROM s JOIN t ON s.k = t.k AND s.ts >= t.ts AND s.ts < t.ts + "
        "INTERVAL '1' MINUTE",
    )
    # t.ts - s.ts lies in (-60 s, 0]
    assert (join.strategy.lower_ms, join.strategy.upper_ms) == (-59_999, 0)
    assert join.watermark_delay_ms == 59_999


def test_one_time_bound_only_is_a_regular_join_with_a_residual(session):
    (join,) = joins(session, "SELECT * FROM s JOIN t ON s.k = t.k AND t.ts > s.ts")
    assert isinstance(join.strategy, RegularJoin)
    assert join.condition is not None


def test_lookup_join_on_processing_time(session):
    (join,) = joins(
        session,
        "SELECT s.v, d.name FROM s LEFT JOIN dim FOR SYSTEM_TIME AS OF s.pt AS d ON s.k = d.k",
    )
    assert isinstance(join, LookupJoin)
    assert join.kind == "LEFT" and join.table_keys == ("k",)


def test_clashing_right_columns_are_renamed_and_both_stay_addressable(session):
    (join,) = joins(session, "SELECT s.k, t.k AS tk, t.w FROM s JOIN t ON s.k = t.k")
    assert join.left_keys == ("k",) and join.right_keys == ("k0",)


def test_using(session):
    (join,) = joins(session, "SELECT k, w FROM s JOIN t USING (k)")
    assert join.left_keys == ("k",)


def test_outer_regular_join_is_updating(session):
    (join,) = joins(session, "SELECT * FROM s LEFT JOIN t ON s.k = t.k")
    assert join.mode.updating
    (inner,) = joins(session, "SELECT * FROM s JOIN t ON s.k = t.k")
    assert not inner.mode.updating


ERRORS = [
    (
        "SELECT * FROM s JOIN t ON s.v > t.k",
        PlanError,
        "needs an equality between the two inputs",
        "interval join",
    ),
    ("SELECT * FROM s, t", PlanError, "cross join", "join on equal keys"),
    (
        "SELECT * FROM s JOIN t ON s.k = t.k AND t.ts BETWEEN s.ts AND s.ts - INTERVAL '1' SECOND",
        BindError,
        "can never hold",
        None,
    ),
    (
        "SELECT * FROM s JOIN t ON s.k = t.w",
        BindError,
        "cannot join",
        "CAST",
    ),
    (
        "SELECT * FROM s JOIN t FOR SYSTEM_TIME AS OF s.ts AS x ON s.k = x.k",
        PlanError,
        "is unbounded",
        "PRIMARY KEY and a WATERMARK",
    ),
    (
        "SELECT * FROM s JOIN versions FOR SYSTEM_TIME AS OF s.ts AS r ON s.v = r.rate",
        PlanError,
        "primary key",
        None,
    ),
    (
        "SELECT * FROM s JOIN dim FOR SYSTEM_TIME AS OF s.pt AS d ON s.v > d.k",
        PlanError,
        "needs an equality",
        None,
    ),
    ("SELECT k FROM s UNION SELECT k FROM t", PlanError, "UNION ALL", None),
    ("SELECT k, v FROM s UNION ALL SELECT k FROM t", BindError, "number of columns", None),
    ("SELECT v FROM s UNION ALL SELECT w FROM t", BindError, "CAST", None),
]


@pytest.mark.parametrize(("sql", "kind", "message", "hint"), ERRORS)
def test_errors_explain_what_would_work(session, sql, kind, message, hint):
    with pytest.raises(kind) as info:
        session.explain(sql)
    text = str(info.value) + " " + (info.value.hint or "")
    assert message in text
    if hint:
        assert hint in text
    assert info.value.span is not None or "UNION" in sql
