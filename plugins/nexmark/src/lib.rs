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
mod stateless;
mod windowed;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

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

/// The plugin config: `{"query": "q0" | "q1" | "q2" | "q5" | "q7" | "q8" | "q11"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The query to run.
    pub query: Query,
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
            Nexmark::Q11(_) => Query::Q11,
        }
    }
}

impl Operator for Nexmark {
    type Config = Config;

    fn init(config: Config) -> Result<Self, Error> {
        Ok(match config.query {
            Query::Q0 => Nexmark::Q0,
            Query::Q1 => Nexmark::Q1,
            Query::Q2 => Nexmark::Q2,
            Query::Q5 => Nexmark::Q5(Q5::default()),
            Query::Q7 => Nexmark::Q7(Q7::default()),
            Query::Q8 => Nexmark::Q8(Q8::default()),
            Query::Q11 => Nexmark::Q11(Q11::default()),
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
        }
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        match self {
            Nexmark::Q0 | Nexmark::Q1 | Nexmark::Q2 => Ok(()),
            Nexmark::Q5(q) => q.fire(ctx),
            Nexmark::Q7(q) => q.fire(ctx),
            Nexmark::Q8(q) => q.fire(ctx),
            Nexmark::Q11(q) => q.fire(ctx),
        }
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        if fresh.query() != self.query() {
            return Err(Error::msg(format!(
                "the snapshot holds the state of {:?} but the config asks for {:?}; a running job cannot change its query",
                self.query(),
                fresh.query()
            )));
        }
        Ok(())
    }
}

sluice_sdk::export_operator!(Nexmark);
