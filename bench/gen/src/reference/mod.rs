//! Reference implementations: slow, obviously-correct versions of the bundled Nexmark queries
//! (q0, q1, q2, q5, q7, q8, q11) and fraud rules, written straight from docs/events.md. Tests
//! and the benchmark harness compare the engine's output with these.
//!
//! # Input
//! A slice of events in the order one partition delivers them ([`NexmarkEvent`]: the record
//! key is the event id in decimal, the record timestamp is `date_time`). Events a query does
//! not read (persons for q5, bids for q8, ...) still count for the watermark, because the
//! watermark belongs to the source, not the query.
//!
//! # Watermarks, windows and lateness
//! - Watermark = largest timestamp seen − [`OUT_OF_ORDERNESS_MS`] (4,000 ms), starting at
//!   −∞. It only rises.
//! - The engine advances it once per *batch*: [`Batching`] says where batches end
//!   (`Fixed(1)` = after every record). Every record of a batch is judged against the
//!   watermark as it was when the batch began; after the batch the watermark is recomputed
//!   and every window whose `end <= watermark` fires.
//! - Windows are half-open `[start, end)` aligned to the epoch. A record is *late* when every
//!   window it would join has already fired (`end <= watermark`): it goes to
//!   [`QueryOutput::late`] unchanged and changes no result. For HOP windows a record whose
//!   newest window is open joins the open ones only. Sessions (q11): a bid at `t` is late when
//!   `t + gap <= watermark`; otherwise it merges with every still-open session of its bidder
//!   whose half-open `[start, last + gap)` overlaps `[t, t + gap)`, and a session fires when
//!   `last + gap <= watermark`. A bid exactly `gap` after the last one starts a new session
//!   (Flink's legacy SESSION would merge touching windows); this keeps results independent
//!   of batching whenever disorder is within the 4 s bound.
//! - After the last batch the watermark goes to +∞ and every remaining window fires.
//! - All outputs due at one watermark step come sorted by `(window_end, window_start, key)`,
//!   the key compared as the number it is (auction, person or bidder id); ties within one
//!   key (q7: several bids at the max price) keep arrival order.
//!
//! [`final_results`] is the batching-independent variant: all input is one batch, so nothing
//! is late, then the watermark goes to +∞; the results come out globally sorted by
//! `(window_end, window_start, key)`. When the input's out-of-orderness is within 4 s (every
//! record at least the largest earlier timestamp − 4,000 ms: the Nexmark generator at any
//! usual rate and `G`, the scenarios with `max_delay_ms <= 4000`), no batching makes a record
//! late and every batching gives these results, in this order.
//!
//! # Output timestamps
//! - Per-record outputs (q0, q1, q2) carry the input record's timestamp and key.
//! - Window outputs (q5, q7, q8, q11) carry `window_end − 1`, the last instant inside the
//!   window (for q11: last bid + gap − 1).
//! - Fraud alerts carry `detected_at`.

mod fraud;
mod stateless;
mod windows;

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

pub use fraud::{alert_records, detect_fraud};

use crate::GenError;
use crate::nexmark::NexmarkEvent;

/// Bounded out-of-orderness of the Nexmark jobs.
pub const OUT_OF_ORDERNESS_MS: i64 = 4_000;

/// One output record.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    /// Output key (decimal id, or payer).
    pub key: String,
    /// Record timestamp, epoch ms (see the module doc for each query's convention).
    pub timestamp: i64,
    /// The value, as the MessagePack map decodes to JSON.
    pub value: Value,
}

/// A query's outputs for one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOutput {
    /// Results in emission order.
    pub results: Vec<OutputRecord>,
    /// Late input records, in arrival order.
    pub late: Vec<NexmarkEvent>,
}

/// Where the engine's batches end, i.e. when the watermark advances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batching {
    /// All input in one batch.
    Whole,
    /// Batches of this many records (the last may be shorter); `Fixed(1)` = per record.
    Fixed(usize),
    /// Explicit batch sizes; records past their sum form one final batch.
    Sizes(Vec<usize>),
}

