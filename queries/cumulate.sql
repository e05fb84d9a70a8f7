-- Running totals within each 5-minute period, updated every minute: a CUMULATE window.
-- FILTER counts only the large bids.
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

SELECT window_start, window_end,
       COUNT(*)                                AS bids,
       COUNT(*) FILTER (WHERE price >= 100)    AS big_bids,
       SUM(price)                              AS volume
FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE))
GROUP BY window_start, window_end;
