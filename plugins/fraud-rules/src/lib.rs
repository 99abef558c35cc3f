//! `fraud-rules`: the UPI fraud rules of docs/events.md as a Sluice plugin.
//!
//! Input: topic `payments`, key = payer, values `{txn_id, payer, payee, amount,
//! device_id, city, ts}`. Per payer, in the order its payments arrive (one
//! payer's payments are in one partition, so this is the log order), three
//! rules run (`payer.rs`): `two_large`, `velocity` and
//! `new_device_high_amount`. Each completed pattern is one record on the
//! `alerts` output: key = payer, timestamp = `detected_at`, value
//! `{rule, payer, txn_ids, amounts, window_start, window_end, detected_at}`.
//!
//! The rules are not windows: nothing waits for the watermark, an alert leaves
//! with the payment that completes it. The watermark only decides what a payer's
//! state may forget (payments too old to pair with any payment still to come).
//! A value that does not decode goes unchanged to `dlq` and counts in
//! `bad_records`.

mod payer;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use payer::{
    MAX_DEVICES_PER_PAYER, Payer, Payment, Raised, Rule, Thresholds, Txn, VELOCITY_WINDOW_MS,
};

/// Output the alerts go to.
pub const ALERTS: &str = "alerts";
/// Largest `velocity_max` accepted: an alert names `velocity_max + 1` payments.
pub const MAX_VELOCITY: u32 = 1_000;

/// The operator config; every field is optional (docs/events.md defaults):
/// `{"large_amount": 1000000, "span_ms": 600000, "velocity_max": 5, "device_amount": 500000}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `two_large`: a payment is large when `amount > large_amount` (paise).
    pub large_amount: u64,
    /// `two_large`: the earlier large payment is at most this much older (ms).
    pub span_ms: i64,
    /// `velocity`: alert when more than this many payments fall within 60 s.
    pub velocity_max: u32,
    /// `new_device_high_amount`: threshold (paise).
    pub device_amount: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            large_amount: 1_000_000,
            span_ms: 600_000,
            velocity_max: 5,
            device_amount: 500_000,
        }
    }
}

/// The fields of a payment the rules read.
#[derive(Deserialize)]
struct PaymentIn<'a> {
    #[serde(borrow)]
    txn_id: &'a str,
    #[serde(borrow)]
    payer: &'a str,
    amount: u64,
    #[serde(borrow)]
    device_id: &'a str,
    ts: i64,
}

/// One alert record (docs/events.md, "Fraud alerts").
#[derive(Serialize)]
struct AlertOut<'a> {
    rule: &'static str,
    payer: &'a str,
    txn_ids: Vec<&'a str>,
    amounts: Vec<u64>,
    window_start: i64,
    window_end: i64,
    detected_at: i64,
}

/// The operator: thresholds and per-payer state.
#[derive(Serialize, Deserialize)]
pub struct FraudRules {
    thresholds: Thresholds,
    payers: KeyedState<String, Payer>,
    /// Alerts completed by the payment being processed (reused).
    #[serde(skip)]
    raised: Vec<Raised>,
}

impl FraudRules {
    /// The thresholds in force.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Number of payers with state.
    pub fn payers(&self) -> usize {
        self.payers.len()
    }
}

impl Operator for FraudRules {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if c.span_ms < 0 {
            return Err(Error::msg(format!(
                "span_ms must be at least 0, got {}",
                c.span_ms
            )));
        }
        if c.velocity_max == 0 || c.velocity_max > MAX_VELOCITY {
            return Err(Error::msg(format!(
                "velocity_max must be 1 to {MAX_VELOCITY}, got {}",
                c.velocity_max
            )));
        }
        Ok(FraudRules {
            thresholds: Thresholds {
                large_amount: c.large_amount,
                span_ms: c.span_ms,
                velocity_max: c.velocity_max,
                device_amount: c.device_amount,
            },
            payers: KeyedState::new(),
            raised: Vec::new(),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let p: PaymentIn<'_> = match rec.value() {
            Ok(p) => p,
            Err(err) => {
                ctx.warn(format_args!(
                    "payment at offset {} of partition {} sent to dlq: {err}",
                    rec.offset(),
                    rec.partition()
                ));
                ctx.count("bad_records", 1);
                return ctx.forward(DLQ, rec);
            }
        };
        let t = self.thresholds;
        let payer = self.payers.get_or_default(p.payer)?;
        payer.forget_before(ctx.watermark(), &t);
        let payment = Payment {
            txn_id: p.txn_id,
            amount: p.amount,
            device_id: p.device_id,
            ts: p.ts,
        };
        self.raised.clear();
        if payer.observe(payment, &t, &mut self.raised) {
            ctx.count("devices_forgotten", 1);
        }
        for alert in &self.raised {
            let out = AlertOut {
                rule: alert.rule.name(),
                payer: p.payer,
                txn_ids: alert.named.iter().map(|t| t.txn_id.as_str()).collect(),
                amounts: alert.named.iter().map(|t| t.amount).collect(),
                window_start: alert.named.iter().map(|t| t.ts).min().unwrap_or(p.ts),
                window_end: alert.named.iter().map(|t| t.ts).max().unwrap_or(p.ts),
                detected_at: p.ts,
            };
            ctx.emit(ALERTS, p.ts, p.payer, &out)?;
            ctx.count(alert.rule.name(), 1);
        }
        Ok(())
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        // Thresholds follow the job's current config, not the snapshot.
        self.thresholds = fresh.thresholds;
        Ok(())
    }
}

sluice_sdk::export_operator!(FraudRules);
