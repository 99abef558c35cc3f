//! Payment and alert types of docs/events.md ("UPI payments", "Fraud alerts") and the rule
//! thresholds shared by the generator and the reference rules.

use serde::{Deserialize, Serialize};

use crate::encode::EventRecord;

/// Velocity rule window: payments with `ts` in `(ts − 60,000, ts]`.
pub const VELOCITY_WINDOW_MS: i64 = 60_000;
/// Most payments a velocity alert may name (`velocity_max + 1`), bounding injected patterns.
pub const MAX_VELOCITY: u32 = 1_000;

/// Cities payers live in.
pub const CITIES: [&str; 10] = [
    "Mumbai",
    "Delhi",
    "Bengaluru",
    "Hyderabad",
    "Chennai",
    "Kolkata",
    "Pune",
    "Ahmedabad",
    "Jaipur",
    "Lucknow",
];

/// One UPI payment (topic `payments`, key = `payer`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Payment {
    /// `txn-<emission index>`.
    pub txn_id: String,
    /// `payer-<k>`.
    pub payer: String,
    /// `merchant-<m>`.
    pub payee: String,
    /// Paise.
    pub amount: u64,
    /// `device-<k>` (injected new devices: `device-<k>-b`).
    pub device_id: String,
    /// The payer's city.
    pub city: String,
    /// Event time, epoch ms.
    pub ts: i64,
}

impl EventRecord for Payment {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.payer.as_bytes());
    }

    fn timestamp(&self) -> i64 {
        self.ts
    }
}

/// The three fraud rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudRule {
    /// Two large payments within a span.
    TwoLarge,
    /// More than `velocity_max` payments within a minute.
    Velocity,
    /// A high amount from a device the payer never used.
    NewDeviceHighAmount,
}

/// Rule thresholds (defaults of docs/events.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudRules {
    /// `two_large`: a payment is large when `amount > large_amount` (paise).
    pub large_amount: u64,
    /// `two_large`: the earlier large payment is at most this much older.
    pub span_ms: i64,
    /// `velocity`: alert when more than this many payments fall within 60 s.
    pub velocity_max: u32,
    /// `new_device_high_amount`: threshold (paise).
    pub device_amount: u64,
}

impl Default for FraudRules {
    fn default() -> Self {
        FraudRules {
            large_amount: 1_000_000,
            span_ms: 600_000,
            velocity_max: 5,
            device_amount: 500_000,
        }
    }
}

/// A fraud alert (output of `fraud-rules`, key = `payer`, timestamp = `detected_at`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Alert {
    /// Which rule fired.
    pub rule: FraudRule,
    /// The payer.
    pub payer: String,
    /// The payments named, in arrival order.
    pub txn_ids: Vec<String>,
    /// Their amounts, in the same order.
    pub amounts: Vec<u64>,
    /// Smallest `ts` among them.
    pub window_start: i64,
    /// Largest `ts` among them.
    pub window_end: i64,
    /// `ts` of the payment that completed the pattern.
    pub detected_at: i64,
}

impl EventRecord for Alert {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.payer.as_bytes());
    }

    fn timestamp(&self) -> i64 {
        self.detected_at
    }
}
