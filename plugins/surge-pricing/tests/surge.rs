//! Surge quotes per cell against hand-checked results, natively through the
//! SDK harness: 10 s windows every 5 s, k = 0.5, cap 3, one decimal, 2 s
//! out-of-orderness.

use serde_json::{Value, json};
use sluice_sdk::testing::Harness;
use surge_pricing::SurgePricing;

fn config() -> Value {
    json!({"size_ms": 10_000, "slide_ms": 5_000})
}

fn surge() -> Harness<SurgePricing> {
    Harness::<SurgePricing>::new(config())
        .unwrap()
        .with_out_of_orderness(2_000)
}

fn request(cell: &str, ts: i64) -> Value {
    json!({"ride_request": {"rider_id": "rider-1", "cell": cell, "ts": ts}})
}

fn ping(cell: &str, driver: &str, available: bool, ts: i64) -> Value {
    json!({"driver_ping": {"driver_id": driver, "cell": cell, "available": available, "ts": ts}})
}

fn send(h: &mut Harness<SurgePricing>, events: &[(i64, Value)]) {
    for (ts, v) in events {
        let cell = v.as_object().unwrap().values().next().unwrap()["cell"]
            .as_str()
            .unwrap()
            .to_owned();
        h.send(*ts, cell, v).unwrap();
    }
}

fn main_out(h: &mut Harness<SurgePricing>) -> Vec<(i64, String, Value)> {
    h.take("main")
        .into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

fn quote(
    cell: &str,
    start: i64,
    requests: u64,
    drivers: u64,
    multiplier: f64,
) -> (i64, String, Value) {
    let ratio = requests as f64 / drivers.max(1) as f64;
    (
        start + 9_999,
        cell.to_owned(),
        json!({"cell": cell, "requests": requests, "drivers": drivers, "ratio": ratio,
               "multiplier": multiplier, "window_start": start, "window_end": start + 10_000}),
    )
}

/// Cell 1-1 surges then calms down with more drivers; cell 2-2 surges and
/// goes silent.
fn script() -> Vec<(i64, Value)> {
    vec![
        (1_000, request("1-1", 1_000)),
        (1_000, request("2-2", 1_000)),
        (1_500, ping("1-1", "d1", true, 1_500)),
        (1_200, request("2-2", 1_200)),
        (2_000, request("1-1", 2_000)),
        (2_500, ping("1-1", "d2", false, 2_500)), // not available: not counted
        (1_400, request("2-2", 1_400)),
        (3_000, request("1-1", 3_000)),
        (1_600, request("2-2", 1_600)),
        (6_000, request("1-1", 6_000)),
        (7_000, ping("1-1", "d1", true, 7_000)),
        (7_100, ping("1-1", "d1", true, 7_100)), // the same driver twice
        (7_200, ping("1-1", "d3", true, 7_200)),
    ]
}

#[test]
fn quotes_are_emitted_when_the_multiplier_changes_and_silence_resets_it() {
    let mut h = surge();
    send(&mut h, &script());
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        main_out(&mut h),
        vec![
            // First windows are always emitted.
            quote("1-1", -5_000, 3, 1, 2.0),
            quote("2-2", -5_000, 4, 0, 2.5),
            // [0, 10 000): 1-1 at ratio 4/2 = 2 → 1.5; 2-2 unchanged at 2.5.
            quote("1-1", 0, 4, 2, 1.5),
            // [5 000, 15 000): 1-1 has 1 request for 2 drivers → 1.0; 2-2 had
            // no event at all → 1.0.
            quote("1-1", 5_000, 1, 2, 1.0),
            quote("2-2", 5_000, 0, 0, 1.0),
        ]
    );
}

#[test]
fn nothing_is_emitted_before_the_watermark_reaches_a_window_end() {
    let mut h = surge();
    send(
        &mut h,
        &[(1_000, request("c", 1_000)), (6_999, request("c", 6_999))],
    );
    assert!(main_out(&mut h).is_empty(), "watermark 4 999");
    send(&mut h, &[(7_000, request("c", 7_000))]);
    assert_eq!(main_out(&mut h), vec![quote("c", -5_000, 1, 0, 1.0)]);
}

