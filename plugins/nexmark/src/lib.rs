//! `nexmark`: the Nexmark queries q0, q1, q2, q5, q7, q8 and q11 as one Sluice
//! plugin, configured with `{"query": "q5"}`.
//!
//! Input and output schemas, window semantics and output order are those of
//! docs/events.md. Window results carry `window_start`/`window_end`, have the
//! window's last millisecond (`window_end - 1`) as event time, and come in
//! `(window_end, window_start, key)` order; records later than their window go
//! unchanged to the `late` output (allowed lateness 0). Session windows
//! (q11) join bids less than 10 s apart; a bid exactly 10 s after the
//! previous one starts a new session. Events a query does not read are skipped.

pub mod events;
mod phased;
mod stateless;
mod windowed;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use phased::{COUNTS_PER_RECORD, Q5Final, Q7Final};
pub use windowed::{Q5, Q7, Q8, Q11};

/// Window size of q5 (HOP), q7 and q8 (TUMBLE), and session gap of q11.
pub const WINDOW_MS: i64 = 10_000;
/// Slide of q5's hopping windows.
pub const Q5_SLIDE_MS: i64 = 2_000;

/// Which query the instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Query {
    /// Pass-through of bids.
    Q0,
    /// Bids with the price in euros (`price × 0.908`).
    Q1,
    /// Bids on every 123rd auction.
    Q2,
    /// Hot items: the most-bid auctions per sliding window.
    Q5,
    /// Highest bids per tumbling window.
    Q7,
    /// New users: persons who opened an auction in the window they registered.
    Q8,
    /// Bids per bidder session.
    Q11,
}

/// Which part of a two-phase query the instance runs (see `phased`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The whole query over the instance's input (one partition, or all
    /// events when the topic has one partition).
    #[default]
    Single,
    /// The per-partition half of q5, q7, q8 or q11, keyed for re-partitioning.
    Partial,
    /// The half after re-partitioning by the partial phase's keys.
    Final,
}

/// The plugin config: `{"query": "q0" | "q1" | "q2" | "q5" | "q7" | "q8" |
/// "q11", "phase": "single" | "partial" | "final"}`. `phase` defaults to
/// `single`; q0–q2 have no phases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The query to run.
    pub query: Query,
    /// The part of a two-phase query to run.
    #[serde(default)]
    pub phase: Phase,
}

/// The operator: the query and its state.
#[derive(Serialize, Deserialize)]
pub enum Nexmark {
    /// q0.
    Q0,
    /// q1.
    Q1,
    /// q2.
    Q2,
    /// q5 and its sliding windows.
    Q5(Q5),
    /// q7 and its tumbling windows.
    Q7(Q7),
    /// q8 and its tumbling windows.
    Q8(Q8),
    /// q11 and its sessions.
    Q11(Q11),
    /// q5 after re-keying by window.
    Q5Final(Q5Final),
    /// q7 after re-keying by window.
    Q7Final(Q7Final),
    /// q8 before re-keying by person.
    Q8Partial,
    /// q11 before re-keying by bidder.
    Q11Partial,
}

impl Nexmark {
    /// The query this instance runs.
    pub fn query(&self) -> Query {
        match self {
            Nexmark::Q0 => Query::Q0,
            Nexmark::Q1 => Query::Q1,
            Nexmark::Q2 => Query::Q2,
            Nexmark::Q5(_) => Query::Q5,
            Nexmark::Q7(_) => Query::Q7,
            Nexmark::Q8(_) => Query::Q8,
            Nexmark::Q11(_) | Nexmark::Q11Partial => Query::Q11,
            Nexmark::Q5Final(_) => Query::Q5,
            Nexmark::Q7Final(_) => Query::Q7,
            Nexmark::Q8Partial => Query::Q8,
        }
    }

    /// The query and phase this instance runs (the final phases of q8 and
    /// q11 are the single-phase queries over re-keyed input).
    pub fn phase(&self) -> (Query, Phase) {
        let p = match self {
            Nexmark::Q5Final(_) | Nexmark::Q7Final(_) => Phase::Final,
            Nexmark::Q8Partial | Nexmark::Q11Partial => Phase::Partial,
            Nexmark::Q5(q) if q.is_partial() => Phase::Partial,
            Nexmark::Q7(q) if q.is_partial() => Phase::Partial,
            _ => Phase::Single,
        };
        (self.query(), p)
    }
}

impl Operator for Nexmark {
    type Config = Config;

    fn init(config: Config) -> Result<Self, Error> {
        use Phase::{Final, Partial, Single};
        Ok(match (config.query, config.phase) {
            (Query::Q0 | Query::Q1 | Query::Q2, Partial | Final) => {
                return Err(Error::msg(format!(
                    "{:?} is stateless and has no phases; leave `phase` out",
                    config.query
                )));
            }
            (Query::Q0, Single) => Nexmark::Q0,
            (Query::Q1, Single) => Nexmark::Q1,
            (Query::Q2, Single) => Nexmark::Q2,
            (Query::Q5, Single) => Nexmark::Q5(Q5::default()),
            (Query::Q5, Partial) => Nexmark::Q5(Q5::partial()),
            (Query::Q5, Final) => Nexmark::Q5Final(Q5Final::default()),
            (Query::Q7, Single) => Nexmark::Q7(Q7::default()),
            (Query::Q7, Partial) => Nexmark::Q7(Q7::partial()),
            (Query::Q7, Final) => Nexmark::Q7Final(Q7Final::default()),
            (Query::Q8, Single | Final) => Nexmark::Q8(Q8::default()),
            (Query::Q8, Partial) => Nexmark::Q8Partial,
            (Query::Q11, Single | Final) => Nexmark::Q11(Q11::default()),
            (Query::Q11, Partial) => Nexmark::Q11Partial,
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        match self {
            Nexmark::Q0 => stateless::q0(rec, ctx),
            Nexmark::Q1 => stateless::q1(rec, ctx),
            Nexmark::Q2 => stateless::q2(rec, ctx),
            Nexmark::Q5(q) => q.process(rec, ctx),
            Nexmark::Q7(q) => q.process(rec, ctx),
            Nexmark::Q8(q) => q.process(rec, ctx),
            Nexmark::Q11(q) => q.process(rec, ctx),
            Nexmark::Q5Final(q) => q.process(rec, ctx),
            Nexmark::Q7Final(q) => q.process(rec, ctx),
            Nexmark::Q8Partial => phased::q8_partial(rec, ctx),
            Nexmark::Q11Partial => phased::q11_partial(rec, ctx),
        }
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        match self {
            Nexmark::Q0 | Nexmark::Q1 | Nexmark::Q2 => Ok(()),
            Nexmark::Q8Partial | Nexmark::Q11Partial => Ok(()),
            Nexmark::Q5Final(q) => q.fire(ctx),
            Nexmark::Q7Final(q) => q.fire(ctx),
            Nexmark::Q5(q) => q.fire(ctx),
            Nexmark::Q7(q) => q.fire(ctx),
            Nexmark::Q8(q) => q.fire(ctx),
            Nexmark::Q11(q) => q.fire(ctx),
        }
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        if fresh.phase() != self.phase() {
            return Err(Error::msg(format!(
                "the snapshot holds the state of {:?} but the config asks for {:?}; a running job cannot change its query or phase",
                self.phase(),
                fresh.phase()
            )));
        }
        Ok(())
    }
}

sluice_sdk::export_operator!(Nexmark);
