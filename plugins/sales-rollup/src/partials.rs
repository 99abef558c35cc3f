//! `partials`: the records the `partial` phase sends to the `final` phase
//! (its `main` output, re-keyed by the engine). One type serves both sides, so
//! the two phases cannot disagree on the format.
//!
//! A partial carries the window it describes; the final phase checks it is
//! the window its own `window_ms` assigns, which catches two phases configured
//! with different windows.

use serde::{Deserialize, Serialize};

/// One partition's share of a window, keyed by product id or the global key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partial {
    /// A product's orders in the partition.
    Product(ProductPartial),
    /// The partition's users and totals.
    Global(GlobalPartial),
}

impl Partial {
    /// The window the partial describes.
    pub fn window(&self) -> (i64, i64) {
        match self {
            Partial::Product(p) => (p.window_start, p.window_end),
            Partial::Global(g) => (g.window_start, g.window_end),
        }
    }
}

/// Order lines of one product in one window (and partition).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPartial {
    /// Order events.
    pub orders: u64,
    /// Units ordered (sum of `qty`).
    pub units: u64,
    /// Sum of `qty × price`, paise.
    pub revenue: u64,
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
}

/// Users and totals of one window (and partition).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalPartial {
    /// Distinct users with any event.
    pub active_users: u64,
    /// Distinct users with an order.
    pub buyers: u64,
    /// Order events.
    pub orders: u64,
    /// Units ordered.
    pub units: u64,
    /// Revenue, paise.
    pub revenue: u64,
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
}
