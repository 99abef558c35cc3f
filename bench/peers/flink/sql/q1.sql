-- q1, currency conversion (nexmark-flink q1): price in euros, DECIMAL(23,3).
SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid
