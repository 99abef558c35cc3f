//! UPI payments with injected fraud (SCENARIOS.md §1) and the exact alerts a correct
//! `fraud-rules` job must raise.
//!
//! Normal traffic is kept clear of all three rules of docs/events.md:
//! - amounts stay at or below `max_normal_amount`, under both thresholds;
//! - payer `k` always pays from `device-k`;
//! - a payer's normal payments never number more than `velocity_max` within any 60 s: a drawn
//!   payer that would break this is skipped for another (hot payers are capped).
//!
//! Each [`Injection`] uses a payer of its own (`payer-<keys + j>`) that normal traffic never
//! draws, so patterns cannot interfere with each other or with normal traffic. Injected
//! payments are emitted at exactly their planned time (no delay), merged into the slot order
//! before the first slot whose nominal time is later; the bounded out-of-orderness of
//! [`super`] therefore still holds. `txn_id` is `txn-<emission index>`.

mod config;
mod model;

pub use config::{Injection, PaymentsConfig};
pub use model::{Alert, CITIES, FraudRule, FraudRules, MAX_VELOCITY, Payment, VELOCITY_WINDOW_MS};

use config::{alert_for, city_of, normal_amount, payer_name, plan};

use super::ScenarioConfig;
use crate::GenError;
use crate::rng::Zipf;

/// Payer draws per slot before falling back to a scan for a payer with room.
const MAX_PAYER_DRAWS: u32 = 16;

const STREAM_SLOT: u64 = 0x7061_7973; // "pays"

/// First slot whose nominal time is after `t` (or `count`): where an injected payment at `t`
/// is emitted.
fn first_slot_after(s: &ScenarioConfig, t: i64) -> u64 {
    let (mut lo, mut hi) = (0, s.count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if s.nominal_time(mid) > t {
            hi = mid
        } else {
            lo = mid + 1
        }
    }
    lo
}

/// The payments stream: an iterator of [`Payment`]s in emission order, plus the alerts its
/// injected patterns must raise.
#[derive(Debug, Clone)]
pub struct PaymentsGenerator {
    cfg: PaymentsConfig,
    zipf: Zipf,
    merchant_zipf: Zipf,
    slot: u64,
    emitted: u64,
    injected: Vec<Payment>,
    next_injected: usize,
    alerts: Vec<Alert>,
    /// Per normal payer: `ts` of its recent payments, sorted.
    history: Vec<Vec<i64>>,
}

impl PaymentsGenerator {
    /// Validates `cfg` and plans the injected patterns.
    pub fn new(cfg: PaymentsConfig) -> Result<Self, GenError> {
        cfg.validate()?;
        let plans: Vec<Vec<Payment>> = cfg
            .injections
            .iter()
            .enumerate()
            .map(|(j, inj)| plan(&cfg, j, inj))
            .collect();
        // Emission order of injected payments: by time, then pattern, then position.
        let mut order: Vec<(i64, usize, usize)> = plans
            .iter()
            .enumerate()
            .flat_map(|(j, p)| p.iter().enumerate().map(move |(i, x)| (x.ts, j, i)))
            .collect();
        order.sort_unstable();
        let mut plans = plans;
        let mut injected = Vec::with_capacity(order.len());
        let mut completion = Vec::with_capacity(plans.len());
        for (pos, &(ts, j, i)) in order.iter().enumerate() {
            let index = first_slot_after(&cfg.scenario, ts) + pos as u64;
            plans[j][i].txn_id = format!("txn-{index}");
            injected.push(plans[j][i].clone());
            if i + 1 == plans[j].len() {
                completion.push(j);
            }
        }
        let alerts = completion
            .iter()
            .map(|&j| alert_for(cfg.injections[j].rule, &plans[j]))
            .collect();
        Ok(PaymentsGenerator {
            zipf: cfg.scenario.zipf(),
            merchant_zipf: Zipf::new(cfg.merchants, 1.0),
            history: vec![Vec::new(); cfg.scenario.keys as usize],
            cfg,
            slot: 0,
            emitted: 0,
            injected,
            next_injected: 0,
            alerts,
        })
    }

