-- q0, pass-through (nexmark-flink q0).
SELECT auction, bidder, price, dateTime, extra FROM bid
