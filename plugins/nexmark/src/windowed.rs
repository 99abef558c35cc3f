//! q5, q7, q8 and q11: the windowed queries. Each struct holds its windows and
//! is snapshotted with the operator.

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

use crate::events::{AuctionPrice, BidEvent, Bidder, Event, NewAuction, NewPerson, PricedBid};
use crate::phased::{COUNTS_PER_RECORD, WindowCounts};
use crate::{Q5_SLIDE_MS, WINDOW_MS};

/// Most bids tied at a window's maximum price that q7 keeps.
pub const MAX_TIED_BIDS: usize = 100_000;

/// q5: bids per auction in 10 s windows sliding by 2 s; per window, every
/// auction whose count equals the window's maximum.
#[derive(Serialize, Deserialize)]
pub struct Q5 {
    windows: SlidingWindows<u64, u64>,
    /// Partial phase: emit every auction's count keyed by window start,
    /// for a final phase to sum (see `phased`).
    #[serde(default)]
    partial: bool,
}

impl Default for Q5 {
    fn default() -> Self {
        Q5 {
            windows: SlidingWindows::new(WINDOW_MS, Q5_SLIDE_MS),
            partial: false,
        }
    }
}

#[derive(Serialize)]
struct HotItem {
    auction: u64,
    num: u64,
    window_start: i64,
    window_end: i64,
}

impl Q5 {
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        if let Event::Bid(bid) = rec.value::<BidEvent<AuctionPrice>>()? {
            self.windows
                .add_record(rec, ctx, &bid.auction, |num| *num += 1)?;
        }
        Ok(())
    }

    pub(crate) fn is_partial(&self) -> bool {
        self.partial
    }

    /// The partial phase of q5.
    pub fn partial() -> Self {
        Q5 {
            partial: true,
            ..Q5::default()
        }
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        let partial = self.partial;
        self.windows.fire_windows(ctx, |ctx, window, counts| {
            if partial {
                let mut out = WindowCounts {
                    window_start: window.start,
                    window_end: window.end,
                    counts: Vec::with_capacity(counts.len().min(COUNTS_PER_RECORD)),
                };
                let key = decimal_key(window.start as u64);
                for (&auction, &num) in counts.iter() {
                    out.counts.push((auction, num));
                    if out.counts.len() == COUNTS_PER_RECORD {
                        ctx.emit(MAIN, window.max_timestamp(), key, &out)?;
                        out.counts.clear();
                    }
                }
                if !out.counts.is_empty() {
                    ctx.emit(MAIN, window.max_timestamp(), key, &out)?;
                }
                return Ok(());
            }
            let max = counts.iter().map(|(_, &num)| num).max().unwrap_or(0);
            for (&auction, &num) in counts.iter().filter(|&(_, &num)| num == max) {
                let out = HotItem {
                    auction,
                    num,
                    window_start: window.start,
                    window_end: window.end,
                };
                ctx.emit(MAIN, window.max_timestamp(), decimal_key(auction), &out)?;
            }
            Ok(())
        })
    }
}

/// One bid at a window's maximum price, ordered for output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TopBid {
    pub(crate) auction: u64,
    pub(crate) date_time: i64,
    pub(crate) bidder: u64,
}

/// The highest price of a window and the bids that offered it, sorted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct MaxBids {
    price: u64,
    bids: Vec<TopBid>,
}

impl MaxBids {
    pub(crate) fn price(&self) -> u64 {
        self.price
    }

    /// The bids at the highest price, in (auction, date_time, bidder) order.
    pub(crate) fn bids(&self) -> &[TopBid] {
        &self.bids
    }

    /// Takes a bid into account; false if it ties with [`MAX_TIED_BIDS`] others.
    pub(crate) fn offer(&mut self, price: u64, bid: TopBid) -> bool {
        if self.bids.is_empty() || price > self.price {
            self.price = price;
            self.bids.clear();
        } else if price < self.price {
            return true;
        }
        if self.bids.len() >= MAX_TIED_BIDS {
            return false;
        }
        let at = self.bids.partition_point(|b| *b <= bid);
        self.bids.insert(at, bid);
        true
    }
}

/// q7: per 10 s tumbling window, every bid at the window's highest price.
#[derive(Serialize, Deserialize)]
pub struct Q7 {
    windows: TumblingWindows<(), MaxBids>,
    /// Partial phase: key results by window start for a final phase.
    #[serde(default)]
    partial: bool,
}

