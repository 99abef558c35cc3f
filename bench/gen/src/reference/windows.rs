//! The windowed queries q5, q7, q8 and q11 as plain state machines: `add` a record under the
//! current watermark (false = late), `fire` every window that the watermark has closed.
//! State lives in `BTreeMap`s keyed by `(window_end, window_start, key)` so firing order is
//! the documented output order by construction.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::OutputRecord;
use crate::nexmark::{Bid, Event, NexmarkEvent};

/// Window length of q5, q7, q8 and the session gap of q11.
pub const SIZE_MS: i64 = 10_000;
/// Slide of q5's hopping windows.
pub const SLIDE_MS: i64 = 2_000;

/// `(end, start)` of a window, so maps iterate in firing order.
type Span = (i64, i64);

/// q8's state of one window: persons `(id, name)` seen, and sellers of auctions seen.
type NewUsers = (BTreeSet<(u64, String)>, BTreeSet<u64>);

#[derive(Debug, Default)]
pub(super) struct Session {
    start: i64,
    last: i64,
    count: u64,
}

#[derive(Debug)]
pub(super) enum Operator {
    /// q5: per window, bid count per auction.
    Q5(BTreeMap<Span, BTreeMap<u64, u64>>),
    /// q7: per window, its bids in arrival order.
    Q7(BTreeMap<Span, Vec<Bid>>),
    /// q8: per window, persons `(id, name)` and sellers.
    Q8(BTreeMap<Span, NewUsers>),
    /// q11: open sessions per bidder.
    Q11(BTreeMap<u64, Vec<Session>>),
}

fn tumble(t: i64) -> Span {
    let start = t.div_euclid(SIZE_MS) * SIZE_MS;
    (start + SIZE_MS, start)
}

fn record(key: u64, span: Span, value: serde_json::Value) -> OutputRecord {
    OutputRecord {
        key: key.to_string(),
        timestamp: span.0 - 1,
        value,
    }
}

impl Operator {
    pub(super) fn q5() -> Self {
        Operator::Q5(BTreeMap::new())
    }

    pub(super) fn q7() -> Self {
        Operator::Q7(BTreeMap::new())
    }

    pub(super) fn q8() -> Self {
        Operator::Q8(BTreeMap::new())
    }

    pub(super) fn q11() -> Self {
        Operator::Q11(BTreeMap::new())
    }

    /// Adds `e` to its open windows; false if it is late (all its windows have fired).
    /// Records of a type the query does not read are accepted and ignored.
    pub(super) fn add(&mut self, e: &NexmarkEvent, watermark: i64) -> bool {
        let t = e.event.timestamp();
        match (self, &e.event) {
            (Operator::Q5(windows), Event::Bid(b)) => {
                let newest = t.div_euclid(SLIDE_MS) * SLIDE_MS;
                let mut joined = false;
                let mut start = newest;
                while start > t - SIZE_MS {
                    if start + SIZE_MS > watermark {
                        *windows
                            .entry((start + SIZE_MS, start))
                            .or_default()
                            .entry(b.auction)
                            .or_default() += 1;
                        joined = true;
                    }
                    start -= SLIDE_MS;
                }
                joined
            }
            (Operator::Q7(windows), Event::Bid(b)) => {
                let span = tumble(t);
                if span.0 <= watermark {
                    return false;
                }
                windows.entry(span).or_default().push(b.clone());
                true
            }
            (Operator::Q8(windows), Event::Person(_) | Event::Auction(_)) => {
                let span = tumble(t);
                if span.0 <= watermark {
                    return false;
                }
                let (persons, sellers) = windows.entry(span).or_default();
                match &e.event {
                    Event::Person(p) => {
                        persons.insert((p.id, p.name.clone()));
                    }
                    Event::Auction(a) => {
                        sellers.insert(a.seller);
                    }
                    Event::Bid(_) => {}
                }
                true
            }
            (Operator::Q11(sessions), Event::Bid(b)) => {
                if t + SIZE_MS <= watermark {
                    return false;
                }
                let open = sessions.entry(b.bidder).or_default();
                let mut merged = Session {
                    start: t,
                    last: t,
                    count: 1,
                };
                // Half-open `[t, t + gap)` against `[start, last + gap)`: only overlap merges.
                open.retain(|s| {
                    let overlaps = t < s.last + SIZE_MS && s.start < t + SIZE_MS;
                    if overlaps {
                        merged.start = merged.start.min(s.start);
                        merged.last = merged.last.max(s.last);
                        merged.count += s.count;
                    }
                    !overlaps
                });
                open.push(merged);
                true
            }
            _ => true,
        }
    }

    /// Removes and emits every window with `end <= watermark`, in output order.
    pub(super) fn fire(&mut self, watermark: i64) -> Vec<OutputRecord> {
        let mut out = Vec::new();
        match self {
            Operator::Q5(windows) => {
                for (span, counts) in take_closed(windows, watermark) {
                    let max = counts.values().copied().max().unwrap_or(0);
                    for (&auction, &num) in counts.iter().filter(|&(_, &n)| n == max) {
                        let value = json!({"auction": auction, "num": num, "window_start": span.1, "window_end": span.0});
                        out.push(record(auction, span, value));
                    }
                }
            }
            Operator::Q7(windows) => {
                for (span, bids) in take_closed(windows, watermark) {
                    let max = bids.iter().map(|b| b.price).max().unwrap_or(0);
                    let mut top: Vec<&Bid> = bids.iter().filter(|b| b.price == max).collect();
                    top.sort_by_key(|b| b.auction); // stable: arrival order within an auction
                    for b in top {
                        let value = json!({
                            "auction": b.auction, "bidder": b.bidder, "price": b.price,
                            "date_time": b.date_time, "window_start": span.1, "window_end": span.0,
                        });
                        out.push(record(b.auction, span, value));
                    }
                }
            }
            Operator::Q8(windows) => {
                for (span, (persons, sellers)) in take_closed(windows, watermark) {
                    for (id, name) in persons.iter().filter(|(id, _)| sellers.contains(id)) {
                        let value = json!({"id": id, "name": name, "window_start": span.1, "window_end": span.0});
                        out.push(record(*id, span, value));
                    }
                }
            }
            Operator::Q11(sessions) => {
                let mut closed: Vec<(Span, u64, u64)> = Vec::new();
                for (&bidder, open) in sessions.iter_mut() {
                    open.retain(|s| {
                        let end = s.last + SIZE_MS;
                        if end <= watermark {
                            closed.push(((end, s.start), bidder, s.count));
                        }
                        end > watermark
                    });
                }
                sessions.retain(|_, open| !open.is_empty());
                closed.sort_unstable();
                for (span, bidder, count) in closed {
                    let value = json!({"bidder": bidder, "bid_count": count, "window_start": span.1, "window_end": span.0});
                    out.push(record(bidder, span, value));
                }
            }
        }
        out
    }
}

/// Removes the windows with `end <= watermark` from `windows`, in `(end, start)` order.
fn take_closed<V>(windows: &mut BTreeMap<Span, V>, watermark: i64) -> Vec<(Span, V)> {
    let open = match watermark.checked_add(1) {
        Some(first_open_end) => windows.split_off(&(first_open_end, i64::MIN)),
        None => BTreeMap::new(),
    };
    std::mem::replace(windows, open).into_iter().collect()
}
