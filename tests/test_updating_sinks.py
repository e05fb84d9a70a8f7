"""Updating queries end to end: print shows the changelog, a keyed duckdb table holds the
current result, materialized views can be read while their job runs, state TTL expires keys.
"""

from __future__ import annotations

import io
import time

import pytest

import streamsql
from streamsql import duck

BIDS = """
CREATE TABLE bids (
    auction BIGINT, bidder BIGINT, price DECIMAL(10, 2), channel STRING, bid_time TIMESTAMP(3),
    WATERMARK FOR bid_time AS bid_time - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'queries/data/bids.csv', 'format' = 'csv');
"""
PER_AUCTION = "SELECT auction, COUNT(*) AS n, MAX(price) AS top FROM bids GROUP BY auction"


@pytest.fixture
def session(monkeypatch):
    from tests.slt.runner import ROOT

    monkeypatch.chdir(ROOT)
    s = streamsql.connect(settings={"execution.batch-size": "700"})
    s.execute(BIDS)
    yield s
    s.close()


def test_print_shows_the_changelog(monkeypatch):
    from tests.slt.runner import ROOT

    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    settings = {"execution.batch-size": "1000", "table.exec.mini-batch.enabled": "false"}
    s = streamsql.Session(settings=settings, stdout=out)
    s.execute(
        BIDS + "CREATE TABLE shown (auction BIGINT, n BIGINT) WITH ('connector' = 'print');"
        "INSERT INTO shown SELECT auction, COUNT(*) FROM bids WHERE auction = 1008 "
        "GROUP BY auction;"
    )
    lines = out.getvalue().splitlines()
    kinds = [line[:2] for line in lines]
    counts = [int(line.split(", ")[1].rstrip("]")) for line in lines]
    assert kinds == ["+I", "-U", "+U", "-U", "+U"]  # three batches of 1,000 rows
    assert counts[1] == counts[0] and counts[3] == counts[2]  # -U repeats what it retracts
    total = s.query("SELECT COUNT(*) AS n FROM bids WHERE auction = 1008").column("n")
    assert counts[-1] == total.to_pylist()[0] and counts[0] < counts[2] < counts[4]


def test_mini_batches_emit_fewer_changes(monkeypatch):
    from tests.slt.runner import ROOT

    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    s = streamsql.Session(settings={"execution.batch-size": "1000"}, stdout=out)
    s.execute(
        BIDS + "CREATE TABLE shown (auction BIGINT, n BIGINT) WITH ('connector' = 'print');"
        "INSERT INTO shown SELECT auction, COUNT(*) FROM bids WHERE auction = 1008 "
        "GROUP BY auction;"
    )
    total = s.query("SELECT COUNT(*) AS n FROM bids WHERE auction = 1008").column("n")
    # The three batches of a fast file are one mini-batch: only the final count is shown.
    assert out.getvalue().splitlines() == [f"+I[1008, {total.to_pylist()[0]}]"]


def test_duckdb_table_holds_the_current_result(session, tmp_path):
    db = tmp_path / "results.duckdb"
    session.execute(
        f"CREATE TABLE results (auction BIGINT, n BIGINT, top DECIMAL(10, 2), "
        f"PRIMARY KEY (auction) NOT ENFORCED) WITH ('connector' = 'duckdb', "
        f"'path' = '{db}', 'table' = 'per_auction');"
        f"INSERT INTO results {PER_AUCTION};"
    )
    expected = session.query(PER_AUCTION).sort_by("auction").to_pylist()
    con = duck.connect(str(db))
    got = duck.query_arrow(con, "SELECT * FROM per_auction ORDER BY auction").to_pylist()
    con.close()
    assert got == expected and len(got) == 8


def test_materialized_view_over_bounded_input(session):
    session.execute(f"CREATE MATERIALIZED VIEW per_auction AS {PER_AUCTION}")
    view = session.query("SELECT * FROM per_auction").sort_by("auction")
    assert view.to_pylist() == session.query(PER_AUCTION).sort_by("auction").to_pylist()
    assert "per_auction" in session.query("SHOW TABLES").column("name").to_pylist()
    total = session.query("SELECT SUM(n) AS s FROM per_auction").column("s").to_pylist()
    assert total == [3000]
    session.execute("DROP MATERIALIZED VIEW per_auction")
    with pytest.raises(streamsql.BindError, match="unknown table or view 'per_auction'"):
        session.query("SELECT * FROM per_auction")


def test_materialized_view_of_a_retract_stream(session):
    session.execute(
        "CREATE MATERIALIZED VIEW top2 AS SELECT auction, price FROM (SELECT *, ROW_NUMBER() "
        "OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bids) WHERE rn <= 2"
    )
    got = session.query("SELECT * FROM top2").sort_by(
        [("auction", "ascending"), ("price", "descending")]
    )
    assert got.num_rows == 16  # 8 auctions, two rows each
    assert [float(r["price"]) for r in got.to_pylist()[:2]] == [377.97, 365.11]


def test_materialized_view_is_readable_while_its_job_runs():
    s = streamsql.connect()
    s.execute(
        "CREATE TABLE gen (k INT, v INT) WITH ('connector' = 'datagen', "
        "'rows-per-second' = '5000', 'fields.k.min' = '1', 'fields.k.max' = '3')"
    )
    message = (
        s.execute("CREATE MATERIALIZED VIEW live AS SELECT k, COUNT(*) AS n FROM gen GROUP BY k")
        .outputs[0]
        .message
    )
    assert "keeps it up to date" in message
    seen = []
    for _ in range(3):
        time.sleep(0.3)
        seen.append(sum(s.query("SELECT n FROM live").column("n").to_pylist()))
    assert seen[0] > 0 and seen[0] < seen[1] < seen[2]
    s.execute("DROP MATERIALIZED VIEW live")
    s.close()


def test_state_ttl_drops_idle_keys(monkeypatch):
    from streamsql.runtime.operators import aggregate

    monkeypatch.setattr(aggregate, "TTL_SWEEP_S", 0.0)
    s = streamsql.connect(settings={"table.exec.state.ttl": "200 ms"})
    s.execute(
        "CREATE TABLE gen (k INT) WITH ('connector' = 'datagen', 'rows-per-second' = '40', "
        "'number-of-rows' = '20', 'fields.k.kind' = 'sequence', 'fields.k.start' = '1', "
        "'fields.k.end' = '20')"
    )
    handle = s.sql("SELECT k, COUNT(*) AS n FROM gen GROUP BY k")
    handle.to_arrow()
    expired = sum(c.get("state_expired_keys", 0) for c in handle.result.counters())
    assert expired > 0  # keys seen early were dropped before the input ended
