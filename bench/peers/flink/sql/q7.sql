-- q7, highest bid: per TUMBLE 10 s window, every bid whose price equals the window's maximum.
-- A window join of the bids' windows with the per-window maximum: Sluice's semantics
-- (docs/events.md: a bid counts in exactly one [start, end) window). nexmark-flink q7
-- instead joins every bid to the maxima with an inclusive BETWEEN in a regular join, which
-- keeps all bids in state forever and can match a bid on a window boundary twice; that
-- would make Flink do more work than Sluice for a slightly different answer.
SELECT B.auction, B.bidder, B.price, B.dateTime, B.window_start, B.window_end
FROM (
  SELECT auction, bidder, price, dateTime, window_start, window_end
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
) B
JOIN (
  SELECT MAX(price) AS maxprice, window_start, window_end
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end
) M
ON B.window_start = M.window_start AND B.window_end = M.window_end AND B.price = M.maxprice
