//! `surge-pricing`: a surge multiplier per grid cell as a Sluice plugin.
//!
//! Input: topic `rides`, key = `cell`, values `{"ride_request": {rider_id,
//! cell, ts}}` or `{"driver_ping": {driver_id, cell, available, ts}}`
//! (docs/events.md). Per cell and sliding window (`size_ms` every `slide_ms`):
//! ride requests, distinct drivers that reported themselves available, their
//! ratio and the multiplier of `pricing.rs`. A window's quote goes to `main`
//! (key = cell, timestamp = `window_end − 1`) only when its multiplier differs
//! from the cell's previous window; a cell's first window is always emitted.
//!
//! A window with no event at all has no requests and no drivers, so its
//! multiplier is 1.0: after a window priced above 1.0, a keyed timer at the
//! next window's end checks whether that window had events, and if not emits
//! the quiet window's quote, so a cell never stays surged after it went silent.

mod pricing;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use pricing::Pricing;

/// Largest number of decimal places accepted for the multiplier.
pub const MAX_DECIMALS: u32 = 6;

/// The operator config, all optional:
/// `{"size_ms": 300000, "slide_ms": 60000, "k": 0.5, "cap": 3.0, "decimals": 1}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Window size in ms.
    pub size_ms: i64,
    /// Distance between window starts in ms (`0 < slide_ms <= size_ms`).
    pub slide_ms: i64,
    /// Slope of the multiplier.
    pub k: f64,
    /// Largest multiplier (at least 1).
    pub cap: f64,
    /// Decimal places the multiplier is rounded to (`null`: no rounding).
    pub decimals: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size_ms: 300_000,
            slide_ms: 60_000,
            k: 0.5,
            cap: 3.0,
            decimals: Some(1),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RideEvent<'a> {
    RideRequest(#[serde(borrow)] Request<'a>),
    DriverPing(#[serde(borrow)] Ping<'a>),
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    cell: &'a str,
}

#[derive(Deserialize)]
struct Ping<'a> {
    #[serde(borrow)]
    cell: &'a str,
    #[serde(borrow)]
    driver_id: &'a str,
    available: bool,
}

/// Demand and supply of one cell in one window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Demand {
    requests: u64,
    drivers: BTreeSet<String>,
}

/// A cell's latest quote.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Quote {
    multiplier: f64,
    window_end: i64,
}

/// One window's quote (the `main` output value).
#[derive(Serialize)]
struct QuoteOut<'a> {
    cell: &'a str,
    requests: u64,
    drivers: u64,
    ratio: f64,
    multiplier: f64,
    window_start: i64,
    window_end: i64,
}

/// Each cell's latest quote, and what decides when a quote is emitted.
#[derive(Serialize, Deserialize)]
struct Quotes {
    size_ms: i64,
    slide_ms: i64,
    pricing: Pricing,
    latest: KeyedState<String, Quote>,
    /// Cells priced above 1.0 whose next window must be checked for silence.
    quiet_checks: KeyedTimers<String>,
}

impl Quotes {
    /// Prices `window` of `cell`; emits the quote if the multiplier differs
    /// from the cell's previous one (or the cell has none), and asks to check
    /// the next window when the cell is surged.
    fn quote(
        &mut self,
        ctx: &mut Ctx,
        cell: &str,
        window: Window,
        requests: u64,
        drivers: u64,
    ) -> Result<(), Error> {
        let ratio = Pricing::ratio(requests, drivers);
        let multiplier = self.pricing.multiplier(ratio);
        let quote = Quote {
            multiplier,
            window_end: window.end,
        };
        let previous = self.latest.insert(cell.to_owned(), quote)?;
        if previous.is_none_or(|p| p.multiplier != multiplier) {
            let out = QuoteOut {
                cell,
                requests,
                drivers,
                ratio,
                multiplier,
                window_start: window.start,
                window_end: window.end,
            };
            ctx.emit(MAIN, window.max_timestamp(), cell, &out)?;
            ctx.count("quotes_changed", 1);
        }
        if multiplier != 1.0 {
            let next_end = window.end.saturating_add(self.slide_ms);
            self.quiet_checks.set(ctx, next_end, cell.to_owned())?;
        }
        Ok(())
    }

