//! `window-totals`: per record key, how many records arrived and the total of
//! their `amount` field, in tumbling event-time windows. Works on any topic
//! whose values have an integer `amount` (the UPI `payments` topic, for one).
//!
//! This is the plugin that `sdk/README.md` builds step by step.
//!
//! Config: `{"window_ms": 60000, "min_count": 1}` (both optional).
//! Output `main`, keyed by the input key:
//! `{key, count, total, window_start, window_end}`; records later than their
//! window go unchanged to `late`.

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

/// The operator's configuration, from the job spec.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// Windows with fewer records than this are not reported.
    pub min_count: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window_ms: 60_000,
            min_count: 1,
        }
    }
}

/// The part of an input value this operator reads; other fields are skipped.
#[derive(Deserialize)]
struct Input {
    amount: u64,
}

/// What a window keeps per key.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Totals {
    count: u64,
    total: u64,
}

/// One result record.
#[derive(Serialize)]
struct Report<'a> {
    key: &'a str,
    count: u64,
    total: u64,
    window_start: i64,
    window_end: i64,
}

/// The operator. Everything in it is snapshotted and restored by the SDK.
#[derive(Serialize, Deserialize)]
pub struct WindowTotals {
    min_count: u64,
    windows: TumblingWindows<String, Totals>,
}

impl Operator for WindowTotals {
    type Config = Config;

    fn init(config: Config) -> Result<Self, Error> {
        if config.window_ms <= 0 {
            return Err(Error::msg(format!(
                "window_ms must be positive, got {}",
                config.window_ms
            )));
        }
        Ok(WindowTotals {
            min_count: config.min_count,
            windows: TumblingWindows::new(config.window_ms),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let input: Input = rec.value()?;
        let key = rec.key_str()?;
        // A late record goes to the `late` output and counts in `late_events`.
        self.windows.add_record(rec, ctx, key, |totals| {
            totals.count += 1;
            totals.total = totals.total.saturating_add(input.amount);
        })?;
        Ok(())
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        let min_count = self.min_count;
        self.windows.fire(ctx, |ctx, key, window, totals| {
            if totals.count < min_count {
                return Ok(());
            }
            let report = Report {
                key,
                count: totals.count,
                total: totals.total,
                window_start: window.start,
                window_end: window.end,
            };
            ctx.emit(MAIN, window.max_timestamp(), key, &report)
        })
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        // The threshold follows the job's current config, not the snapshot.
        self.min_count = fresh.min_count;
        Ok(())
    }
}

sluice_sdk::export_operator!(WindowTotals);
