-- Distinct bidders and bid volume per channel over the last 2 minutes, every 30 seconds:
-- a HOP (sliding) window. Printed as a table, since the query is a plain SELECT.
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

SELECT window_start, window_end, channel,
       COUNT(DISTINCT bidder) AS bidders,
       SUM(price)             AS volume
FROM TABLE(HOP(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '30' SECOND, INTERVAL '2' MINUTE))
GROUP BY window_start, window_end, channel;
