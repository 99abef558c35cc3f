//! `sales-rollup`: sale-day roll-ups per minute as a two-phase Sluice plugin.
//!
//! Per product and minute: orders, units, revenue and average order value.
//! Per minute for the whole shop: active users, buyers, conversion rate and
//! totals. The input topic `shop` is keyed by user, so no partition sees all
//! of a product's orders; the job runs this plugin twice:
//!
//! 1. `{"phase": "partial"}` on the `shop` partitions (`partial.rs`): per
//!    minute, each product's orders in the partition, keyed by product id, and
//!    the partition's distinct users and totals, keyed by the global key
//!    (`"all"`), as [`Partial`] records on `main`;
//! 2. `{"phase": "final"}` with `"partition_by_key": true` (`totals.rs`): the
//!    engine re-partitions the partials by key; per key and minute the final
//!    phase adds them up and emits the roll-up on `main` once the watermark
//!    passes the minute — only after every upstream partition passed it.
//!
//! Results: key = product id or the global key, timestamp = `window_end − 1`;
//! see the README for the values. Late shop events go unchanged to `late`;
//! values that do not decode go unchanged to `dlq` (counter `bad_records`).

mod partial;
mod partials;
mod totals;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use partials::{GlobalPartial, Partial, ProductPartial};

use partial::PartialPhase;
use totals::FinalPhase;

/// Default window: one minute.
pub const DEFAULT_WINDOW_MS: i64 = 60_000;
/// Default key of the whole shop's roll-up.
pub const DEFAULT_GLOBAL_KEY: &str = "all";

/// Which half of the roll-up an operator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Over the `shop` topic: partials per partition.
    Partial,
    /// After re-keying: partials added up.
    Final,
}

/// The operator config: `{"phase": "partial" | "final", "window_ms": 60000,
/// "global_key": "all"}`; `phase` is required, both phases need the same
/// `window_ms` and `global_key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which half this operator runs.
    pub phase: Phase,
    /// Tumbling window size in ms.
    #[serde(default = "default_window_ms")]
    pub window_ms: i64,
    /// Key of the whole shop's records (must not be a product id).
    #[serde(default = "default_global_key")]
    pub global_key: String,
}

fn default_window_ms() -> i64 {
    DEFAULT_WINDOW_MS
}

fn default_global_key() -> String {
    DEFAULT_GLOBAL_KEY.to_owned()
}

/// The operator: one of the two phases.
#[derive(Serialize, Deserialize)]
pub enum SalesRollup {
    /// `{"phase": "partial"}`.
    Partial(PartialPhase),
    /// `{"phase": "final"}`.
    Final(FinalPhase),
}

impl SalesRollup {
    /// The phase this instance runs.
    pub fn phase(&self) -> Phase {
        match self {
            SalesRollup::Partial(_) => Phase::Partial,
            SalesRollup::Final(_) => Phase::Final,
        }
    }

    /// The window size this instance runs with.
    pub fn window_ms(&self) -> i64 {
        match self {
            SalesRollup::Partial(p) => p.window_ms(),
            SalesRollup::Final(f) => f.window_ms(),
        }
    }
}

impl Operator for SalesRollup {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if c.window_ms <= 0 {
            return Err(Error::msg(format!(
                "window_ms must be positive, got {}",
                c.window_ms
            )));
        }
        if c.global_key.is_empty() {
            return Err(Error::msg("global_key must not be empty"));
        }
        Ok(match c.phase {
            Phase::Partial => SalesRollup::Partial(PartialPhase::new(c.window_ms, c.global_key)),
            Phase::Final => SalesRollup::Final(FinalPhase::new(c.window_ms)),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let decoded = match self {
            SalesRollup::Partial(p) => p.process(rec, ctx)?,
            SalesRollup::Final(f) => f.process(rec, ctx)?,
        };
        if !decoded {
            let expected = match self.phase() {
                Phase::Partial => "a shop event",
                Phase::Final => "a partial of the partial phase (is `phase` right?)",
            };
            ctx.warn(format_args!(
                "record at offset {} of partition {} is not {expected}; sent to dlq",
                rec.offset(),
                rec.partition()
            ));
            ctx.count("bad_records", 1);
            ctx.forward(DLQ, rec)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        match self {
            SalesRollup::Partial(p) => p.fire(ctx),
            SalesRollup::Final(f) => f.fire(ctx),
        }
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        if fresh.phase() != self.phase() {
            return Err(Error::msg(format!(
                "the snapshot holds the {:?} phase but the config asks for {:?}; a running job cannot swap phases",
                self.phase(),
                fresh.phase()
            )));
        }
        if fresh.window_ms() != self.window_ms() {
            return Err(Error::msg(format!(
                "the snapshot's windows are {} ms but the config asks for {} ms; a running job cannot change its window (start a new job)",
                self.window_ms(),
                fresh.window_ms()
            )));
        }
        Ok(())
    }
}

sluice_sdk::export_operator!(SalesRollup);
