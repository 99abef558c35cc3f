//! The three fraud rules against hand-checked alerts (docs/events.md, "Fraud
//! rules"), run natively through the SDK harness with a 2 s out-of-orderness.

use fraud_rules::FraudRules;
use serde_json::{Value, json};
use sluice_sdk::testing::Harness;

const LARGE: u64 = 1_500_000;
const SMALL: u64 = 10_000;

fn rules(config: Value) -> Harness<FraudRules> {
    Harness::<FraudRules>::new(config)
        .unwrap()
        .with_out_of_orderness(2_000)
}

fn payment(txn: &str, payer: &str, amount: u64, device: &str, ts: i64) -> Value {
    json!({"txn_id": txn, "payer": payer, "payee": "merchant-1", "amount": amount,
           "device_id": device, "city": "Pune", "ts": ts})
}

/// Sends `(txn, amount, device, ts)` payments of `payer`, one batch each.
fn pay(h: &mut Harness<FraudRules>, payer: &str, payments: &[(&str, u64, &str, i64)]) {
    for &(txn, amount, device, ts) in payments {
        h.send(ts, payer, &payment(txn, payer, amount, device, ts))
            .unwrap();
    }
}

/// `(timestamp, key, value)` of every alert so far.
fn alerts(h: &mut Harness<FraudRules>) -> Vec<(i64, String, Value)> {
    h.take("alerts")
        .into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

fn alert(
    rule: &str,
    payer: &str,
    named: &[(&str, u64, i64)],
    detected_at: i64,
) -> (i64, String, Value) {
    let txn_ids: Vec<&str> = named.iter().map(|n| n.0).collect();
    let amounts: Vec<u64> = named.iter().map(|n| n.1).collect();
    let start = named.iter().map(|n| n.2).min().unwrap();
    let end = named.iter().map(|n| n.2).max().unwrap();
    (
        detected_at,
        payer.to_owned(),
        json!({"rule": rule, "payer": payer, "txn_ids": txn_ids, "amounts": amounts,
               "window_start": start, "window_end": end, "detected_at": detected_at}),
    )
}

#[test]
fn two_large_payments_within_the_span_raise_one_alert_and_are_consumed() {
    let mut h = rules(json!({}));
    pay(
        &mut h,
        "payer-1",
        &[
            ("t1", LARGE, "d1", 1_000),
            ("t2", SMALL, "d1", 2_000),
            ("t3", LARGE + 1, "d1", 601_000), // exactly span_ms after t1
            ("t4", LARGE, "d1", 700_000),     // t1 and t3 are consumed: pending
            ("t5", LARGE, "d1", 1_300_001),   // 600 001 ms after t4: too far, pending
            ("t6", 1_000_000, "d1", 1_300_500), // not above the threshold
        ],
    );
    assert_eq!(
        alerts(&mut h),
        vec![alert(
            "two_large",
            "payer-1",
            &[("t1", LARGE, 1_000), ("t3", LARGE + 1, 601_000)],
            601_000
        )]
    );
}

#[test]
fn more_than_five_payments_in_a_minute_raise_one_velocity_alert_naming_them_all() {
    let mut h = rules(json!({}));
    let times = [0, 10_000, 20_000, 30_000, 40_000, 59_999];
    let names = ["v1", "v2", "v3", "v4", "v5", "v6"];
    for (name, ts) in names.iter().zip(times) {
        pay(&mut h, "payer-2", &[(name, SMALL, "d", ts)]);
    }
    let named: Vec<(&str, u64, i64)> = names
        .iter()
        .zip(times)
        .map(|(n, t)| (*n, SMALL, t))
        .collect();
    assert_eq!(
        alerts(&mut h),
        vec![alert("velocity", "payer-2", &named, 59_999)]
    );
    // The six are consumed: a seventh within the minute starts counting anew.
    pay(&mut h, "payer-2", &[("v7", SMALL, "d", 60_000)]);
    assert!(alerts(&mut h).is_empty());
}

#[test]
fn a_payment_exactly_a_minute_later_is_outside_the_velocity_window() {
    let mut h = rules(json!({"velocity_max": 2}));
    pay(
        &mut h,
        "p",
        &[
            ("a", 1, "d", 0),
            ("b", 1, "d", 30_000),
            ("c", 1, "d", 60_000),
        ],
    );
    assert!(alerts(&mut h).is_empty(), "window of c is (0, 60 000]");
    pay(&mut h, "p", &[("d", 1, "d", 60_001)]);
    assert_eq!(
        alerts(&mut h),
        vec![alert(
            "velocity",
            "p",
            &[("b", 1, 30_000), ("c", 1, 60_000), ("d", 1, 60_001)],
            60_001
        )]
    );
}

#[test]
fn a_high_amount_from_a_new_device_alerts_only_after_a_first_payment() {
    let mut h = rules(json!({}));
    pay(
        &mut h,
        "payer-3",
        &[
            ("n1", 600_000, "d1", 1_000), // first payment ever: no alert
            ("n2", 500_000, "d2", 2_000), // new device, not above 500 000
            ("n3", 600_000, "d2", 3_000), // device d2 was used (by n2)
            ("n4", 500_001, "d3", 4_000),
        ],
    );
    assert_eq!(
        alerts(&mut h),
        vec![alert(
            "new_device_high_amount",
            "payer-3",
            &[("n4", 500_001, 4_000)],
            4_000
        )]
    );
}

#[test]
fn one_payment_completing_three_patterns_raises_them_in_rule_order() {
    let mut h = rules(json!({"velocity_max": 1}));
    pay(
        &mut h,
        "p",
        &[("a", LARGE, "d1", 1_000), ("b", LARGE, "d2", 2_000)],
    );
    let both = [("a", LARGE, 1_000), ("b", LARGE, 2_000)];
    assert_eq!(
        alerts(&mut h),
        vec![
            alert("two_large", "p", &both, 2_000),
            alert("velocity", "p", &both, 2_000),
            alert("new_device_high_amount", "p", &[("b", LARGE, 2_000)], 2_000),
        ]
    );
}

#[test]
fn payers_are_independent_and_out_of_order_payments_count_by_event_time() {
    let mut h = rules(json!({"velocity_max": 2}));
    // Interleaved payers; q's payments arrive out of order (within 2 s).
    pay(&mut h, "p", &[("p1", 1, "d", 10_000)]);
    pay(&mut h, "q", &[("q1", 1, "d", 10_500)]);
    pay(&mut h, "q", &[("q2", 1, "d", 9_000)]);
    pay(&mut h, "p", &[("p2", 1, "d", 11_000)]);
    pay(&mut h, "q", &[("q3", 1, "d", 8_900)]);
    // Window of q3 is (8 900 − 60 s, 8 900]: q1 and q2 are later, not counted.
    assert!(alerts(&mut h).is_empty());
    pay(&mut h, "q", &[("q4", 1, "d", 11_200)]);
    assert_eq!(
        alerts(&mut h),
        vec![alert(
            "velocity",
            "q",
            &[
                ("q1", 1, 10_500),
                ("q2", 1, 9_000),
                ("q3", 1, 8_900),
                ("q4", 1, 11_200)
            ],
            11_200
        )]
    );
}

#[test]
fn late_payments_are_evaluated_against_what_is_still_remembered() {
    let mut h = rules(json!({"span_ms": 10_000}));
    pay(&mut h, "p", &[("a", LARGE, "d", 0)]);
    // Another payer moves the watermark to 198 000: a can no longer pair with
    // any payment that is not late, so p forgets it.
    pay(&mut h, "other", &[("x", 1, "d", 200_000)]);
    // b is late (5 000 <= watermark) and 5 s after a, but a is forgotten.
    pay(&mut h, "p", &[("b", LARGE, "d", 5_000)]);
    assert!(alerts(&mut h).is_empty());
    // Devices are never forgotten by time: a late high amount from a new
    // device still alerts.
    pay(&mut h, "p", &[("c", 600_000, "d9", 6_000)]);
    assert_eq!(
        alerts(&mut h),
        vec![alert(
            "new_device_high_amount",
            "p",
            &[("c", 600_000, 6_000)],
            6_000
        )]
    );
}

#[test]
fn snapshot_and_restore_continue_with_identical_alerts() {
    let script: Vec<(&str, &str, u64, &str, i64)> = vec![
        ("a", "p", LARGE, "d1", 1_000),
        ("b", "q", 1, "d1", 1_500),
        ("c", "q", 1, "d1", 2_000),
        ("d", "p", 1, "d1", 2_500),
        ("e", "q", 1, "d1", 3_000),
        ("f", "p", LARGE, "d2", 4_000),
        ("g", "q", 1, "d1", 4_500),
        ("h", "q", 1, "d1", 5_000),
        ("i", "q", 1, "d1", 5_500),
    ];
    let run = |cut: Option<usize>| {
        let config = json!({"velocity_max": 4});
        let mut h = rules(config.clone());
        let mut out = Vec::new();
        for (i, &(txn, payer, amount, device, ts)) in script.iter().enumerate() {
            if Some(i) == cut {
                let snapshot = h.snapshot().unwrap();
                out.extend(alerts(&mut h));
                h = Harness::<FraudRules>::restore(config.clone(), &snapshot)
                    .unwrap()
                    .with_out_of_orderness(2_000);
            }
            pay(&mut h, payer, &[(txn, amount, device, ts)]);
        }
        out.extend(alerts(&mut h));
        out
    };
    let whole = run(None);
    assert_eq!(
        whole.len(),
        3,
        "two_large and new device for p, velocity for q: {whole:?}"
    );
    for cut in 1..script.len() {
        assert_eq!(run(Some(cut)), whole, "snapshot before payment {cut}");
    }
}

#[test]
fn thresholds_follow_the_config_after_a_restore() {
    let mut h = rules(json!({}));
    pay(&mut h, "p", &[("a", 2_000, "d1", 1_000)]);
    let snapshot = h.snapshot().unwrap();
    let mut h = Harness::<FraudRules>::restore(json!({"large_amount": 1_000}), &snapshot).unwrap();
    assert_eq!(h.operator().thresholds().large_amount, 1_000);
    pay(&mut h, "p", &[("b", 2_000, "d1", 2_000)]);
    assert_eq!(alerts(&mut h).len(), 0, "a was not large when it arrived");
    pay(&mut h, "p", &[("c", 2_000, "d1", 3_000)]);
    assert_eq!(alerts(&mut h)[0].2["txn_ids"], json!(["b", "c"]));
}

#[test]
fn a_payment_that_does_not_decode_goes_to_dlq_and_the_rest_go_on() {
    let mut h = rules(json!({}));
    h.send(
        1_000,
        "p",
        &json!({"txn_id": "x", "payer": "p", "amount": "lots"}),
    )
    .unwrap();
    let dlq = h.take("dlq");
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].json()["amount"], "lots");
    assert_eq!(h.counter("bad_records"), 1);
    assert!(h.logs()[0].1.contains("expected u64"), "{:?}", h.logs());
    pay(
        &mut h,
        "p",
        &[("a", LARGE, "d", 2_000), ("b", LARGE, "d", 3_000)],
    );
    assert_eq!(alerts(&mut h).len(), 1);
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let err = |c: Value| Harness::<FraudRules>::new(c).err().unwrap().to_string();
    assert_eq!(
        err(json!({"velocity_max": 0})),
        "velocity_max must be 1 to 1000, got 0"
    );
    assert_eq!(
        err(json!({"span_ms": -1})),
        "span_ms must be at least 0, got -1"
    );
    assert!(err(json!({"span": 5})).contains("unknown field `span`"));
}