impl Batching {
    /// Splits `input` into batches.
    fn split<'a, T>(&self, input: &'a [T]) -> Vec<&'a [T]> {
        match self {
            Batching::Whole => vec![input],
            Batching::Fixed(n) => input.chunks((*n).max(1)).collect(),
            Batching::Sizes(sizes) => {
                let mut out = Vec::new();
                let mut rest = input;
                for &n in sizes {
                    let (head, tail) = rest.split_at(n.min(rest.len()));
                    out.push(head);
                    rest = tail;
                }
                if !rest.is_empty() {
                    out.push(rest);
                }
                out
            }
        }
    }
}

/// The bundled Nexmark queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    /// Pass-through of bids.
    Q0,
    /// Bids with the price in euros (`price × 0.908`, f64).
    Q1,
    /// Bids on auctions divisible by 123.
    Q2,
    /// Hot items: HOP 10 s / 2 s, the auctions with the most bids.
    Q5,
    /// Highest bid per TUMBLE 10 s.
    Q7,
    /// New users who also sold in the same TUMBLE 10 s.
    Q8,
    /// Bid sessions per bidder, gap 10 s.
    Q11,
}

impl Query {
    /// All queries.
    pub const ALL: [Query; 7] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q5,
        Query::Q7,
        Query::Q8,
        Query::Q11,
    ];
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q11 => "q11",
        };
        f.write_str(s)
    }
}

impl FromStr for Query {
    type Err = GenError;

    fn from_str(s: &str) -> Result<Query, GenError> {
        Query::ALL
            .into_iter()
            .find(|q| q.to_string() == s)
            .ok_or_else(|| {
                GenError::config(
                    "reference",
                    "query",
                    format!("is `{s}`"),
                    "use one of q0, q1, q2, q5, q7, q8, q11",
                )
            })
    }
}

/// Runs `query` over `input` with the engine's `batching`, as the streaming job would.
pub fn run_query(query: Query, input: &[NexmarkEvent], batching: &Batching) -> QueryOutput {
    let mut out = QueryOutput::default();
    let mut op = match query {
        Query::Q0 | Query::Q1 | Query::Q2 => {
            out.results = input
                .iter()
                .filter_map(|e| stateless::apply(query, e))
                .collect();
            return out;
        }
        Query::Q5 => windows::Operator::q5(),
        Query::Q7 => windows::Operator::q7(),
        Query::Q8 => windows::Operator::q8(),
        Query::Q11 => windows::Operator::q11(),
    };
    let mut watermark = i64::MIN;
    let mut max_seen = i64::MIN;
    for batch in batching.split(input) {
        for e in batch {
            if !op.add(e, watermark) {
                out.late.push(e.clone());
            }
            max_seen = max_seen.max(e.event.timestamp());
        }
        let next = max_seen.saturating_sub(OUT_OF_ORDERNESS_MS);
        if next > watermark {
            watermark = next;
            out.results.extend(op.fire(watermark));
        }
    }
    out.results.extend(op.fire(i64::MAX));
    out
}

/// Results once all input is seen and the watermark is advanced to +∞ (no record is late).
pub fn final_results(query: Query, input: &[NexmarkEvent]) -> Vec<OutputRecord> {
    run_query(query, input, &Batching::Whole).results
}

/// [`final_results`] one record at a time: the stateless queries (one result per bid)
/// produce each as they go instead of holding the whole answer as JSON values.
pub fn each_final_result(query: Query, input: &[NexmarkEvent], mut each: impl FnMut(OutputRecord)) {
    match query {
        Query::Q0 | Query::Q1 | Query::Q2 => input
            .iter()
            .filter_map(|e| stateless::apply(query, e))
            .for_each(each),
        _ => final_results(query, input).into_iter().for_each(&mut each),
    }
}
