-- Bids that were outbid within five seconds on the same auction: an interval join of the
-- bid stream with itself. Each bid waits in state only until the watermark is five seconds
-- past it; then no later bid can match, and it is dropped.
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

SELECT b.auction, b.bidder, b.price, b.bid_time,
       o.bidder AS outbid_by, o.price AS outbid_price, o.bid_time AS outbid_at
FROM bids AS b
JOIN bids AS o
  ON b.auction = o.auction
 AND o.bid_time > b.bid_time AND o.bid_time <= b.bid_time + INTERVAL '5' SECOND
 AND o.price > b.price * 1.5
WHERE b.price > 150;
