//! The tutorial plugin, tested natively through the SDK harness.

use serde_json::json;
use sluice_sdk::testing::Harness;
use window_totals::WindowTotals;

#[test]
fn totals_per_key_are_reported_when_the_window_closes() {
    let mut h = Harness::<WindowTotals>::new(json!({"window_ms": 1000})).unwrap();
    h.send(100, "alice", &json!({"amount": 5, "payee": "bob"}))
        .unwrap();
    h.send(900, "alice", &json!({"amount": 7})).unwrap();
    h.send(300, "carol", &json!({"amount": 1})).unwrap();
    h.send(1_200, "alice", &json!({"amount": 2})).unwrap();
    assert!(
        h.take("main").is_empty(),
        "nothing is due before the watermark reaches 1000"
    );

    h.advance_watermark(1_000).unwrap();
    assert_eq!(
        h.take_json("main"),
        vec![
            json!({"key": "alice", "count": 2, "total": 12, "window_start": 0, "window_end": 1000}),
            json!({"key": "carol", "count": 1, "total": 1, "window_start": 0, "window_end": 1000}),
        ]
    );
}

#[test]
fn a_late_record_goes_to_the_late_output_unchanged() {
    let mut h = Harness::<WindowTotals>::new(json!({"window_ms": 1000})).unwrap();
    h.advance_watermark(5_000).unwrap();
    h.send(10, "alice", &json!({"amount": 5})).unwrap();
    let late = h.take("late");
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].timestamp, late[0].key_str()),
        (10, "alice".to_string())
    );
    assert_eq!(h.counter("late_events"), 1);
}

#[test]
fn windows_survive_a_snapshot_and_the_threshold_follows_the_new_config() {
    let mut h = Harness::<WindowTotals>::new(json!({"window_ms": 1000})).unwrap();
    h.send(100, "alice", &json!({"amount": 5})).unwrap();
    h.send(200, "bob", &json!({"amount": 1})).unwrap();
    h.send(300, "bob", &json!({"amount": 1})).unwrap();
    let snapshot = h.snapshot().unwrap();

    let mut restored =
        Harness::<WindowTotals>::restore(json!({"window_ms": 1000, "min_count": 2}), &snapshot)
            .unwrap();
    restored.advance_watermark(1_000).unwrap();
    assert_eq!(
        restored.take_json("main"),
        vec![json!({"key": "bob", "count": 2, "total": 2, "window_start": 0, "window_end": 1000})]
    );
}

#[test]
fn a_value_without_an_amount_fails_the_batch_and_names_the_record() {
    let mut h = Harness::<WindowTotals>::without_config().unwrap();
    let err = h
        .send(1, "alice", &json!({"amt": 5}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "record at offset 0 of partition 0 (source 0): value does not decode as `window_totals::Input`: missing field `amount`"
    );
}

#[test]
fn a_bad_config_is_refused_with_the_reason() {
    let err = Harness::<WindowTotals>::new(json!({"window_ms": 0}))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(err, "window_ms must be positive, got 0");
    let err = Harness::<WindowTotals>::new(json!({"window": 5}))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown field `window`"), "{err}");
}
