"""The late-row side output ('table.exec.late-rows.sink'): every row a windowed operator
drops as late is counted and, when the setting names a table, written there with the
watermark it missed; a row is either in a window's result or in that table, never lost.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

import streamsql
from streamsql.connectors import memory
from streamsql.connectors.memory import stream
from streamsql.errors import ConfigError, ExecError
from streamsql.session import Session
from tests.oracle.data import DDL_COLUMNS, write_dataset

SETTING = "table.exec.late-rows.sink"
PARALLELISM = (1, 2, 4)
TUMBLE = "TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))"
COUNTS = (
    f"SELECT window_start, auction, COUNT(*) AS n FROM {TUMBLE} "
    "GROUP BY window_start, window_end, auction"
)
_names = itertools.count()


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """Fresh memory stream names for bids, the result and the late rows (reset after)."""
    n = next(_names)
    out = {k: f"late-test-{n}-{k}" for k in ("bids", "out", "late", "asks")}
    yield out
    for name in out.values():
        stream(name).reset()


def session(
    names: dict[str, str],
    parallelism: int = 1,
    late: str | None = "late_bids",
    *,
    late_columns: str = "id BIGINT, price INT, channel STRING, "
    "`watermark` TIMESTAMP(3), operator STRING",
    **kw: str,
) -> Session:
    settings = {"parallelism.default": str(parallelism), **kw}
    if late is not None:
        settings[SETTING] = late
    s = streamsql.connect(settings=settings)
    s.execute(
        f"""
        CREATE TABLE bids (id BIGINT, auction BIGINT, price BIGINT, channel STRING,
                           ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
            WITH ('connector' = 'memory', 'name' = '{names["bids"]}');
        CREATE TABLE late_bids ({late_columns})
            WITH ('connector' = 'memory', 'name' = '{names["late"]}');
        """
    )
    return s


def bid(i: int, ts_s: float, price: int | None = None) -> dict:
    return {
        "id": i,
        "auction": i % 3,
        "price": i if price is None else price,
        "channel": "ab"[i % 2],
        "ts": int(ts_s * 1000),
    }


def script(names: dict[str, str], *, end: bool = True) -> None:
    """Bids 0..29 one a second (the watermark reaches 27 s: [0, 10) and [10, 20) fire),
    then 100..103 at 1, 15, 25 and 28 s (the first two late), then 200 at 40 s (the
    watermark reaches 38 s), then 300 at 5 s (late for 38 s).
    """
    bids = stream(names["bids"])
    bids.push([bid(i, i) for i in range(30)])
    bids.push([bid(100, 1), bid(101, 15), bid(102, 25), bid(103, 28)])
    bids.push([bid(200, 40)])
    bids.push([bid(300, 5)])
    if end:
        bids.end()


LATE = {100: 27_000, 101: 27_000, 300: 38_000}  # id -> the watermark it missed (ms)
ALL_IDS = [*range(30), 100, 101, 102, 103, 200, 300]


def late_rows(names: dict[str, str]) -> list[dict]:
    table = stream(names["late"]).table()
    return sorted(table.to_pylist(), key=lambda r: r["id"]) if table.num_columns else []


def test_late_rows_are_dropped_and_counted_by_default(names):
    s = session(names, late=None)
    script(names)
    result = s.sql(COUNTS)
    rows = result.to_arrow()
    assert sum(rows.column("n").to_pylist()) == len(ALL_IDS) - len(LATE)
    assert result.result.late_rows_dropped == len(LATE)
    assert result.result.late_rows_routed == 0
    assert "written to" not in result.result.summary()
    assert late_rows(names) == []


@pytest.mark.parametrize("parallelism", PARALLELISM)
def test_every_late_row_reaches_the_table_with_the_watermark_it_missed(names, parallelism):
    s = session(names, parallelism)
    script(names)
    handle = s.sql(COUNTS)
    counted = sum(handle.to_arrow().column("n").to_pylist())
    late = late_rows(names)
    assert [r["id"] for r in late] == sorted(LATE)
    for r in late:
        assert r["watermark"] == dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=LATE[r["id"]])
        assert r["price"] == r["id"] and r["channel"] == "ab"[r["id"] % 2]  # pruned, yet kept
        assert r["operator"].startswith("WindowAggregate#")
    assert counted + len(late) == len(ALL_IDS)  # nothing lost
    result = handle.result
    assert result.late_rows_dropped == result.late_rows_routed == len(LATE)
    assert f"{len(LATE)} late rows dropped ({len(LATE)} written to late_bids)" in result.summary()


@pytest.mark.parametrize("parallelism", PARALLELISM)
def test_window_top_n_routes_its_late_rows(names, parallelism):
    # The rows reach the top-N through parallel window-assigning instances (round-robin,
    # then one instance): which rows are late depends on the order the paths deliver in,
    # fixed only by the deterministic driver.
    s = session(names, parallelism, **{"execution.runtime": "deterministic"})
    script(names)
    top = s.sql(
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY window_start, window_end "
        f"ORDER BY price DESC) AS rn FROM {TUMBLE}) WHERE rn <= 1000"
    )
    emitted = top.to_arrow().column("id").to_pylist()
    late = late_rows(names)
    assert [r["id"] for r in late] == sorted(LATE)
    assert {r["operator"].split("#")[0] for r in late} == {"WindowTopN"}
    assert sorted(emitted + [r["id"] for r in late]) == sorted(ALL_IDS)


@pytest.mark.parametrize("parallelism", PARALLELISM)
@pytest.mark.parametrize("batch_size", [1, 7, 65536])
def test_a_file_dataset_loses_no_row(tmp_path, parallelism, batch_size):
    data = write_dataset(tmp_path / "bids", with_late=True)
    s = streamsql.connect(
        settings={
            "parallelism.default": str(parallelism),
            "execution.batch-size": str(batch_size),
            SETTING: "late_bids",
        }
    )
    s.execute(
        f"""
        CREATE TABLE bids ({DDL_COLUMNS}) WITH ('connector' = 'filesystem',
            'path' = '{data}', 'format' = 'parquet');
        CREATE TABLE late_bids (id BIGINT, ts TIMESTAMP(3), late BOOLEAN,
                                `watermark` TIMESTAMP(3), operator STRING)
            WITH ('connector' = 'filesystem', 'path' = '{tmp_path / "late"}',
                  'format' = 'parquet');
        """
    )
    handle = s.sql(COUNTS)
    counted = sum(handle.to_arrow().column("n").to_pylist())
    late = pq.read_table(tmp_path / "late").to_pylist()
    assert len(late) == 9 and all(r["late"] for r in late)  # the rows the data marks late
    assert all(r["watermark"] >= r["ts"] for r in late)
    total = pq.read_table(data).num_rows
    assert counted + len(late) == total
    assert handle.result.late_rows_routed == 9


def test_rows_late_for_only_some_cumulate_windows_still_count(names):
    """A CUMULATE row is late only when its period's last window has fired."""
    s = session(names)
    bids = stream(names["bids"])
    bids.push([bid(0, 0), bid(1, 7)])  # watermark 5 s: the 4 s window of [0, 12) fires
    bids.push([bid(2, 1)])  # misses [0, 4) but reaches [0, 8) and [0, 12): not late
    bids.push([bid(3, 30)])  # watermark 28 s: [0, 12) is done
    bids.push([bid(4, 2)])  # every window of its period fired: late
    bids.end()
    out = s.sql(
        "SELECT window_end, COUNT(*) AS n FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), "
        "INTERVAL '4' SECOND, INTERVAL '12' SECOND)) GROUP BY window_start, window_end"
    )
    counts = {r["window_end"].second: r["n"] for r in out.to_arrow().to_pylist()}
    assert counts[4] == 1 and counts[12] == 3  # row 2 is in the period's final window
    assert [r["id"] for r in late_rows(names)] == [4]
    assert out.result.late_rows_dropped == 1


def test_window_columns_asked_for_keep_the_windows_apart(names):
    """With window_start in the late table, each HOP window a row missed is a late row."""
    s = session(
        names, late_columns="id BIGINT, window_start TIMESTAMP(3), `watermark` TIMESTAMP(3)"
    )
    bids = stream(names["bids"])
    bids.push([bid(0, 0), bid(1, 20)])  # watermark 18 s
    bids.push([bid(2, 6)])  # windows [0, 10) and [5, 15) fired
    bids.end()
    sql = (
        "SELECT window_start, COUNT(*) AS n FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), "
        "INTERVAL '5' SECOND, INTERVAL '10' SECOND)) GROUP BY window_start, window_end"
    )
    assert "WindowTVF" in s.explain(sql)  # the operator gets the window columns
    s.sql(sql).to_arrow()
    late = sorted((r["id"], r["window_start"].second) for r in late_rows(names))
    assert late == [(2, 0), (2, 5)]


def test_columns_an_operator_lacks_are_null(names):
    s = session(names, late_columns="id BIGINT, price BIGINT, qty BIGINT, operator STRING")
    s.execute(
        f"""
        CREATE TABLE asks (id BIGINT, qty BIGINT, ts TIMESTAMP(3),
                           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
            WITH ('connector' = 'memory', 'name' = '{names["asks"]}');
        CREATE TABLE out (ws TIMESTAMP(3), n BIGINT)
            WITH ('connector' = 'memory', 'name' = '{names["out"]}');
        """
    )
    script(names)
    asks = stream(names["asks"])
    asks.push([{"id": 1, "qty": 5, "ts": 20_000}])
    asks.push([{"id": 2, "qty": 6, "ts": 1_000}])
    asks.end()
    s.execute(
        f"""
        EXECUTE STATEMENT SET BEGIN
        INSERT INTO out SELECT window_start, COUNT(*) FROM {TUMBLE}
            GROUP BY window_start, window_end;
        INSERT INTO out SELECT window_start, SUM(qty) FROM TABLE(TUMBLE(TABLE asks,
            DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;
        END;
        """
    )
    late = {
        (r["operator"].split("#")[0], r["id"]): (r["price"], r["qty"]) for r in late_rows(names)
    }
    assert late[("WindowAggregate", 2)] == (None, 6)
    assert late[("WindowAggregate", 100)] == (100, None)
    assert len(late) == len(LATE) + 1


def test_explain_shows_where_late_rows_go(names):
    plan = session(names).explain(COUNTS)
    assert "late=[late_bids]" in plan
    line = next(x for x in plan.splitlines() if "late rows:" in x)
    assert "-> late_bids (id, price, channel, watermark, operator)" in line
    assert "WindowAggregate#" in line
    assert "late rows" not in session(names, late=None).explain(COUNTS)


def test_print_and_blackhole_tables_take_late_rows(names):
    buf = io.StringIO()
    s = Session(stdout=buf, settings={SETTING: "shown"})
    s.execute(
        f"""
        CREATE TABLE bids (id BIGINT, auction BIGINT, price BIGINT, channel STRING,
                           ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
            WITH ('connector' = 'memory', 'name' = '{names["bids"]}');
        CREATE TABLE shown (id BIGINT, `watermark` TIMESTAMP(3)) WITH ('connector' = 'print');
        CREATE TABLE gone (id BIGINT) WITH ('connector' = 'blackhole');
        """
    )
    script(names)
    assert s.sql(COUNTS).to_arrow().num_rows
    assert "101" in buf.getvalue() and "300" in buf.getvalue()
    s.execute("SET 'table.exec.late-rows.sink' = 'gone'")
    handle = s.sql(COUNTS)
    handle.to_arrow()
    assert handle.result.late_rows_routed == len(LATE)


def test_a_failing_late_table_fails_the_job(names, monkeypatch):
    s = session(names)
    script(names)
    real = memory.MemorySink.write

    def write(self, batch):
        if self.stream.name == names["late"]:
            raise OSError("disk full")
        real(self, batch)

    monkeypatch.setattr(memory.MemorySink, "write", write)
    with pytest.raises(ExecError, match=r"writing late rows to 'late_bids'.*disk full"):
        s.sql(COUNTS).to_arrow()


def test_a_late_row_that_does_not_fit_fails_the_job(names):
    s = session(names, late_columns="id BIGINT, price TINYINT")
    stream(names["bids"]).push([bid(i, i) for i in range(30)])
    stream(names["bids"]).push([bid(1, 1, price=1000)])
    stream(names["bids"]).end()
    with pytest.raises(ExecError, match="late row does not fit column 'price'"):
        s.sql(COUNTS).to_arrow()


def test_an_unknown_table_is_an_error_with_a_suggestion(names):
    s = session(names, late="late_bid")
    with pytest.raises(ConfigError, match="unknown table 'late_bid'") as e:
        s.explain(COUNTS)
    assert e.value.option == SETTING and "late_bids" in str(e.value.hint)


def test_an_unknown_column_is_an_error_with_a_suggestion(names):
    s = session(names, late_columns="id BIGINT, pirce BIGINT")
    with pytest.raises(ConfigError, match="column 'pirce' of table 'late_bids'") as e:
        s.sql(COUNTS)
    assert e.value.option == SETTING and "'price'" in str(e.value.hint)


def test_a_column_of_the_wrong_type_is_an_error(names):
    s = session(names, late_columns="id BIGINT, channel BIGINT")
    with pytest.raises(ConfigError, match="'channel' of table 'late_bids' is BIGINT"):
        s.sql(COUNTS)


def test_a_misspelt_setting_or_a_table_that_cannot_take_rows_is_an_error(names):
    with pytest.raises(ConfigError, match="unknown setting") as e:
        streamsql.connect(settings={"table.exec.late-row.sink": "late_bids"})
    assert SETTING in str(e.value.hint)
    s = session(names)
    s.execute(
        "CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');"
        "CREATE VIEW v AS SELECT id FROM bids"
    )
    s.execute("SET 'table.exec.late-rows.sink' = 'gen'")
    with pytest.raises(ConfigError, match="'datagen' cannot be written to"):
        s.sql(COUNTS)
    s.execute("SET 'table.exec.late-rows.sink' = 'v'")
    with pytest.raises(ConfigError, match="names the view 'v'"):
        s.sql(COUNTS)


def test_a_job_without_windows_ignores_the_setting(names):
    s = session(names)
    script(names)
    assert s.sql("SELECT id FROM bids WHERE id >= 100").to_arrow().num_rows == 6


def test_a_stopped_job_publishes_its_late_rows(names, tmp_path):
    s = session(names)
    s.execute(
        f"CREATE TABLE late_files (id BIGINT, `watermark` TIMESTAMP(3)) WITH ("
        f"'connector' = 'filesystem', 'path' = '{tmp_path}', 'format' = 'csv')"
    )
    s.execute("SET 'table.exec.late-rows.sink' = 'late_files'")
    script(names, end=False)
    stream(names["bids"]).push([bid(400, 60)])  # fires the window of row 300's push
    handle = s.sql(COUNTS)
    for batch in handle.stream():
        if any(w.second == 40 for w in batch.column("window_start").to_pylist()):
            break
    assert handle.result.late_rows_routed == len(LATE)
    files = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    text = "".join(p.read_text() for p in files)
    assert all(str(i) in text for i in LATE)
