-- Stateless filtering and projection (Nexmark q1/q2 style): convert prices to euros and
-- keep the bids on a few auctions, with the minute they fall in.
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

CREATE TABLE euro_bids (
    auction   BIGINT,
    bidder    BIGINT,
    price_eur DECIMAL(12, 2),
    channel   STRING,
    minute    STRING
) WITH ('connector' = 'print', 'print-identifier' = 'eur');

INSERT INTO euro_bids
SELECT auction,
       bidder,
       CAST(price * 0.908 AS DECIMAL(12, 2)),
       UPPER(channel),
       DATE_FORMAT(bid_time, 'yyyy-MM-dd HH:mm')
FROM bids
WHERE auction IN (1003, 1005) AND price > 150;
