-- An unbounded GROUP BY kept in a DuckDB table: out/leaderboard.duckdb always holds the
-- current bids per channel (upserted by the PRIMARY KEY), then the script reads it back.
CREATE TABLE bids (
    auction  BIGINT,
    bidder   BIGINT,
    price    DECIMAL(10, 2),
    channel  STRING,
    bid_time TIMESTAMP(3),
    WATERMARK FOR bid_time AS bid_time - INTERVAL '2' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = 'queries/data/bids.csv',
    'format' = 'csv'
);

CREATE TABLE leaderboard (
    channel   STRING,
    bids      BIGINT,
    bidders   BIGINT,
    top_price DECIMAL(10, 2),
    PRIMARY KEY (channel) NOT ENFORCED
) WITH ('connector' = 'duckdb', 'path' = 'out/leaderboard.duckdb', 'table' = 'leaderboard');

-- A materialized view keeps the same result in the session, readable with SELECT.
CREATE MATERIALIZED VIEW per_channel AS
SELECT channel, COUNT(*) AS bids, COUNT(DISTINCT bidder) AS bidders, MAX(price) AS top_price
FROM bids
GROUP BY channel;

SELECT * FROM per_channel;

INSERT INTO leaderboard
SELECT channel, COUNT(*), COUNT(DISTINCT bidder), MAX(price) FROM bids GROUP BY channel;
