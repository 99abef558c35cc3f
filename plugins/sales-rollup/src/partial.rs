//! `partial`: the first phase. Runs on the partitions of the `shop` topic
//! (keyed by user, so every user is in exactly one partition): per minute,
//! each product's orders and the partition's distinct active users and buyers.
//! Distinct user counts of different partitions add up exactly because no
//! user is in two partitions.

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

use crate::partials::{GlobalPartial, Partial, ProductPartial};

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShopEvent<'a> {
    Click(#[serde(borrow)] Visit<'a>),
    Cart(#[serde(borrow)] Visit<'a>),
    Order(#[serde(borrow)] Order<'a>),
}

#[derive(Deserialize)]
struct Visit<'a> {
    #[serde(borrow)]
    user_id: &'a str,
}

#[derive(Deserialize)]
struct Order<'a> {
    #[serde(borrow)]
    user_id: &'a str,
    #[serde(borrow)]
    product_id: &'a str,
    qty: u64,
    price: u64,
}

/// What one user did in one window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct UserMinute {
    orders: u64,
    units: u64,
    revenue: u64,
}

/// Per-minute products and users of one partition.
#[derive(Serialize, Deserialize)]
pub struct PartialPhase {
    window_ms: i64,
    products: TumblingWindows<String, ProductPartial>,
    users: TumblingWindows<String, UserMinute>,
    global_key: String,
}

impl PartialPhase {
    pub(crate) fn new(window_ms: i64, global_key: String) -> Self {
        PartialPhase {
            window_ms,
            products: TumblingWindows::new(window_ms),
            users: TumblingWindows::new(window_ms),
            global_key,
        }
    }

    pub(crate) fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Returns false if the value is not a shop event.
    pub(crate) fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<bool, Error> {
        let Ok(event) = rec.value::<ShopEvent<'_>>() else {
            return Ok(false);
        };
        let (user, order) = match event {
            ShopEvent::Click(v) | ShopEvent::Cart(v) => (v.user_id, None),
            ShopEvent::Order(o) => (o.user_id, Some(o)),
        };
        let revenue = order.as_ref().map_or(0, |o| o.qty.saturating_mul(o.price));
        let added = self.users.add_record(rec, ctx, user, |u| {
            if let Some(o) = &order {
                u.orders += 1;
                u.units = u.units.saturating_add(o.qty);
                u.revenue = u.revenue.saturating_add(revenue);
            }
        })?;
        // Same window assignment: a record late for one is late for the other
        // (and already went to `late` once).
        if let (true, Some(o)) = (added, &order) {
            let admit = self.products.add(ctx, rec.timestamp(), o.product_id, |p| {
                p.orders += 1;
                p.units = p.units.saturating_add(o.qty);
                p.revenue = p.revenue.saturating_add(revenue);
            })?;
            debug_assert_eq!(admit, Admit::Added);
        }
        Ok(true)
    }

    pub(crate) fn fire(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        self.products.fire(ctx, |ctx, product, window, p| {
            let partial = Partial::Product(ProductPartial {
                window_start: window.start,
                window_end: window.end,
                ..p.clone()
            });
            ctx.emit(MAIN, window.max_timestamp(), product, &partial)
        })?;
        let key = &self.global_key;
        self.users.fire_windows(ctx, |ctx, window, users| {
            let mut g = GlobalPartial {
                window_start: window.start,
                window_end: window.end,
                ..GlobalPartial::default()
            };
            for (_, u) in users.iter() {
                g.active_users += 1;
                g.buyers += u64::from(u.orders > 0);
                g.orders += u.orders;
                g.units = g.units.saturating_add(u.units);
                g.revenue = g.revenue.saturating_add(u.revenue);
            }
            ctx.emit(MAIN, window.max_timestamp(), key, &Partial::Global(g))
        })
    }
}