    /// The alerts a correct implementation raises over the whole stream, in the order it
    /// raises them (by arrival of the completing payment).
    pub fn expected_alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// The configuration.
    pub fn config(&self) -> &PaymentsConfig {
        &self.cfg
    }

    /// Total payments the stream holds (slots plus injected).
    pub fn total(&self) -> u64 {
        self.cfg.scenario.count + self.injected.len() as u64
    }

    /// True if payer `k` can take a payment at `t` with no 60 s window holding more than
    /// `velocity_max` of its payments: every run of `velocity_max + 1` consecutive times
    /// (sorted) must span at least 60 s.
    fn fits(hist: &[i64], t: i64, velocity_max: usize) -> bool {
        let pos = hist.partition_point(|&x| x <= t);
        let at = |j: usize| match j.cmp(&pos) {
            std::cmp::Ordering::Less => hist[j],
            std::cmp::Ordering::Equal => t,
            std::cmp::Ordering::Greater => hist[j - 1],
        };
        let len = hist.len() + 1;
        if len <= velocity_max {
            return true;
        }
        let first = pos.saturating_sub(velocity_max);
        let last = pos.min(len - 1 - velocity_max);
        (first..=last).all(|a| at(a + velocity_max) - at(a) >= VELOCITY_WINDOW_MS)
    }

    fn normal(&mut self, slot: u64) -> Payment {
        let s = &self.cfg.scenario;
        let mut rng = s.rng(STREAM_SLOT, slot);
        let ts = s.event_time(slot);
        // Times older than this can never share a 60 s window with this or any later payment.
        let horizon = s.nominal_time(slot) - s.max_delay_ms as i64 - VELOCITY_WINDOW_MS;
        let vmax = self.cfg.rules.velocity_max as usize;
        let mut payer = self.zipf.sample(&mut rng);
        let mut found = false;
        for attempt in 0..u64::from(MAX_PAYER_DRAWS) + s.keys {
            if attempt >= u64::from(MAX_PAYER_DRAWS) {
                payer = (payer + 1) % s.keys; // scan on from the last draw
            } else if attempt > 0 {
                payer = self.zipf.sample(&mut rng);
            }
            let hist = &mut self.history[payer as usize];
            let old = hist.partition_point(|&x| x < horizon);
            hist.drain(..old);
            if Self::fits(hist, ts, vmax) {
                found = true;
                break;
            }
        }
        // `validate` proved some payer always has room; a false here would emit a velocity
        // alert the ground truth does not list.
        assert!(
            found,
            "payments: no payer can take slot {slot} without tripping the velocity rule"
        );
        let hist = &mut self.history[payer as usize];
        let pos = hist.partition_point(|&x| x <= ts);
        hist.insert(pos, ts);
        let payee = if rng.chance(self.cfg.uniform_payee_share) {
            rng.below(self.cfg.merchants)
        } else {
            self.merchant_zipf.sample(&mut rng)
        };
        Payment {
            txn_id: String::new(),
            payer: payer_name(payer),
            payee: format!("merchant-{payee}"),
            amount: normal_amount(&mut rng, self.cfg.max_normal_amount),
            device_id: format!("device-{payer}"),
            city: city_of(s.seed, payer).to_string(),
            ts,
        }
    }
}

impl Iterator for PaymentsGenerator {
    type Item = Payment;

    fn next(&mut self) -> Option<Payment> {
        let s = &self.cfg.scenario;
        let inject = self
            .injected
            .get(self.next_injected)
            .is_some_and(|p| self.slot >= s.count || p.ts < s.nominal_time(self.slot));
        let mut p = if inject {
            self.next_injected += 1;
            self.injected[self.next_injected - 1].clone()
        } else if self.slot < s.count {
            self.slot += 1;
            self.normal(self.slot - 1)
        } else {
            return None;
        };
        if p.txn_id.is_empty() {
            p.txn_id = format!("txn-{}", self.emitted);
        }
        debug_assert_eq!(p.txn_id, format!("txn-{}", self.emitted));
        self.emitted += 1;
        Some(p)
    }
}