#[test]
fn an_event_whose_windows_all_closed_goes_to_late() {
    let mut h = surge();
    send(
        &mut h,
        &[(1_000, request("c", 1_000)), (20_000, request("c", 20_000))],
    );
    send(&mut h, &[(4_000, request("c", 4_000))]);
    assert_eq!(h.take("late").len(), 1);
    assert_eq!(h.counter("late_events"), 1);
    // 16 000 is in [10 000, 20 000) and [15 000, 25 000), both still open at
    // watermark 18 000: not late.
    send(&mut h, &[(16_000, request("c", 16_000))]);
    assert!(h.take("late").is_empty());
}

#[test]
fn rounding_can_be_turned_off() {
    let mut h = Harness::<SurgePricing>::new(
        json!({"size_ms": 10_000, "slide_ms": 10_000, "decimals": null}),
    )
    .unwrap();
    for ts in [1, 2, 3, 4, 5, 6, 7] {
        h.send(ts, "c", &request("c", ts)).unwrap();
    }
    for d in ["a", "b", "c"] {
        h.send(8, "c", &ping("c", d, true, 8)).unwrap();
    }
    h.advance_watermark(i64::MAX).unwrap();
    let out = main_out(&mut h);
    assert_eq!(out[0].2["multiplier"], json!(1.0 + 0.5 * (7.0 / 3.0 - 1.0)));
}

#[test]
fn snapshot_and_restore_continue_with_identical_quotes() {
    let events = script();
    let run = |cut: Option<usize>| {
        let mut h = surge();
        let mut out = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if Some(i) == cut {
                let snapshot = h.snapshot().unwrap();
                out.extend(main_out(&mut h));
                h = Harness::<SurgePricing>::restore(config(), &snapshot)
                    .unwrap()
                    .with_out_of_orderness(2_000);
            }
            send(&mut h, std::slice::from_ref(e));
        }
        h.advance_watermark(i64::MAX).unwrap();
        out.extend(main_out(&mut h));
        out
    };
    let whole = run(None);
    assert_eq!(whole.len(), 5);
    for cut in 1..events.len() {
        assert_eq!(run(Some(cut)), whole, "snapshot before event {cut}");
    }
}

#[test]
fn pricing_follows_the_config_after_a_restore_but_windows_cannot_change() {
    let mut h = surge();
    send(
        &mut h,
        &[(1_000, request("c", 1_000)), (1_001, request("c", 1_001))],
    );
    let snapshot = h.snapshot().unwrap();
    let mut h = Harness::<SurgePricing>::restore(
        json!({"size_ms": 10_000, "slide_ms": 5_000, "k": 1.0}),
        &snapshot,
    )
    .unwrap();
    h.advance_watermark(5_000).unwrap();
    assert_eq!(
        main_out(&mut h),
        vec![quote("c", -5_000, 2, 0, 2.0)],
        "1 + 1.0 × (2 − 1)"
    );
    let err = Harness::<SurgePricing>::restore(json!({"size_ms": 60_000}), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("10000 ms every 5000 ms"), "{err}");
}

#[test]
fn bad_input_and_configs_are_refused_with_the_reason() {
    let mut h = surge();
    h.send(1, "c", &json!({"ride_cancel": {"cell": "c"}}))
        .unwrap();
    assert_eq!(h.take("dlq").len(), 1);
    assert_eq!(h.counter("bad_records"), 1);
    let err = |c: Value| Harness::<SurgePricing>::new(c).err().unwrap().to_string();
    assert_eq!(
        err(json!({"size_ms": 1_000, "slide_ms": 2_000})),
        "need 0 < slide_ms <= size_ms, got size_ms 1000 and slide_ms 2000"
    );
    assert_eq!(
        err(json!({"cap": 0.5})),
        "cap must be a number >= 1, got 0.5"
    );
    assert_eq!(err(json!({"k": -1.0})), "k must be a number >= 0, got -1");
    assert!(err(json!({"decimals": 9})).contains("decimals must be 0 to 6"));
}
