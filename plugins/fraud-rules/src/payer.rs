//! `payer`: what the rules remember about one payer, and the rules themselves.
//!
//! [`Payer::observe`] runs the three rules of docs/events.md on one payment in
//! arrival order and returns the alerts it completes, in the order
//! `two_large`, `velocity`, `new_device_high_amount`. Each rule consumes its
//! own payments: a payment named by a `velocity` alert still counts for
//! `two_large`. Called by the operator in `lib.rs`; knows nothing of records.
//!
//! Invariant: `recent` is sorted by `(ts, seq)`, and `seq` grows by one per
//! payment of the payer, so it is the payer's arrival order.

use serde::{Deserialize, Serialize};

/// The `velocity` rule counts payments with `ts` in `(ts − 60,000, ts]`.
pub const VELOCITY_WINDOW_MS: i64 = 60_000;
/// Most distinct devices remembered per payer; past it the device first used
/// longest ago is forgotten (counted in `devices_forgotten`).
pub const MAX_DEVICES_PER_PAYER: usize = 256;

/// The rule thresholds (docs/events.md defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// `two_large`: a payment is large when `amount > large_amount` (paise).
    pub large_amount: u64,
    /// `two_large`: the earlier large payment is at most this much older.
    pub span_ms: i64,
    /// `velocity`: alert when more than this many payments fall in 60 s.
    pub velocity_max: u32,
    /// `new_device_high_amount`: threshold (paise).
    pub device_amount: u64,
}

/// Which rule an alert comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Two large payments within `span_ms`.
    TwoLarge,
    /// More than `velocity_max` payments within a minute.
    Velocity,
    /// A high amount from a device the payer never used.
    NewDeviceHighAmount,
}

impl Rule {
    /// The rule's name in alerts.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TwoLarge => "two_large",
            Rule::Velocity => "velocity",
            Rule::NewDeviceHighAmount => "new_device_high_amount",
        }
    }
}

/// A payment as the rules remember it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Transaction id.
    pub txn_id: String,
    /// Amount in paise.
    pub amount: u64,
    /// Event time, epoch ms.
    pub ts: i64,
    /// Arrival number within the payer.
    pub seq: u64,
}

/// One payment being evaluated, borrowed from the record.
#[derive(Debug, Clone, Copy)]
pub struct Payment<'a> {
    /// Transaction id.
    pub txn_id: &'a str,
    /// Amount in paise.
    pub amount: u64,
    /// Device used.
    pub device_id: &'a str,
    /// Event time, epoch ms.
    pub ts: i64,
}

/// An alert the payment completed: the rule and the payments it names, in
/// arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// The rule.
    pub rule: Rule,
    /// The named payments.
    pub named: Vec<Txn>,
}

/// Everything the rules keep about one payer.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payer {
    /// Payments seen so far (the next payment's `seq`).
    seq: u64,
    /// The most recent large payment not yet in a `two_large` alert.
    pending_large: Option<Txn>,
    /// Payments not yet in a `velocity` alert that a later payment may still
    /// count, sorted by `(ts, seq)`.
    recent: Vec<Txn>,
    /// Devices used, first use first.
    devices: Vec<String>,
}

impl Payer {
    /// Drops what no payment later than `watermark` can use: a pending large
    /// payment older than `watermark − span_ms` and payments at or before
    /// `watermark − 60 s`. Payments at or before the watermark (late ones) are
    /// still evaluated, against what is left.
    pub fn forget_before(&mut self, watermark: i64, t: &Thresholds) {
        if self
            .pending_large
            .as_ref()
            .is_some_and(|p| p.ts < watermark.saturating_sub(t.span_ms))
        {
            self.pending_large = None;
        }
        let horizon = watermark.saturating_sub(VELOCITY_WINDOW_MS);
        let old = self.recent.partition_point(|p| p.ts <= horizon);
        self.recent.drain(..old);
    }

    /// Runs the rules on the payer's next payment. Returns the alerts it
    /// completes and whether a device had to be forgotten.
    pub fn observe(&mut self, p: Payment<'_>, t: &Thresholds, out: &mut Vec<Raised>) -> bool {
        let txn = Txn {
            txn_id: p.txn_id.to_owned(),
            amount: p.amount,
            ts: p.ts,
            seq: self.seq,
        };
        self.seq += 1;

        if p.amount > t.large_amount {
            match self.pending_large.take() {
                Some(prev) if p.ts.saturating_sub(prev.ts) <= t.span_ms => out.push(Raised {
                    rule: Rule::TwoLarge,
                    named: vec![prev, txn.clone()],
                }),
                _ => self.pending_large = Some(txn.clone()),
            }
        }

        let at = self
            .recent
            .partition_point(|r| (r.ts, r.seq) < (txn.ts, txn.seq));
        self.recent.insert(at, txn.clone());
        let from = self
            .recent
            .partition_point(|r| r.ts <= p.ts.saturating_sub(VELOCITY_WINDOW_MS));
        let to = self.recent.partition_point(|r| r.ts <= p.ts);
        if to - from > t.velocity_max as usize {
            let mut named: Vec<Txn> = self.recent.drain(from..to).collect();
            named.sort_by_key(|r| r.seq);
            out.push(Raised {
                rule: Rule::Velocity,
                named,
            });
        }

        let new_device = !self.devices.iter().any(|d| d == p.device_id);
        if p.amount > t.device_amount && !self.devices.is_empty() && new_device {
            out.push(Raised {
                rule: Rule::NewDeviceHighAmount,
                named: vec![txn],
            });
        }
        let mut forgot = false;
        if new_device {
            if self.devices.len() >= MAX_DEVICES_PER_PAYER {
                self.devices.remove(0);
                forgot = true;
            }
            self.devices.push(p.device_id.to_owned());
        }
        forgot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        large_amount: 100,
        span_ms: 1_000,
        velocity_max: 2,
        device_amount: 50,
    };

    fn pay<'a>(txn_id: &'a str, amount: u64, device_id: &'a str, ts: i64) -> Payment<'a> {
        Payment {
            txn_id,
            amount,
            device_id,
            ts,
        }
    }

    fn ids(r: &Raised) -> Vec<&str> {
        r.named.iter().map(|t| t.txn_id.as_str()).collect()
    }

    #[test]
    fn velocity_names_the_window_in_arrival_order_even_when_times_are_out_of_order() {
        let mut payer = Payer::default();
        let mut out = Vec::new();
        payer.observe(pay("a", 1, "d", 10_000), &T, &mut out);
        payer.observe(pay("b", 1, "d", 9_000), &T, &mut out);
        assert!(out.is_empty());
        payer.observe(pay("c", 1, "d", 9_500), &T, &mut out);
        // Window of c: (9_500 − 60 s, 9_500] holds b and c only; a is later.
        assert!(out.is_empty());
        payer.observe(pay("d", 1, "d", 10_001), &T, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(ids(&out[0]), ["a", "b", "c", "d"]);
    }

    #[test]
    fn forgetting_keeps_what_a_payment_after_the_watermark_can_still_use() {
        let mut payer = Payer::default();
        let mut out = Vec::new();
        payer.observe(pay("a", 500, "d", 0), &T, &mut out);
        payer.observe(pay("b", 1, "d", 70_000), &T, &mut out);
        payer.forget_before(70_000, &T);
        assert!(
            payer.pending_large.is_none(),
            "70 s > span: cannot pair any more"
        );
        assert_eq!(payer.recent.len(), 1, "a is at or before 70 s − 60 s");
        assert_eq!(payer.devices, ["d"], "devices are never forgotten by time");
    }
}