impl Default for Q7 {
    fn default() -> Self {
        Q7 {
            windows: TumblingWindows::new(WINDOW_MS),
            partial: false,
        }
    }
}

#[derive(Serialize)]
struct HighestBid {
    auction: u64,
    bidder: u64,
    price: u64,
    date_time: i64,
    window_start: i64,
    window_end: i64,
}

impl Q7 {
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        if let Event::Bid(bid) = rec.value::<BidEvent<PricedBid>>()? {
            let top = TopBid {
                auction: bid.auction,
                date_time: bid.date_time,
                bidder: bid.bidder,
            };
            let mut kept = true;
            self.windows
                .add_record(rec, ctx, &(), |max| kept = max.offer(bid.price, top))?;
            if !kept {
                return Err(Error::Limit {
                    limit: "MAX_TIED_BIDS",
                    max: MAX_TIED_BIDS as u64,
                    what: format!("another bid at the window's highest price {}", bid.price),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn is_partial(&self) -> bool {
        self.partial
    }

    /// The partial phase of q7.
    pub fn partial() -> Self {
        Q7 {
            partial: true,
            ..Q7::default()
        }
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        let partial = self.partial;
        self.windows.fire(ctx, |ctx, (), window, max| {
            for bid in &max.bids {
                let key = if partial {
                    window.start as u64
                } else {
                    bid.auction
                };
                let out = HighestBid {
                    auction: bid.auction,
                    bidder: bid.bidder,
                    price: max.price,
                    date_time: bid.date_time,
                    window_start: window.start,
                    window_end: window.end,
                };
                ctx.emit(MAIN, window.max_timestamp(), decimal_key(key), &out)?;
            }
            Ok(())
        })
    }
}

/// What q8 knows of one person id in one window.
#[derive(Debug, Default, Serialize, Deserialize)]
struct NewUser {
    name: Option<String>,
    opened_auction: bool,
}

/// q8: per 10 s tumbling window, persons who registered and opened an auction
/// (as seller) in that window.
#[derive(Serialize, Deserialize)]
pub struct Q8 {
    windows: TumblingWindows<u64, NewUser>,
}

impl Default for Q8 {
    fn default() -> Self {
        Q8 {
            windows: TumblingWindows::new(WINDOW_MS),
        }
    }
}

#[derive(Serialize)]
struct NewUserOut<'a> {
    id: u64,
    name: &'a str,
    window_start: i64,
    window_end: i64,
}

impl Q8 {
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        type PersonOrAuction<'a> = Event<NewPerson<'a>, NewAuction, serde::de::IgnoredAny>;
        match rec.value::<PersonOrAuction<'_>>()? {
            Event::Person(person) => {
                self.windows.add_record(rec, ctx, &person.id, |user| {
                    if user.name.is_none() {
                        user.name = Some(person.name.to_owned());
                    }
                })?;
            }
            Event::Auction(auction) => {
                self.windows
                    .add_record(rec, ctx, &auction.seller, |user| user.opened_auction = true)?;
            }
            Event::Bid(_) => {}
        }
        Ok(())
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        self.windows.fire(ctx, |ctx, &id, window, user| {
            if let (Some(name), true) = (&user.name, user.opened_auction) {
                let out = NewUserOut {
                    id,
                    name,
                    window_start: window.start,
                    window_end: window.end,
                };
                ctx.emit(MAIN, window.max_timestamp(), decimal_key(id), &out)?;
            }
            Ok(())
        })
    }
}

/// q11: bids per bidder session (gap 10 s).
#[derive(Serialize, Deserialize)]
pub struct Q11 {
    sessions: SessionWindows<u64, u64>,
}

impl Default for Q11 {
    fn default() -> Self {
        Q11 {
            sessions: SessionWindows::new(WINDOW_MS),
        }
    }
}

#[derive(Serialize)]
struct Session {
    bidder: u64,
    bid_count: u64,
    window_start: i64,
    window_end: i64,
}

impl Q11 {
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        if let Event::Bid(bid) = rec.value::<BidEvent<Bidder>>()? {
            self.sessions
                .add_record(rec, ctx, &bid.bidder, |count| *count += 1)?;
        }
        Ok(())
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        self.sessions.fire(ctx, |ctx, &bidder, window, &bid_count| {
            let out = Session {
                bidder,
                bid_count,
                window_start: window.start,
                window_end: window.end,
            };
            ctx.emit(MAIN, window.max_timestamp(), decimal_key(bidder), &out)
        })
    }
}
