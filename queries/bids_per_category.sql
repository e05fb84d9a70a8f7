-- Bid volume per item category every minute: each bid is enriched with its auction's
-- category by a lookup join (the auctions file is loaded once and probed batch by batch),
-- then counted in a one-minute TUMBLE window. Bids on auctions missing from the file are
-- kept by the LEFT join and counted under 'unknown'.
CREATE TABLE bids (
    auction  BIGINT,
    bidder   BIGINT,
    price    DECIMAL(10, 2),
    channel  STRING,
    bid_time TIMESTAMP(3),
    proc     AS PROCTIME(),
    WATERMARK FOR bid_time AS bid_time - INTERVAL '2' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = 'queries/data/bids.csv',
    'format' = 'csv'
);

CREATE TABLE auctions (
    id       BIGINT,
    item     STRING,
    category STRING,
    seller   BIGINT
) WITH (
    'connector' = 'filesystem',
    'path' = 'queries/data/auctions.csv',
    'format' = 'csv'
);

CREATE VIEW enriched AS
SELECT b.bid_time, b.price, COALESCE(a.category, 'unknown') AS category
FROM bids AS b
LEFT JOIN auctions FOR SYSTEM_TIME AS OF b.proc AS a ON b.auction = a.id;

SELECT window_start, category, COUNT(*) AS bids, SUM(price) AS volume
FROM TABLE(TUMBLE(TABLE enriched, DESCRIPTOR(bid_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, category;
