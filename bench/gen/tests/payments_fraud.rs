//! Payments: the reference fraud rules raise exactly the generator's injected alerts and
//! nothing else; the rules' edge cases on hand-built payments.

use sluice_gen::GenError;
use sluice_gen::reference::{alert_records, detect_fraud};
use sluice_gen::scenarios::ScenarioConfig;
use sluice_gen::scenarios::payments::{
    Alert, FraudRule, FraudRules, Injection, Payment, PaymentsConfig, PaymentsGenerator,
};

fn config(skew: f64, max_delay_ms: u64, injections: usize) -> PaymentsConfig {
    let scenario = ScenarioConfig {
        seed: 99,
        rate: 100,
        count: 100_000, // 1,000 s of event time
        keys: 5_000,
        skew,
        max_delay_ms,
        ..ScenarioConfig::default()
    };
    let rules = FraudRules::default();
    PaymentsConfig {
        injections: Injection::evenly_spaced(injections, &scenario, &rules),
        scenario,
        rules,
        ..PaymentsConfig::default()
    }
}

#[test]
fn reference_rules_raise_exactly_the_injected_alerts() {
    for (skew, delay) in [(0.0, 0), (1.2, 3_000)] {
        let cfg = config(skew, delay, 12);
        let generator = PaymentsGenerator::new(cfg.clone()).expect("valid");
        let expected = generator.expected_alerts().to_vec();
        let payments: Vec<Payment> = generator.collect();
        assert_eq!(payments.len(), 100_000 + 4 * 2 + 4 * 6 + 4 * 2);
        let found = detect_fraud(&cfg.rules, &payments);
        assert_eq!(found, expected, "skew {skew}, delay {delay}");
        assert_eq!(found.len(), 12);
        for rule in [
            FraudRule::TwoLarge,
            FraudRule::Velocity,
            FraudRule::NewDeviceHighAmount,
        ] {
            assert_eq!(found.iter().filter(|a| a.rule == rule).count(), 4);
        }
        // The skewed run pushed the hottest payer to the velocity cap (five a minute is at
        // most ~85 in 1,000 s; uniform traffic gives each payer ~20).
        if skew > 0.0 {
            let hot = payments.iter().filter(|p| p.payer == "payer-0").count();
            assert!(
                (80..=90).contains(&hot),
                "hottest payer made {hot} payments"
            );
        }
    }
}

#[test]
fn removing_one_payment_of_a_pattern_removes_its_alert() {
    let cfg = config(0.5, 0, 3);
    let generator = PaymentsGenerator::new(cfg.clone()).expect("valid");
    let expected = generator.expected_alerts().to_vec();
    let velocity = expected
        .iter()
        .find(|a| a.rule == FraudRule::Velocity)
        .expect("a velocity pattern")
        .clone();
    let payments: Vec<Payment> = generator
        .filter(|p| p.txn_id != velocity.txn_ids[0])
        .collect();
    let found = detect_fraud(&cfg.rules, &payments);
    assert_eq!(found.len(), 2);
    assert!(!found.contains(&velocity));
}

#[test]
fn payments_are_deterministic_with_sequential_txn_ids_and_bounded_delay() {
    let cfg = config(1.0, 2_000, 6);
    let a: Vec<Payment> = PaymentsGenerator::new(cfg.clone())
        .expect("valid")
        .collect();
    let b: Vec<Payment> = PaymentsGenerator::new(cfg).expect("valid").collect();
    assert_eq!(a, b);
    let mut max_seen = i64::MIN;
    for (i, p) in a.iter().enumerate() {
        assert_eq!(p.txn_id, format!("txn-{i}"));
        assert!(
            p.ts >= max_seen.saturating_sub(2_000),
            "payment {i} is later than the bound"
        );
        max_seen = max_seen.max(p.ts);
        assert!(p.amount >= 100);
    }
    let generator = PaymentsGenerator::new(config(0.0, 0, 3)).expect("valid");
    let records = alert_records(generator.expected_alerts());
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].value["rule"], "two_large");
    assert_eq!(
        records[0].timestamp,
        records[0].value["detected_at"].as_i64().unwrap_or(-1)
    );
}

#[test]
fn infeasible_or_unsafe_configs_are_rejected() {
    let mut cfg = config(0.0, 0, 0);
    cfg.scenario.keys = 100; // 100 × 5 cannot absorb 100/s × 60 s
    assert!(matches!(
        PaymentsGenerator::new(cfg).expect_err("too few payers"),
        GenError::Infeasible { .. }
    ));
    let mut cfg = config(0.0, 0, 0);
    cfg.max_normal_amount = 600_000; // above the device threshold
    let err = PaymentsGenerator::new(cfg)
        .expect_err("normal amounts would alert")
        .to_string();
    assert!(err.contains("max_normal_amount"), "{err}");
    let mut cfg = config(0.0, 0, 0);
    cfg.injections = vec![Injection {
        rule: FraudRule::TwoLarge,
        at_ms: cfg.scenario.end_time() - 1,
    }];
    let err = PaymentsGenerator::new(cfg)
        .expect_err("pattern past the end")
        .to_string();
    assert!(err.contains("injections"), "{err}");
}

