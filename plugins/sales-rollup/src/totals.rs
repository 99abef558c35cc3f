//! `totals`: the second phase. Runs after the engine re-partitioned the
//! partials by their key (a product id or the global key): per key and minute
//! it adds up the partials of every upstream partition and emits the final
//! roll-up when the watermark passes the window end — which happens only once
//! every upstream partition has passed it, so every partial is in.

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

use crate::partials::Partial;

/// The sums of one key in one window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Sums {
    global: bool,
    orders: u64,
    units: u64,
    revenue: u64,
    active_users: u64,
    buyers: u64,
}

/// A product's minute (the `main` output value).
#[derive(Serialize)]
struct ProductMinute<'a> {
    product_id: &'a str,
    orders: u64,
    units: u64,
    revenue: u64,
    avg_order_value: f64,
    window_start: i64,
    window_end: i64,
}

/// The whole shop's minute (the `main` output value under the global key).
#[derive(Serialize)]
struct ShopMinute {
    active_users: u64,
    buyers: u64,
    conversion_rate: f64,
    total_orders: u64,
    total_units: u64,
    total_revenue: u64,
    window_start: i64,
    window_end: i64,
}

/// Per key and minute, the partials added up.
#[derive(Serialize, Deserialize)]
pub struct FinalPhase {
    window_ms: i64,
    windows: TumblingWindows<String, Sums>,
}

impl FinalPhase {
    pub(crate) fn new(window_ms: i64) -> Self {
        FinalPhase {
            window_ms,
            windows: TumblingWindows::new(window_ms),
        }
    }

    pub(crate) fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Returns false if the value is not a partial.
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<bool, Error> {
        let (Ok(key), Ok(partial)) = (rec.key_str(), rec.value::<Partial>()) else {
            return Ok(false);
        };
        let ts = rec.timestamp();
        let ours = self.windows.windows_of(ts).next();
        if ours.map(|w| (w.start, w.end)) != Some(partial.window()) {
            return Err(Error::msg(format!(
                "a partial for window {:?} arrived at {ts}, which this phase puts in {ours:?}; give both phases the same window_ms",
                partial.window()
            )));
        }
        self.windows.add_record(rec, ctx, key, |s| match &partial {
            Partial::Product(p) => {
                s.orders += p.orders;
                s.units = s.units.saturating_add(p.units);
                s.revenue = s.revenue.saturating_add(p.revenue);
            }
            Partial::Global(g) => {
                s.global = true;
                s.active_users += g.active_users;
                s.buyers += g.buyers;
                s.orders += g.orders;
                s.units = s.units.saturating_add(g.units);
                s.revenue = s.revenue.saturating_add(g.revenue);
            }
        })?;
        Ok(true)
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        self.windows.fire(ctx, |ctx, key, window, s| {
            let ts = window.max_timestamp();
            if s.global {
                let out = ShopMinute {
                    active_users: s.active_users,
                    buyers: s.buyers,
                    conversion_rate: s.buyers as f64 / s.active_users.max(1) as f64,
                    total_orders: s.orders,
                    total_units: s.units,
                    total_revenue: s.revenue,
                    window_start: window.start,
                    window_end: window.end,
                };
                ctx.emit(MAIN, ts, key, &out)
            } else {
                let out = ProductMinute {
                    product_id: key,
                    orders: s.orders,
                    units: s.units,
                    revenue: s.revenue,
                    avg_order_value: s.revenue as f64 / s.orders.max(1) as f64,
                    window_start: window.start,
                    window_end: window.end,
                };
                ctx.emit(MAIN, ts, key, &out)
            }
        })
    }
}
