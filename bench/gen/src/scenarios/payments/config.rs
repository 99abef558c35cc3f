//! Payments configuration, and the planning of injected fraud patterns: which payments each
//! [`Injection`] adds and which alert it must raise.

use super::model::{
    Alert, CITIES, FraudRule, FraudRules, MAX_VELOCITY, Payment, VELOCITY_WINDOW_MS,
};
use crate::GenError;
use crate::rng::Rng;
use crate::scenarios::{ScenarioConfig, check_share};

const STREAM_INJECT: u64 = 0x696e_6a63; // "injc"
const STREAM_CITY: u64 = 0x6369_7479; // "city"

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
pub(super) fn payer_name(k: u64) -> String {
    format!("payer-{k}")
}

pub(super) fn city_of(seed: u64, k: u64) -> &'static str {
    CITIES[Rng::new(seed, STREAM_CITY, k).below(CITIES.len() as u64) as usize]
}

/// Log-uniform amount in `[100, max]` paise.
pub(super) fn normal_amount(rng: &mut Rng, max: u64) -> u64 {
    let a = (100.0 * (max as f64 / 100.0).powf(rng.unit())).round() as u64;
    a.clamp(100, max)
}

/// The payments of injection `j` (without `txn_id`), in time order.
pub(super) fn plan(cfg: &PaymentsConfig, j: usize, inj: &Injection) -> Vec<Payment> {
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
pub(super) fn alert_for(rule: FraudRule, p: &[Payment]) -> Alert {
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
