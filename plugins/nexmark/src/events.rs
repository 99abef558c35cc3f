//! `events`: the Nexmark input schema (docs/events.md) as borrowed serde types.
//!
//! The topic wraps each event in a one-entry map naming its kind, which serde
//! reads as an externally tagged enum. [`Event`] is generic over the three
//! kinds so each query decodes only what it reads: a kind it ignores is
//! `IgnoredAny` (skipped, never built), and its bid type names only the
//! fields it uses. Strings borrow from the batch. The partial phases of q8 and
//! q11 write events back in the same shape with only those fields (projected),
//! so the final phase reads them exactly as it reads the topic.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// One Nexmark event: `{"person": {...}}`, `{"auction": {...}}` or `{"bid": {...}}`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event<P, A, B> {
    /// A new person.
    Person(P),
    /// A new auction.
    Auction(A),
    /// A bid on an auction.
    Bid(B),
}

/// An event of which only bids matter.
pub type BidEvent<B> = Event<IgnoredAny, IgnoredAny, B>;

/// The bid fields q0 and q1 pass through.
#[derive(Debug, Deserialize)]
pub struct PassBid<'a> {
    /// Auction id.
    pub auction: u64,
    /// Person id of the bidder.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Event time, epoch ms.
    pub date_time: i64,
    /// Padding.
    #[serde(borrow)]
    pub extra: &'a str,
}

/// The bid fields q2 and q5 read.
#[derive(Debug, Deserialize)]
pub struct AuctionPrice {
    /// Auction id.
    pub auction: u64,
    /// Price in cents.
    pub price: u64,
}

/// The bid fields q7 reads.
#[derive(Debug, Deserialize)]
pub struct PricedBid {
    /// Auction id.
    pub auction: u64,
    /// Person id of the bidder.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Event time, epoch ms.
    pub date_time: i64,
}

/// The bid field q11 reads.
#[derive(Debug, Deserialize, Serialize)]
pub struct Bidder {
    /// Person id of the bidder.
    pub bidder: u64,
}

/// The person fields q8 reads.
#[derive(Debug, Deserialize, Serialize)]
pub struct NewPerson<'a> {
    /// Person id.
    pub id: u64,
    /// "First Last".
    #[serde(borrow)]
    pub name: &'a str,
}

/// The auction field q8 reads.
#[derive(Debug, Deserialize, Serialize)]
pub struct NewAuction {
    /// Person id of the seller.
    pub seller: u64,
}
