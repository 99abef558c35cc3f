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

use serde::{Deserialize, Serialize};

use super::{ScenarioConfig, check_share};
use crate::GenError;
use crate::encode::EventRecord;
use crate::rng::{Rng, Zipf};

/// Velocity rule window: payments with `ts` in `(ts − 60,000, ts]`.
pub const VELOCITY_WINDOW_MS: i64 = 60_000;
/// Most payments a velocity alert may name (`velocity_max + 1`), bounding injected patterns.
pub const MAX_VELOCITY: u32 = 1_000;
/// Payer draws per slot before falling back to a scan for a payer with room.
const MAX_PAYER_DRAWS: u32 = 16;

const STREAM_SLOT: u64 = 0x7061_7973; // "pays"
const STREAM_INJECT: u64 = 0x696e_6a63; // "injc"
const STREAM_CITY: u64 = 0x6369_7479; // "city"

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

/// One fraud pattern to inject, starting at event time `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    /// The rule the pattern triggers (exactly once).
    pub rule: FraudRule,
    /// Event time of the pattern's first payment.
    pub at_ms: i64,
}

impl Injection {
    /// `n` patterns cycling through the three rules, spread evenly over the first part of the
    /// stream so that each pattern (up to `span_ms` long) ends before the stream does.
    pub fn evenly_spaced(
        n: usize,
        scenario: &ScenarioConfig,
        rules: &FraudRules,
    ) -> Vec<Injection> {
        let longest = rules.span_ms.max(VELOCITY_WINDOW_MS);
        let usable = (scenario.end_time() - scenario.base_time_ms - longest).max(0);
        let rules_cycle = [
            FraudRule::TwoLarge,
            FraudRule::Velocity,
            FraudRule::NewDeviceHighAmount,
        ];
        (0..n)
            .map(|j| Injection {
                rule: rules_cycle[j % 3],
                at_ms: scenario.base_time_ms + usable * j as i64 / n.max(1) as i64,
            })
            .collect()
    }
}

/// Everything that determines a payments stream.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentsConfig {
    /// Shared knobs; `keys` = number of normal payers.
    pub scenario: ScenarioConfig,
    /// Rule thresholds the traffic is built around.
    pub rules: FraudRules,
    /// Patterns to inject.
    pub injections: Vec<Injection>,
    /// Largest normal amount (paise); must be below both thresholds.
    pub max_normal_amount: u64,
    /// Number of merchants payees are drawn from.
    pub merchants: u64,
    /// Share of normal payments whose payee is drawn uniformly (the rest go to hot merchants).
    pub uniform_payee_share: f64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            scenario: ScenarioConfig::default(),
            rules: FraudRules::default(),
            injections: Vec::new(),
            max_normal_amount: 200_000,
            merchants: 500,
            uniform_payee_share: 0.5,
        }
    }
}

impl PaymentsConfig {
    /// Checks every field, including that normal traffic can stay under the velocity cap.
    pub fn validate(&self) -> Result<(), GenError> {
        const G: &str = "payments";
        let s = &self.scenario;
        s.validate(G)?;
        check_share(G, "uniform_payee_share", self.uniform_payee_share)?;
        let r = &self.rules;
        if r.velocity_max == 0 || r.velocity_max > MAX_VELOCITY {
            let problem = format!("is {}", r.velocity_max);
            return Err(GenError::config(
                G,
                "rules.velocity_max",
                problem,
                "use 1..=MAX_VELOCITY (1000)",
            ));
        }
        if r.span_ms < 0 {
            return Err(GenError::config(
                G,
                "rules.span_ms",
                format!("is {}", r.span_ms),
                "use a span >= 0",
            ));
        }
        if self.max_normal_amount < 100
            || self.max_normal_amount >= r.large_amount.min(r.device_amount)
        {
            return Err(GenError::config(
                G,
                "max_normal_amount",
                format!(
                    "is {} with thresholds {} and {}",
                    self.max_normal_amount, r.large_amount, r.device_amount
                ),
                "use at least 100 paise and less than both large_amount and device_amount",
            ));
        }
        if self.merchants == 0 {
            return Err(GenError::config(
                G,
                "merchants",
                "is 0".to_string(),
                "use at least 1 merchant",
            ));
        }
        // Payments any one new payment must fit between: those emitted in the last
        // (60 s + max delay) of nominal time. If all payers could be full, say so now.
        let window =
            s.rate as u128 * (VELOCITY_WINDOW_MS as u128 + s.max_delay_ms as u128) / 1000 + 1;
        if u128::from(s.keys) * u128::from(r.velocity_max) <= window {
            return Err(GenError::Infeasible {
                generator: G,
                problem: format!(
                    "{} payers × velocity_max {} cannot absorb {} payments per 60 s (+ {} ms delay) without tripping the velocity rule",
                    s.keys, r.velocity_max, window, s.max_delay_ms
                ),
                fix: "raise keys or velocity_max, or lower rate",
            });
        }
        let end = s.end_time();
        for (j, inj) in self.injections.iter().enumerate() {
            let last = plan(self, j, inj).last().map_or(inj.at_ms, |p| p.ts);
            if inj.at_ms < s.base_time_ms || last > end {
                return Err(GenError::config(
                    G,
                    "injections",
                    format!(
                        "pattern {j} ({:?}) spans {}..={} ms, outside the stream {}..={}",
                        inj.rule, inj.at_ms, last, s.base_time_ms, end
                    ),
                    "inject patterns that start and end within base_time_ms and the stream's end",
                ));
            }
        }
        Ok(())
    }
}

