"""Operator ids and the query fingerprint: the same query at any parallelism has the same
ones; a changed query has another fingerprint, and keeps the ids of what did not change.
"""

from __future__ import annotations

import streamsql
from streamsql.checkpoint.identity import fingerprint, operator_ids
from streamsql.parser import ast, parse_script
from streamsql.plan.binder import Binder

DDL = """
CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE out (ws TIMESTAMP(3), auction BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
"""
QUERY = """
INSERT INTO out SELECT window_start, auction, COUNT(*)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
WHERE price > {limit}
GROUP BY window_start, window_end, auction
"""


def planned(parallelism: int, limit: int = 5):
    s = streamsql.connect(settings={"parallelism.default": str(parallelism)})
    s.execute(DDL)
    (stmt,) = parse_script(QUERY.format(limit=limit))
    assert isinstance(stmt, ast.Insert)
    return s.plan((Binder(s.catalog, s.settings).insert(stmt),)).roots


def ids(roots) -> list[str]:
    return sorted(uid for uid in operator_ids(roots).values() if uid)


def test_the_same_query_at_another_parallelism_has_the_same_ids():
    one, three = planned(1), planned(3)
    assert fingerprint(one) == fingerprint(three)
    assert ids(one) == ids(three)
    # At 3 the aggregate runs in two phases: its global phase has the one-phase id.
    assert any(uid.startswith("WindowAggregate(") for uid in ids(three))
    assert not any("Local" in uid or "Exchange" in uid for uid in ids(three))


def test_a_changed_query_has_another_fingerprint():
    before, after = planned(1), planned(1, limit=6)
    assert fingerprint(before) != fingerprint(after)
    # The scan and the sink did not change: their state (positions, commits) still fits.
    assert set(ids(before)) & set(ids(after)) >= {
        uid for uid in ids(before) if uid.startswith(("Scan(", "Sink("))
    }
