"""Plans to optimize: a bids table, bound with the real binder, one rule at a time."""

from __future__ import annotations

import pytest

import streamsql
from streamsql.optimizer import OptimizerContext
from streamsql.parser import parse_statement
from streamsql.plan.binder import Binder
from streamsql.plan.explain import explain_logical

DDL = """
CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
    ts TIMESTAMP(3),
    price_cents AS price * 100,
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE out (a BIGINT, b BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE out2 (a BIGINT, c STRING) WITH ('connector' = 'blackhole');
"""


class Planner:
    def __init__(self) -> None:
        self.session = streamsql.connect()
        self.session.execute(DDL)

    def bind(self, *sqls: str):
        roots = []
        for sql in sqls:
            stmt = parse_statement(sql)
            binder = Binder(self.session.catalog)
            roots.append(binder.insert(stmt) if hasattr(stmt, "table") else binder.query(stmt))
        return tuple(roots)

    def ctx(self, parallelism: int = 1) -> OptimizerContext:
        return OptimizerContext(parallelism=parallelism)


@pytest.fixture
def planner() -> Planner:
    return Planner()


def show(roots) -> str:
    return explain_logical(roots, physical=True)
