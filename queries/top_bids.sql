-- The three highest bids of each auction, kept up to date as bids arrive (Top-N). The
-- print sink shows the changelog: +I a new rank, -U/+U a rank changing hands.
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

CREATE TABLE top_bids (
    auction BIGINT,
    rn      BIGINT,
    bidder  BIGINT,
    price   DECIMAL(10, 2)
) WITH ('connector' = 'print');

INSERT INTO top_bids
SELECT auction, rn, bidder, price
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn
    FROM bids
)
WHERE rn <= 3;
