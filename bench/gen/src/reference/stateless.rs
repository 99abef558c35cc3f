//! q0, q1 and q2: one output per qualifying bid, with the input record's key and timestamp.

use serde_json::json;

use super::{OutputRecord, Query};
use crate::encode::EventRecord;
use crate::nexmark::{Event, NexmarkEvent};

/// The output of `query` for one input record, if any.
pub(super) fn apply(query: Query, e: &NexmarkEvent) -> Option<OutputRecord> {
    let Event::Bid(b) = &e.event else {
        return None;
    };
    let value = match query {
        Query::Q0 => json!({
            "auction": b.auction, "bidder": b.bidder, "price": b.price,
            "date_time": b.date_time, "extra": b.extra,
        }),
        Query::Q1 => json!({
            "auction": b.auction, "bidder": b.bidder, "price": b.price as f64 * 0.908,
            "date_time": b.date_time, "extra": b.extra,
        }),
        Query::Q2 if b.auction % 123 == 0 => json!({"auction": b.auction, "price": b.price}),
        _ => return None,
    };
    Some(OutputRecord {
        key: e.key(),
        timestamp: e.timestamp(),
        value,
    })
}
