//! The plugin over generated payments (sluice-gen, with injected fraud and
//! out-of-order event times) raises exactly the alerts the generator planted,
//! in the order it lists them.

use fraud_rules::FraudRules;
use serde_json::json;
use sluice_gen::encode::{EventRecord, to_msgpack};
use sluice_gen::scenarios::ScenarioConfig;
use sluice_gen::scenarios::payments::{
    Alert, FraudRules as Rules, Injection, PaymentsConfig, PaymentsGenerator,
};
use sluice_sdk::testing::{Harness, Input};

/// Payments of `scenario` with `patterns` planted fraud patterns.
fn planted(scenario: ScenarioConfig, rules: Rules, patterns: usize) -> PaymentsGenerator {
    let injections = Injection::evenly_spaced(patterns, &scenario, &rules);
    PaymentsGenerator::new(PaymentsConfig {
        scenario,
        rules,
        injections,
        ..PaymentsConfig::default()
    })
    .unwrap()
}

/// A stream of `count` payments at `rate` per second from `keys` payers
/// (Zipf 0.8), up to 1 s out of order, with 30 injected patterns.
fn generated_alerts_are_raised_exactly(
    (rate, count, keys): (u64, u64, u64),
    rules: Rules,
    config: serde_json::Value,
    batch: usize,
) {
    let scenario = ScenarioConfig {
        seed: 42,
        rate,
        count,
        keys,
        skew: 0.8,
        max_delay_ms: 1_000,
        ..ScenarioConfig::default()
    };
    let generator = planted(scenario, rules, 30);
    let expected = generator.expected_alerts().to_vec();
    assert_eq!(expected.len(), 30);

    let mut h = Harness::<FraudRules>::new(config)
        .unwrap()
        .with_out_of_orderness(2_000);
    let payments: Vec<_> = generator.collect();
    for chunk in payments.chunks(batch) {
        let inputs = chunk
            .iter()
            .map(|p| Input::raw(p.timestamp(), p.key(), to_msgpack(p).unwrap()));
        h.send_batch(inputs).unwrap();
    }
    let got: Vec<Alert> = h.take_values("alerts").unwrap();
    assert_eq!(got, expected);
    assert_eq!(h.counter("bad_records"), 0);
}

#[test]
fn default_rules_catch_every_injected_pattern_and_nothing_else() {
    // 800 s of event time: patterns span up to the default 10 minutes.
    generated_alerts_are_raised_exactly((50, 40_000, 1_000), Rules::default(), json!({}), 100);
}

#[test]
fn the_demo_span_catches_every_injected_pattern_whatever_the_batching() {
    let rules = Rules {
        span_ms: 20_000,
        ..Rules::default()
    };
    let stream = (200, 30_000, 3_000);
    generated_alerts_are_raised_exactly(stream, rules.clone(), json!({"span_ms": 20_000}), 1);
    generated_alerts_are_raised_exactly(stream, rules, json!({"span_ms": 20_000}), 4_096);
}

#[test]
fn alert_records_are_keyed_by_payer_at_their_detection_time() {
    let scenario = ScenarioConfig {
        rate: 20,
        count: 20_000,
        keys: 500,
        ..ScenarioConfig::default()
    };
    let generator = planted(scenario, Rules::default(), 6);
    let expected = generator.expected_alerts().to_vec();
    let mut h = Harness::<FraudRules>::without_config().unwrap();
    for p in generator {
        h.send_raw(p.timestamp(), p.key(), &to_msgpack(&p).unwrap())
            .unwrap();
    }
    let got: Vec<(String, i64)> = h
        .take("alerts")
        .iter()
        .map(|o| (o.key_str(), o.timestamp))
        .collect();
    let want: Vec<(String, i64)> = expected
        .iter()
        .map(|a| (a.payer.clone(), a.detected_at))
        .collect();
    assert_eq!(got, want);
}
