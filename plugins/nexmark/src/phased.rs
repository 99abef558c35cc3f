//! The windowed queries split in two phases, so they scale over partitions.
//!
//! A job runs one instance per input partition, and the Nexmark topic is keyed
//! by event id, so no single instance sees all bids of an auction, a bidder
//! or a window. The `partial` phase works on one partition and emits records
//! keyed by what the `final` phase groups on; the job re-partitions by that
//! key (`partition_by_key`) and the `final` phase, now seeing every record of
//! its key, computes the query's result exactly as the single-phase query
//! would over the whole stream:
//!
//! | query | partial (per input partition) | key | final (after re-keying) |
//! |---|---|---|---|
//! | q5 | per window, its bid counts per auction in one record | window start | sum per auction, keep the maximum |
//! | q7 | highest bids per window | window start | highest of the highest |
//! | q8 | persons (id, name) and auctions (seller) | person id / seller | the q8 window join |
//! | q11 | bids (bidder) | bidder | the q11 sessions |
//!
//! What crosses between the phases is kept small, as a query planner would:
//! q5's partial counts travel as one record per window and partition (in
//! chunks of [`COUNTS_PER_RECORD`]) rather than one per auction, and q8 and
//! q11 forward only the fields their final phase reads (the events keep their
//! shape, so the final phase is the single-phase query unchanged).
//!
//! The final phase's watermark passes a window's end only once every partial
//! instance has passed it (sdk/ABI.md, "Time"), so a window is complete when it
//! fires.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

use crate::events::{BidEvent, Bidder, Event, NewAuction, NewPerson};
use crate::windowed::{MaxBids, TopBid};

/// Most (auction, count) pairs in one q5 partial record (about 19 bytes each
/// at most, so a record stays far below the record size limit).
pub const COUNTS_PER_RECORD: usize = 4096;

/// q5 partial results: bid counts per auction of one window, as seen by one
/// partial instance (or a chunk of them).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WindowCounts {
    pub window_start: i64,
    pub window_end: i64,
    /// (auction, bids) pairs.
    pub counts: Vec<(u64, u64)>,
}

/// q5 results.
#[derive(Debug, Serialize)]
pub(crate) struct WindowCount {
    pub auction: u64,
    pub num: u64,
    pub window_start: i64,
    pub window_end: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WindowBid {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub date_time: i64,
    pub window_start: i64,
    pub window_end: i64,
}

/// Upper bound on windows the final phases hold at once.
pub const MAX_OPEN_WINDOWS: usize = 100_000;

/// Per-window state of a final phase, fired at each window's end.
#[derive(Debug, Default, Serialize, Deserialize)]
struct OpenWindows<A> {
    /// (end, start) → accumulator.
    windows: BTreeMap<(i64, i64), A>,
}

impl<A: Default> OpenWindows<A> {
    /// The accumulator of `[start, end)`; a record for a window that already
    /// fired goes to `late`.
    fn get(
        &mut self,
        rec: &Record<'_>,
        ctx: &mut Ctx,
        start: i64,
        end: i64,
    ) -> Result<Option<&mut A>, Error> {
        if end <= ctx.watermark() {
            ctx.late(rec)?;
            return Ok(None);
        }
        if !self.windows.contains_key(&(end, start)) {
            if self.windows.len() >= MAX_OPEN_WINDOWS {
                return Err(Error::Limit {
                    limit: "MAX_OPEN_WINDOWS",
                    max: MAX_OPEN_WINDOWS as u64,
                    what: format!("window [{start}, {end})"),
                });
            }
            ctx.set_timer(end)?;
        }
        Ok(Some(self.windows.entry((end, start)).or_default()))
    }

    /// Removes and returns the windows that ended at or before the watermark,
    /// oldest first.
    fn due(&mut self, ctx: &Ctx) -> Vec<((i64, i64), A)> {
        let open = self
            .windows
            .split_off(&(ctx.watermark().saturating_add(1), i64::MIN));
        std::mem::replace(&mut self.windows, open)
            .into_iter()
            .collect()
    }
}

/// q5, final phase: per window, the auctions with the most bids overall.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Q5Final {
    open: OpenWindows<BTreeMap<u64, u64>>,
}

impl Q5Final {
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let c: WindowCounts = rec.value()?;
        if let Some(counts) = self.open.get(rec, ctx, c.window_start, c.window_end)? {
            for (auction, num) in c.counts {
                *counts.entry(auction).or_default() += num;
            }
        }
        Ok(())
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        for ((end, start), counts) in self.open.due(ctx) {
            let max = counts.values().copied().max().unwrap_or(0);
            for (&auction, &num) in counts.iter().filter(|&(_, &n)| n == max) {
                let out = WindowCount {
                    auction,
                    num,
                    window_start: start,
                    window_end: end,
                };
                ctx.emit(MAIN, end - 1, decimal_key(auction), &out)?;
            }
        }
        Ok(())
    }
}

/// q7, final phase: per window, every bid at the highest price overall.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Q7Final {
    open: OpenWindows<MaxBids>,
}

impl Q7Final {
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let b: WindowBid = rec.value()?;
        let top = TopBid {
            auction: b.auction,
            date_time: b.date_time,
            bidder: b.bidder,
        };
        if let Some(max) = self.open.get(rec, ctx, b.window_start, b.window_end)?
            && !max.offer(b.price, top)
        {
            return Err(Error::Limit {
                limit: "MAX_TIED_BIDS",
                max: crate::windowed::MAX_TIED_BIDS as u64,
                what: format!("another bid at the window's highest price {}", b.price),
            });
        }
        Ok(())
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        for ((end, start), max) in self.open.due(ctx) {
            for bid in max.bids() {
                let out = WindowBid {
                    auction: bid.auction,
                    bidder: bid.bidder,
                    price: max.price(),
                    date_time: bid.date_time,
                    window_start: start,
                    window_end: end,
                };
                ctx.emit(MAIN, end - 1, decimal_key(bid.auction), &out)?;
            }
        }
        Ok(())
    }
}

/// q8, partial phase: persons (id, name) keyed by id and auctions (seller)
/// keyed by seller.
pub(crate) fn q8_partial(rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
    type PersonOrAuction<'a> = Event<NewPerson<'a>, NewAuction, serde::de::IgnoredAny>;
    type Projected<'a> = Event<NewPerson<'a>, NewAuction, ()>;
    let (key, out) = match rec.value::<PersonOrAuction<'_>>()? {
        Event::Person(p) => (p.id, Projected::Person(p)),
        Event::Auction(a) => (a.seller, Projected::Auction(a)),
        Event::Bid(_) => return Ok(()),
    };
    ctx.emit(MAIN, rec.timestamp(), decimal_key(key), &out)
}

/// q11, partial phase: bids (bidder) keyed by bidder.
pub(crate) fn q11_partial(rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
    if let Event::Bid(bid) = rec.value::<BidEvent<Bidder>>()? {
        let key = decimal_key(bid.bidder);
        ctx.emit(MAIN, rec.timestamp(), key, &Event::<(), (), _>::Bid(bid))?;
    }
    Ok(())
}
