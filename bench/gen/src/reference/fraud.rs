//! Reference fraud rules (docs/events.md "Fraud rules"), evaluated per payer in arrival order.
//!
//! Exact semantics implemented:
//! - `two_large`: a payment with `amount > large_amount` pairs with the payer's pending large
//!   payment (the most recent large one not yet in an alert) when `ts − pending.ts <=
//!   span_ms`; the alert names both (pending first) and clears the pending one. Otherwise the
//!   new payment becomes the pending one.
//! - `velocity`: after adding the payment, the payer's not-yet-alerted payments with `ts` in
//!   `(ts − 60,000, ts]` (among those arrived so far) are counted; more than `velocity_max`
//!   → one alert naming them in arrival order; they are consumed (by this rule only).
//! - `new_device_high_amount`: `amount > device_amount`, the payer has an earlier payment,
//!   and none of its earlier payments used this `device_id` → an alert naming this payment.
//! - Each rule keeps its own state: a payment consumed by one rule still counts for the others.
//!   One payment can complete several patterns; their alerts come in the order two_large,
//!   velocity, new_device_high_amount.
//! - `window_start`/`window_end` = min/max `ts` of the named payments; `detected_at` = `ts` of
//!   the completing payment. Output records: key = payer, timestamp = `detected_at`.
//!
//! Every payment is kept (clarity over memory): fine for test and verification sizes.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::OutputRecord;
use crate::scenarios::payments::{Alert, FraudRule, FraudRules, Payment, VELOCITY_WINDOW_MS};

#[derive(Default)]
struct PayerState<'a> {
    pending_large: Option<&'a Payment>,
    /// Not yet alerted by `velocity`, keyed by `(ts, arrival)`.
    recent: BTreeMap<(i64, usize), &'a Payment>,
    devices: HashSet<&'a str>,
}

fn alert(rule: FraudRule, named: &[&Payment], detected_at: i64) -> Alert {
    Alert {
        rule,
        payer: named[0].payer.clone(),
        txn_ids: named.iter().map(|p| p.txn_id.clone()).collect(),
        amounts: named.iter().map(|p| p.amount).collect(),
        window_start: named.iter().map(|p| p.ts).min().unwrap_or(detected_at),
        window_end: named.iter().map(|p| p.ts).max().unwrap_or(detected_at),
        detected_at,
    }
}

/// Runs the three rules over `payments` in arrival order and returns the alerts in the order
/// they are raised.
pub fn detect_fraud<'a>(
    rules: &FraudRules,
    payments: impl IntoIterator<Item = &'a Payment>,
) -> Vec<Alert> {
    let mut payers: HashMap<&str, PayerState<'a>> = HashMap::new();
    let mut alerts = Vec::new();
    for (arrival, p) in payments.into_iter().enumerate() {
        let st = payers.entry(p.payer.as_str()).or_default();

        if p.amount > rules.large_amount {
            match st.pending_large {
                Some(prev) if p.ts - prev.ts <= rules.span_ms => {
                    alerts.push(alert(FraudRule::TwoLarge, &[prev, p], p.ts));
                    st.pending_large = None;
                }
                _ => st.pending_large = Some(p),
            }
        }

        st.recent.insert((p.ts, arrival), p);
        let window: Vec<(i64, usize)> = st
            .recent
            .range((p.ts - VELOCITY_WINDOW_MS + 1, 0)..=(p.ts, usize::MAX))
            .map(|(k, _)| *k)
            .collect();
        if window.len() > rules.velocity_max as usize {
            let mut named: Vec<(usize, &Payment)> =
                window.iter().map(|k| (k.1, st.recent[k])).collect();
            named.sort_by_key(|(arrival, _)| *arrival);
            let named: Vec<&Payment> = named.into_iter().map(|(_, p)| p).collect();
            alerts.push(alert(FraudRule::Velocity, &named, p.ts));
            for k in &window {
                st.recent.remove(k);
            }
        }

        let seen_before = !st.devices.is_empty();
        if p.amount > rules.device_amount
            && seen_before
            && !st.devices.contains(p.device_id.as_str())
        {
            alerts.push(alert(FraudRule::NewDeviceHighAmount, &[p], p.ts));
        }
        st.devices.insert(p.device_id.as_str());
    }
    alerts
}

/// The alerts as output records: key = payer, timestamp = `detected_at`, value = the alert.
pub fn alert_records(alerts: &[Alert]) -> Vec<OutputRecord> {
    alerts
        .iter()
        .map(|a| OutputRecord {
            key: a.payer.clone(),
            timestamp: a.detected_at,
            value: serde_json::to_value(a).unwrap_or_default(),
        })
        .collect()
}