    /// Quotes the windows ending at or before `wm` in which a surged cell had
    /// no event at all (multiplier 1.0).
    fn quiet_windows(&mut self, ctx: &mut Ctx, wm: i64) -> Result<(), Error> {
        while let Some((end, cell)) = self.quiet_checks.pop_due(wm) {
            let silent = self
                .latest
                .get(cell.as_str())
                .is_some_and(|q| q.window_end < end);
            if silent {
                let window = Window {
                    start: end.saturating_sub(self.size_ms),
                    end,
                };
                self.quote(ctx, &cell, window, 0, 0)?;
            }
        }
        Ok(())
    }
}

/// The operator: open windows and each cell's quotes.
#[derive(Serialize, Deserialize)]
pub struct SurgePricing {
    windows: SlidingWindows<String, Demand>,
    quotes: Quotes,
}

impl Operator for SurgePricing {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if !(0 < c.slide_ms && c.slide_ms <= c.size_ms) {
            return Err(Error::msg(format!(
                "need 0 < slide_ms <= size_ms, got size_ms {} and slide_ms {}",
                c.size_ms, c.slide_ms
            )));
        }
        if !(c.k.is_finite() && c.k >= 0.0) {
            return Err(Error::msg(format!("k must be a number >= 0, got {}", c.k)));
        }
        if !(c.cap.is_finite() && c.cap >= 1.0) {
            return Err(Error::msg(format!(
                "cap must be a number >= 1, got {}",
                c.cap
            )));
        }
        if c.decimals.is_some_and(|d| d > MAX_DECIMALS) {
            return Err(Error::msg(format!(
                "decimals must be 0 to {MAX_DECIMALS} (or null for no rounding), got {:?}",
                c.decimals
            )));
        }
        Ok(SurgePricing {
            windows: SlidingWindows::new(c.size_ms, c.slide_ms),
            quotes: Quotes {
                size_ms: c.size_ms,
                slide_ms: c.slide_ms,
                pricing: Pricing {
                    k: c.k,
                    cap: c.cap,
                    decimals: c.decimals,
                },
                latest: KeyedState::new(),
                quiet_checks: KeyedTimers::new(),
            },
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let event: RideEvent<'_> = match rec.value() {
            Ok(event) => event,
            Err(err) => {
                ctx.warn(format_args!(
                    "ride event at offset {} of partition {} sent to dlq: {err}",
                    rec.offset(),
                    rec.partition()
                ));
                ctx.count("bad_records", 1);
                return ctx.forward(DLQ, rec);
            }
        };
        match event {
            RideEvent::RideRequest(r) => {
                self.windows
                    .add_record(rec, ctx, r.cell, |d| d.requests += 1)?;
            }
            RideEvent::DriverPing(p) => {
                self.windows.add_record(rec, ctx, p.cell, |d| {
                    if p.available && !d.drivers.contains(p.driver_id) {
                        d.drivers.insert(p.driver_id.to_owned());
                    }
                })?;
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        let quotes = &mut self.quotes;
        self.windows.fire(ctx, |ctx, cell, window, d| {
            quotes.quote(ctx, cell, window, d.requests, d.drivers.len() as u64)
        })?;
        self.quotes.quiet_windows(ctx, wm)
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        let (old, new) = (&self.quotes, &fresh.quotes);
        if (new.size_ms, new.slide_ms) != (old.size_ms, old.slide_ms) {
            return Err(Error::msg(format!(
                "the snapshot's windows are {} ms every {} ms but the config asks for {} ms every {} ms; a running job cannot change its windows (start a new job)",
                old.size_ms, old.slide_ms, new.size_ms, new.slide_ms
            )));
        }
        self.quotes.pricing = fresh.quotes.pricing;
        Ok(())
    }
}

sluice_sdk::export_operator!(SurgePricing);
