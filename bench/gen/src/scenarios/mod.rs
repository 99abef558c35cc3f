//! Showcase scenario generators (SCENARIOS.md, schemas in docs/events.md): UPI payments with
//! injected fraud and its ground truth, ride hailing, a sale-day shop, live-stream heartbeats
//! and fantasy scores.
//!
//! # Emission order and event time
//!
//! Every scenario emits events in *slots* `0, 1, 2, …`. Slot `s` has a nominal time
//! `base + trunc(s × 10⁶ / rate) / 1000` ms (the Nexmark formula: `rate` events per second of
//! event time), which never decreases along the emission order. Its event time (`ts`) is the
//! nominal time minus a delay drawn uniformly from `[0, max_delay_ms]`:
//!
//! `ts(s) = nominal(s) − U[0, max_delay_ms]`
//!
//! So events arrive out of order, but never by more than `max_delay_ms`: every event's `ts` is
//! at least the largest `ts` emitted before it minus `max_delay_ms`. A job whose watermark
//! is "max event time seen − lateness" with `lateness ≥ max_delay_ms` sees no late event.
//! `max_delay_ms = 0` gives events in time order. (Payments add injected events; they are
//! emitted at their exact time with no delay, see [`payments`].)
//!
//! Keys (payers, cells, users, streams, contests) are drawn from `keys` keys with Zipf
//! exponent `skew` (0 = uniform; rank 0 is the hottest key). All randomness is keyed by
//! `(seed, slot)`, so a config always yields the same stream.

pub mod heartbeats;
pub mod payments;
pub mod rides;
pub mod scores;
pub mod shop;

use crate::GenError;
use crate::nexmark::DEFAULT_BASE_TIME_MS;
use crate::nexmark::sequence::timestamp_for;
use crate::rng::{Rng, Zipf};

/// Most keys a scenario accepts (per-key state of the payments and shop generators is kept
/// in memory).
pub const MAX_KEYS: u64 = 50_000_000;

/// Counter stream of the per-slot delay draw.
const STREAM_DELAY: u64 = 0x6465_6c61; // "dela"

/// The knobs every scenario shares.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioConfig {
    /// Global seed.
    pub seed: u64,
    /// Nominal time of slot 0, epoch ms.
    pub base_time_ms: i64,
    /// Events per second of event time.
    pub rate: u64,
    /// Number of slots (events; payments add their injected events on top).
    pub count: u64,
    /// Number of distinct keys.
    pub keys: u64,
    /// Zipf exponent of key popularity (0 = uniform, 1 = classic Zipf).
    pub skew: f64,
    /// Bound of the random delay of event time behind emission order, in ms.
    pub max_delay_ms: u64,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 0,
            base_time_ms: DEFAULT_BASE_TIME_MS,
            rate: 1_000,
            count: 10_000,
            keys: 1_000,
            skew: 0.0,
            max_delay_ms: 0,
        }
    }
}

impl ScenarioConfig {
    /// Checks the shared fields; `generator` names the scenario in the error.
    pub fn validate(&self, generator: &'static str) -> Result<(), GenError> {
        let bad =
            |field, problem: String, fix| Err(GenError::config(generator, field, problem, fix));
        if self.rate == 0 {
            return bad(
                "rate",
                "is 0".into(),
                "give events per second of event time, at least 1",
            );
        }
        if self.keys == 0 || self.keys > MAX_KEYS {
            return bad(
                "keys",
                format!("is {}", self.keys),
                "use between 1 and MAX_KEYS = 50,000,000 keys",
            );
        }
        if !(self.skew >= 0.0 && self.skew.is_finite()) {
            return bad(
                "skew",
                format!("is {}", self.skew),
                "use a Zipf exponent >= 0 (0 = uniform)",
            );
        }
        if self.max_delay_ms > 86_400_000 {
            return bad(
                "max_delay_ms",
                format!("is {}", self.max_delay_ms),
                "use at most one day",
            );
        }
        Ok(())
    }

    /// Nominal (emission-order) time of `slot`.
    pub fn nominal_time(&self, slot: u64) -> i64 {
        timestamp_for(self.base_time_ms, 1_000_000.0 / self.rate as f64, slot)
    }

    /// Event time of `slot`: nominal time minus a delay in `[0, max_delay_ms]`.
    pub fn event_time(&self, slot: u64) -> i64 {
        let delay = if self.max_delay_ms == 0 {
            0
        } else {
            Rng::new(self.seed, STREAM_DELAY, slot).below(self.max_delay_ms + 1)
        };
        self.nominal_time(slot) - delay as i64
    }

    /// Nominal time just past the last slot.
    pub fn end_time(&self) -> i64 {
        self.nominal_time(self.count)
    }

    /// The random stream of `slot` for a scenario-specific `stream`.
    pub fn rng(&self, stream: u64, slot: u64) -> Rng {
        Rng::new(self.seed, stream, slot)
    }

    /// Key popularity sampler.
    pub fn zipf(&self) -> Zipf {
        Zipf::new(self.keys, self.skew)
    }
}

/// Checks that a scenario-specific share is a probability.
fn check_share(generator: &'static str, field: &'static str, v: f64) -> Result<(), GenError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(GenError::config(
            generator,
            field,
            format!("is {v}"),
            "use a share between 0 and 1",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_lags_emission_by_at_most_the_bound() {
        let c = ScenarioConfig {
            rate: 5_000,
            max_delay_ms: 300,
            ..ScenarioConfig::default()
        };
        let mut max_seen = i64::MIN;
        let mut out_of_order = 0;
        for s in 0..20_000 {
            let (n, t) = (c.nominal_time(s), c.event_time(s));
            assert!(t <= n && t >= n - 300);
            assert!(
                t >= max_seen.saturating_sub(300),
                "slot {s} is later than the bound"
            );
            if t < max_seen {
                out_of_order += 1;
            }
            max_seen = max_seen.max(t);
        }
        assert!(out_of_order > 10_000, "{out_of_order}");
        assert_eq!(c.nominal_time(5), DEFAULT_BASE_TIME_MS + 1);
    }
}
