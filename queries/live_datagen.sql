-- A continuous query on generated data: 200 bids a second, counted in 5-second windows
-- as they close. It runs until you press Ctrl-C.
CREATE TABLE bids (
    auction  INT,
    bidder   INT,
    price    DOUBLE,
    bid_time AS CAST(LOCALTIMESTAMP AS TIMESTAMP(3)),
    WATERMARK FOR bid_time AS bid_time - INTERVAL '1' SECOND
) WITH (
    'connector' = 'datagen',
    'rows-per-second' = '200',
    'fields.auction.min' = '1', 'fields.auction.max' = '5',
    'fields.bidder.min' = '1',  'fields.bidder.max' = '1000',
    'fields.price.min' = '1',   'fields.price.max' = '500'
);

CREATE TABLE per_window (
    window_start TIMESTAMP(3),
    auction      INT,
    bids         BIGINT,
    top_price    DOUBLE
) WITH ('connector' = 'print');

INSERT INTO per_window
SELECT window_start, auction, COUNT(*), MAX(price)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, auction;
