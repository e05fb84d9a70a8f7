-- Bids per auction per minute, with the highest bid: a 1-minute TUMBLE window.
-- Each window is printed once, when the watermark passes its end.
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

CREATE TABLE per_minute (
    window_start TIMESTAMP(3),
    window_end   TIMESTAMP(3),
    auction      BIGINT,
    bids         BIGINT,
    top_price    DECIMAL(10, 2)
) WITH ('connector' = 'print');

INSERT INTO per_minute
SELECT window_start, window_end, auction, COUNT(*), MAX(price)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, auction;
