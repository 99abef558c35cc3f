-- q11, user sessions (nexmark-flink q11): bids per bidder per event-time session, gap 10 s.
-- Flink merges sessions that touch (a bid exactly 10 s after the last one joins the session);
-- Sluice starts a new one there (docs/events.md), so the row counts can differ by the number
-- of such exact gaps; the harness counts them from the same events.
SELECT bidder, COUNT(*) AS bid_count,
       SESSION_START(dateTime, INTERVAL '10' SECOND) AS starttime,
       SESSION_END(dateTime, INTERVAL '10' SECOND) AS endtime
FROM bid
GROUP BY bidder, SESSION(dateTime, INTERVAL '10' SECOND)