fn pay(n: u32, payer: &str, amount: u64, device: &str, ts: i64) -> Payment {
    Payment {
        txn_id: format!("t{n}"),
        payer: payer.into(),
        payee: "merchant-1".into(),
        amount,
        device_id: device.into(),
        city: "Pune".into(),
        ts,
    }
}

fn ids(a: &Alert) -> Vec<&str> {
    a.txn_ids.iter().map(String::as_str).collect()
}

#[test]
fn two_large_pairs_within_the_span_and_consumes_both() {
    let rules = FraudRules::default();
    let big = 1_000_001;
    let input = [
        pay(1, "a", big, "d", 0),
        pay(2, "a", big, "d", 600_000), // exactly the span: alert
        pay(3, "a", big, "d", 600_001), // the pair is consumed: becomes pending
        pay(4, "a", 1_000_000, "d", 600_002), // not above the threshold
        pay(5, "a", big, "d", 1_200_002), // 600,001 ms after t3: too old, replaces it
        pay(6, "a", big, "d", 1_200_003),
    ];
    let alerts = detect_fraud(&rules, &input);
    assert_eq!(alerts.len(), 2);
    assert_eq!(ids(&alerts[0]), ["t1", "t2"]);
    assert_eq!(
        (
            alerts[0].window_start,
            alerts[0].window_end,
            alerts[0].detected_at
        ),
        (0, 600_000, 600_000)
    );
    assert_eq!(ids(&alerts[1]), ["t5", "t6"]);
    assert_eq!(alerts[1].amounts, [big, big]);
}

#[test]
fn velocity_fires_on_the_sixth_payment_within_a_minute_and_consumes_them() {
    let rules = FraudRules::default();
    let mut input: Vec<Payment> = (0..5)
        .map(|i| pay(i, "v", 100, "d", i64::from(i) * 10_000))
        .collect();
    assert!(
        detect_fraud(&rules, &input).is_empty(),
        "five is not more than five"
    );
    // The window is (ts − 60 s, ts]: a payment at 60 s leaves the one at 0 s outside (five),
    // but a late one at 59,999 ms sees all six.
    input.push(pay(5, "v", 100, "d", 60_000));
    assert!(detect_fraud(&rules, &input).is_empty());
    input.push(pay(6, "v", 100, "d", 59_999)); // out of order, inside (−1, 59,999]
    let alerts = detect_fraud(&rules, &input);
    assert_eq!(alerts.len(), 1);
    assert_eq!(ids(&alerts[0]), ["t0", "t1", "t2", "t3", "t4", "t6"]);
    assert_eq!(
        (
            alerts[0].window_start,
            alerts[0].window_end,
            alerts[0].detected_at
        ),
        (0, 59_999, 59_999)
    );
    // The named six are consumed; t5 plus four more make only five.
    input.extend((7..11).map(|i| pay(i, "v", 100, "d", 60_100)));
    assert_eq!(detect_fraud(&rules, &input).len(), 1);
    input.push(pay(11, "v", 100, "d", 60_200));
    let alerts = detect_fraud(&rules, &input);
    assert_eq!(alerts.len(), 2);
    assert_eq!(ids(&alerts[1]), ["t5", "t7", "t8", "t9", "t10", "t11"]);
}

#[test]
fn new_device_needs_an_earlier_payment_an_unseen_device_and_a_high_amount() {
    let rules = FraudRules::default();
    let input = [
        pay(1, "n", 900_000, "d1", 0), // first payment: nothing to compare with
        pay(2, "n", 900_000, "d1", 10), // known device
        pay(3, "n", 500_000, "d2", 20), // not above 500,000
        pay(4, "n", 900_000, "d2", 30), // d2 was used by t3
        pay(5, "n", 500_001, "d3", 40), // alert
        pay(6, "m", 900_000, "d3", 50), // another payer's first payment
    ];
    let alerts = detect_fraud(&rules, &input);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, FraudRule::NewDeviceHighAmount);
    assert_eq!(ids(&alerts[0]), ["t5"]);
    assert_eq!((alerts[0].window_start, alerts[0].window_end), (40, 40));
}

#[test]
fn one_payment_can_complete_several_patterns_in_rule_order() {
    let rules = FraudRules::default();
    let input = [
        pay(1, "x", 2_000_000, "d1", 0),
        pay(2, "x", 2_000_000, "d2", 1_000),
    ];
    let alerts = detect_fraud(&rules, &input);
    let rules_hit: Vec<FraudRule> = alerts.iter().map(|a| a.rule).collect();
    assert_eq!(
        rules_hit,
        [FraudRule::TwoLarge, FraudRule::NewDeviceHighAmount]
    );
}
