//! q0, q1 and q2: per-bid projections and filters, no state.

use serde::Serialize;
use sluice_sdk::prelude::*;

use crate::events::{AuctionPrice, BidEvent, Event, PassBid};

/// q2 keeps bids on auctions whose id is a multiple of this.
pub const Q2_AUCTION_MODULUS: u64 = 123;
/// q1's dollar-to-euro rate.
pub const Q1_EURO_RATE: f64 = 0.908;

#[derive(Serialize)]
struct PassThrough<'a, P> {
    auction: u64,
    bidder: u64,
    price: P,
    date_time: i64,
    extra: &'a str,
}

#[derive(Serialize)]
struct AuctionPriceOut {
    auction: u64,
    price: u64,
}

/// q0: every bid as `{auction, bidder, price, date_time, extra}`.
pub fn q0(rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
    if let Event::Bid(bid) = rec.value::<BidEvent<PassBid<'_>>>()? {
        let out = PassThrough {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            extra: bid.extra,
        };
        ctx.emit(MAIN, rec.timestamp(), rec.key(), &out)?;
    }
    Ok(())
}

/// q1: q0 with `price` as the f64 `price × 0.908`.
pub fn q1(rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
    if let Event::Bid(bid) = rec.value::<BidEvent<PassBid<'_>>>()? {
        let out = PassThrough {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price as f64 * Q1_EURO_RATE,
            date_time: bid.date_time,
            extra: bid.extra,
        };
        ctx.emit(MAIN, rec.timestamp(), rec.key(), &out)?;
    }
    Ok(())
}

/// q2: `{auction, price}` of bids with `auction % 123 == 0`.
pub fn q2(rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
    if let Event::Bid(bid) = rec.value::<BidEvent<AuctionPrice>>()?
        && bid.auction % Q2_AUCTION_MODULUS == 0
    {
        let out = AuctionPriceOut {
            auction: bid.auction,
            price: bid.price,
        };
        ctx.emit(MAIN, rec.timestamp(), rec.key(), &out)?;
    }
    Ok(())
}
