-- One source, two sinks, one job (fan-out): per-minute statistics written as Parquet and
-- the large bids written as CSV, both under out/ in the current directory.
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

CREATE TABLE minute_stats (
    window_start TIMESTAMP(3),
    channel      STRING,
    bids         BIGINT,
    avg_price    DECIMAL(38, 6),
    max_price    DECIMAL(10, 2)
) WITH ('connector' = 'filesystem', 'path' = 'out/minute_stats', 'format' = 'parquet');

CREATE TABLE big_bids (
    auction  BIGINT,
    bidder   BIGINT,
    price    DECIMAL(10, 2),
    bid_time TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = 'out/big_bids', 'format' = 'csv');

EXECUTE STATEMENT SET
BEGIN
    INSERT INTO minute_stats
    SELECT window_start, channel, COUNT(*), AVG(price), MAX(price)
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bid_time), INTERVAL '1' MINUTE))
    GROUP BY window_start, window_end, channel;

    INSERT INTO big_bids
    SELECT auction, bidder, price, bid_time FROM bids WHERE price >= 200;
END;
