-- q2, selection (nexmark-flink q2).
SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
