"""Fan-out: several INSERTs reading one table run as one job that reads it once."""

from __future__ import annotations

import pyarrow.parquet as pq

import streamsql

DDL = """
CREATE TABLE t (
    id BIGINT, grp INT,
    ts AS TO_TIMESTAMP_LTZ(id * 100, 3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '200', 'rows-per-second' = '1000000',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '200',
        'fields.grp.min' = '1', 'fields.grp.max' = '3');
CREATE TABLE evens (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{d}/evens',
    'format' = 'parquet');
CREATE TABLE counts (ws TIMESTAMP(3), grp INT, n BIGINT) WITH ('connector' = 'filesystem',
    'path' = '{d}/counts', 'format' = 'parquet');
"""
INSERTS = """
INSERT INTO evens SELECT id FROM t WHERE id % 2 = 0;
INSERT INTO counts SELECT window_start, grp, COUNT(*) FROM TABLE(TUMBLE(TABLE t,
    DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end, grp;
"""


def _check(d, result):
    assert result.job is not None
    assert result.rows_read == 200  # read once, not once per INSERT
    evens = pq.read_table(d / "evens").column("id").to_pylist()
    assert sorted(evens) == list(range(2, 201, 2))
    assert sum(pq.read_table(d / "counts").column("n").to_pylist()) == 200


def test_consecutive_inserts_share_the_source(tmp_path):
    s = streamsql.connect(settings={"parallelism.default": "2"})
    result = s.execute(DDL.format(d=tmp_path) + INSERTS)
    _check(tmp_path, result)


def test_statement_set_block(tmp_path):
    s = streamsql.connect()
    result = s.execute(DDL.format(d=tmp_path) + "EXECUTE STATEMENT SET BEGIN " + INSERTS + " END;")
    _check(tmp_path, result)


def test_explain_shows_the_shared_source(tmp_path):
    s = streamsql.connect(settings={"parallelism.default": "2"})
    s.execute(DDL.format(d=tmp_path))
    text = s.explain("EXECUTE STATEMENT SET BEGIN " + INSERTS + " END")
    assert "shared by 2 consumers" in text
    assert text.count("Source: t") == 1
    assert "hash[grp]" in text
