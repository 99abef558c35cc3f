//! Viewers per stream and window against hand-checked results, natively
//! through the SDK harness (10 s windows, 2 s out-of-orderness).

use serde_json::{Value, json};
use sluice_sdk::testing::Harness;
use viewers::Viewers;

fn viewers(config: Value) -> Harness<Viewers> {
    Harness::<Viewers>::new(config)
        .unwrap()
        .with_out_of_orderness(2_000)
}

fn beat(viewer: &str, stream: &str, buffering_ms: u64, ts: i64) -> Value {
    json!({"viewer_id": viewer, "stream_id": stream, "bitrate_kbps": 1600,
           "buffering_ms": buffering_ms, "ts": ts})
}

/// Sends `(viewer, stream, buffering_ms, ts)` heartbeats, one batch each.
fn send(h: &mut Harness<Viewers>, beats: &[(&str, &str, u64, i64)]) {
    for &(viewer, stream, buffering, ts) in beats {
        h.send(ts, stream, &beat(viewer, stream, buffering, ts))
            .unwrap();
    }
}

fn main_out(h: &mut Harness<Viewers>) -> Vec<(i64, String, Value)> {
    h.take("main")
        .into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn report(
    stream: &str,
    start: i64,
    viewers: u64,
    beats: u64,
    buffering_beats: u64,
    buffering_ms: u64,
    peak: u64,
) -> (i64, String, Value) {
    (
        start + 9_999,
        stream.to_owned(),
        json!({"stream_id": stream, "viewers": viewers, "viewers_exact": true, "beats": beats,
               "buffering_beats": buffering_beats,
               "buffering_ratio": buffering_beats as f64 / beats as f64,
               "buffering_ms": buffering_ms, "peak_viewers": peak,
               "window_start": start, "window_end": start + 10_000}),
    )
}

#[test]
fn distinct_viewers_and_buffering_are_reported_per_stream_and_window() {
    let mut h = viewers(json!({"window_ms": 10_000}));
    send(
        &mut h,
        &[
            ("v1", "s1", 0, 1_000),
            ("v2", "s1", 300, 2_000),
            ("v1", "s1", 0, 5_000),
            ("v3", "s2", 0, 6_000),
            ("v2", "s1", 200, 9_000),
            ("v1", "s1", 0, 8_500), // out of order, same window
            ("v9", "s1", 0, 11_000),
        ],
    );
    assert!(main_out(&mut h).is_empty(), "watermark 9 000");
    send(&mut h, &[("v9", "s1", 0, 12_000)]);
    assert_eq!(
        main_out(&mut h),
        vec![
            report("s1", 0, 2, 5, 2, 500, 2),
            report("s2", 0, 1, 1, 0, 0, 1)
        ]
    );
}

#[test]
fn the_peak_is_the_largest_window_so_far_per_stream() {
    let mut h = viewers(json!({"window_ms": 10_000}));
    send(
        &mut h,
        &[
            ("a", "s", 0, 1_000),
            ("b", "s", 0, 2_000),
            ("c", "s", 0, 3_000),
            ("a", "s", 0, 11_000),
            ("a", "s", 0, 31_000),
            ("b", "s", 0, 32_000),
        ],
    );
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        main_out(&mut h),
        vec![
            report("s", 0, 3, 3, 0, 0, 3),
            report("s", 10_000, 1, 1, 0, 0, 3),
            report("s", 30_000, 2, 2, 0, 0, 3),
        ]
    );
}

#[test]
fn a_heartbeat_of_a_closed_window_goes_to_late() {
    let mut h = viewers(json!({"window_ms": 10_000}));
    send(&mut h, &[("a", "s", 0, 1_000), ("a", "s", 0, 14_000)]);
    assert_eq!(main_out(&mut h).len(), 1);
    send(&mut h, &[("b", "s", 0, 9_000)]);
    assert_eq!(h.take("late")[0].json(), beat("b", "s", 0, 9_000));
    assert_eq!(h.counter("late_events"), 1);
}

#[test]
fn past_the_bound_the_count_saturates_and_says_so() {
    let mut h = viewers(json!({"window_ms": 10_000, "max_viewers": 2}));
    send(
        &mut h,
        &[
            ("a", "s", 0, 1),
            ("b", "s", 0, 2),
            ("c", "s", 0, 3),
            ("a", "s", 0, 4),
        ],
    );
    h.advance_watermark(i64::MAX).unwrap();
    let out = main_out(&mut h);
    assert_eq!(out[0].2["viewers"], 2);
    assert_eq!(out[0].2["viewers_exact"], false);
    assert_eq!(out[0].2["beats"], 4);
}

#[test]
fn snapshot_and_restore_continue_with_identical_reports() {
    let script = [
        ("a", "s1", 0, 1_000),
        ("b", "s1", 100, 4_000),
        ("a", "s2", 0, 7_000),
        ("c", "s1", 0, 12_000),
        ("a", "s1", 50, 10_500),
        ("d", "s2", 0, 21_000),
        ("e", "s1", 0, 33_000),
    ];
    let config = json!({"window_ms": 10_000});
    let run = |cut: Option<usize>| {
        let mut h = viewers(config.clone());
        let mut out = Vec::new();
        for (i, b) in script.iter().enumerate() {
            if Some(i) == cut {
                let snapshot = h.snapshot().unwrap();
                out.extend(main_out(&mut h));
                h = Harness::<Viewers>::restore(config.clone(), &snapshot)
                    .unwrap()
                    .with_out_of_orderness(2_000);
            }
            send(&mut h, &[*b]);
        }
        h.advance_watermark(i64::MAX).unwrap();
        out.extend(main_out(&mut h));
        out
    };
    let whole = run(None);
    assert_eq!(whole.len(), 5, "{whole:#?}");
    for cut in 1..script.len() {
        assert_eq!(run(Some(cut)), whole, "snapshot before heartbeat {cut}");
    }
}

#[test]
fn bad_input_and_configs_are_refused_with_the_reason() {
    let mut h = viewers(json!({}));
    h.send(1, "s", &json!({"viewer_id": 5, "stream_id": "s"}))
        .unwrap();
    assert_eq!(h.take("dlq").len(), 1);
    assert_eq!(h.counter("bad_records"), 1);
    let snapshot = h.snapshot().unwrap();
    let err = Harness::<Viewers>::restore(json!({"window_ms": 60_000}), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("30000 ms") && err.contains("60000 ms"),
        "{err}"
    );
    let err = |c: Value| Harness::<Viewers>::new(c).err().unwrap().to_string();
    assert_eq!(
        err(json!({"window_ms": -5})),
        "window_ms must be positive, got -5"
    );
    assert_eq!(
        err(json!({"max_viewers": 0})),
        "max_viewers must be at least 1, got 0"
    );
}