/// Name of payer `k`.
fn payer_name(k: u64) -> String {
    format!("payer-{k}")
}

fn city_of(seed: u64, k: u64) -> &'static str {
    CITIES[Rng::new(seed, STREAM_CITY, k).below(CITIES.len() as u64) as usize]
}

/// Log-uniform amount in `[100, max]` paise.
fn normal_amount(rng: &mut Rng, max: u64) -> u64 {
    let a = (100.0 * (max as f64 / 100.0).powf(rng.unit())).round() as u64;
    a.clamp(100, max)
}

/// The payments of injection `j` (without `txn_id`), in time order.
fn plan(cfg: &PaymentsConfig, j: usize, inj: &Injection) -> Vec<Payment> {
    let r = &cfg.rules;
    let mut rng = Rng::new(cfg.scenario.seed, STREAM_INJECT, j as u64);
    let k = cfg.scenario.keys + j as u64;
    let payment = |ts: i64, amount: u64, device: String, rng: &mut Rng| Payment {
        txn_id: String::new(),
        payer: payer_name(k),
        payee: format!("merchant-{}", rng.below(cfg.merchants)),
        amount,
        device_id: device,
        city: city_of(cfg.scenario.seed, k).to_string(),
        ts,
    };
    let device = format!("device-{k}");
    match inj.rule {
        FraudRule::TwoLarge => {
            let gap = rng.between(1_000.min(r.span_ms as u64), r.span_ms as u64) as i64;
            let big = r.large_amount.saturating_add(1);
            let (a1, a2) = (
                rng.between(big, big.saturating_mul(5)),
                rng.between(big, big.saturating_mul(5)),
            );
            vec![
                payment(inj.at_ms, a1, device.clone(), &mut rng),
                payment(inj.at_ms + gap, a2, device, &mut rng),
            ]
        }
        FraudRule::Velocity => {
            let n = r.velocity_max as i64 + 1;
            let max_step = (VELOCITY_WINDOW_MS - 1_000) / (n - 1);
            let mut ts = inj.at_ms;
            let mut out = Vec::new();
            for i in 0..n {
                if i > 0 {
                    ts += rng.between(1, max_step as u64) as i64;
                }
                let amount = normal_amount(&mut rng, cfg.max_normal_amount);
                out.push(payment(ts, amount, device.clone(), &mut rng));
            }
            out
        }
        FraudRule::NewDeviceHighAmount => {
            let gap = rng.between(1_000, 60_000) as i64;
            let first = normal_amount(&mut rng, cfg.max_normal_amount);
            let lo = r.device_amount.saturating_add(1);
            let hi = if r.large_amount > lo {
                r.large_amount
            } else {
                lo.saturating_mul(2)
            };
            let high = rng.between(lo, hi);
            vec![
                payment(inj.at_ms, first, device, &mut rng),
                payment(inj.at_ms + gap, high, format!("device-{k}-b"), &mut rng),
            ]
        }
    }
}

/// The payments an alert of `rule` names out of its pattern `p`.
fn alert_for(rule: FraudRule, p: &[Payment]) -> Alert {
    let named: &[Payment] = match rule {
        FraudRule::NewDeviceHighAmount => &p[p.len() - 1..],
        FraudRule::TwoLarge | FraudRule::Velocity => p,
    };
    Alert {
        rule,
        payer: named[0].payer.clone(),
        txn_ids: named.iter().map(|x| x.txn_id.clone()).collect(),
        amounts: named.iter().map(|x| x.amount).collect(),
        window_start: named.iter().map(|x| x.ts).min().unwrap_or_default(),
        window_end: named.iter().map(|x| x.ts).max().unwrap_or_default(),
        detected_at: p[p.len() - 1].ts,
    }
}

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
