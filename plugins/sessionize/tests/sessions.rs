//! Sessions per user against hand-checked results, natively through the SDK
//! harness with a 2 s out-of-orderness and a 10 s gap.

use serde_json::{Value, json};
use sessionize::Sessionize;
use sluice_sdk::testing::Harness;

const GAP: i64 = 10_000;

fn sessions() -> Harness<Sessionize> {
    Harness::<Sessionize>::new(json!({"gap_ms": GAP}))
        .unwrap()
        .with_out_of_orderness(2_000)
}

fn click(user: &str, page: &str, ts: i64) -> Value {
    json!({"click": {"user_id": user, "page": page, "product_id": null, "ts": ts}})
}

fn cart(user: &str, action: &str, ts: i64) -> Value {
    json!({"cart": {"user_id": user, "product_id": "product-1", "action": action, "ts": ts}})
}

fn order(user: &str, ts: i64) -> Value {
    json!({"order": {"order_id": "o-1", "user_id": user, "product_id": "product-1", "qty": 1, "price": 100, "ts": ts}})
}

fn send(h: &mut Harness<Sessionize>, user: &str, events: &[(i64, Value)]) {
    for (ts, v) in events {
        h.send(*ts, user, v).unwrap();
    }
}

fn main_out(h: &mut Harness<Sessionize>) -> Vec<(i64, String, Value)> {
    h.take("main")
        .into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

/// The expected record of a session of `user` over events `first..=last`.
#[allow(clippy::too_many_arguments)]
fn session(
    user: &str,
    first: i64,
    last: i64,
    events: u64,
    page_views: u64,
    pages: &[&str],
    cart_adds: u64,
    checked_out: bool,
    ordered: bool,
) -> (i64, String, Value) {
    (
        last + GAP - 1,
        user.to_owned(),
        json!({"user_id": user, "session_start": first, "session_end": last, "events": events,
               "page_views": page_views, "pages": pages, "cart_adds": cart_adds,
               "checked_out": checked_out, "ordered": ordered,
               "abandoned": cart_adds > 0 && !checked_out,
               "window_start": first, "window_end": last + GAP}),
    )
}

#[test]
fn a_session_is_reported_once_the_watermark_passes_its_last_event_plus_the_gap() {
    let mut h = sessions();
    send(
        &mut h,
        "ann",
        &[
            (1_000, click("ann", "/", 1_000)),
            (3_000, click("ann", "/product/7", 3_000)),
            (4_000, cart("ann", "add", 4_000)),
            (5_000, click("ann", "/", 5_000)),
        ],
    );
    send(&mut h, "bob", &[(16_999, click("bob", "/", 16_999))]);
    assert!(main_out(&mut h).is_empty(), "watermark 14 999 < 15 000");
    send(&mut h, "bob", &[(17_000, click("bob", "/search", 17_000))]);
    assert_eq!(
        main_out(&mut h),
        vec![session(
            "ann",
            1_000,
            5_000,
            4,
            3,
            &["/", "/product/7"],
            1,
            false,
            false
        )]
    );
}

#[test]
fn an_event_exactly_a_gap_later_starts_a_new_session() {
    let mut h = sessions();
    send(
        &mut h,
        "ann",
        &[
            (1_000, click("ann", "/a", 1_000)),
            (11_000, click("ann", "/b", 11_000)),
        ],
    );
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        main_out(&mut h),
        vec![
            session("ann", 1_000, 1_000, 1, 1, &["/a"], 0, false, false),
            session("ann", 11_000, 11_000, 1, 1, &["/b"], 0, false, false),
        ]
    );
}

#[test]
fn an_out_of_order_event_bridging_two_sessions_merges_them() {
    let mut h = sessions();
    send(
        &mut h,
        "ann",
        &[
            (1_000, cart("ann", "add", 1_000)),
            (12_000, cart("ann", "checkout", 12_000)),
            (7_000, order("ann", 7_000)), // before the watermark (10 000), session still open
        ],
    );
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        main_out(&mut h),
        vec![session("ann", 1_000, 12_000, 3, 0, &[], 1, true, true)]
    );
}

#[test]
fn an_event_of_a_session_already_reported_goes_to_late() {
    let mut h = sessions();
    send(&mut h, "ann", &[(1_000, click("ann", "/", 1_000))]);
    send(&mut h, "bob", &[(30_000, click("bob", "/", 30_000))]);
    assert_eq!(main_out(&mut h).len(), 1);
    // Watermark 28 000: ann's session [1 000, 11 000) is closed, and a new one
    // at 9 000 would end at 19 000 <= 28 000: late.
    send(&mut h, "ann", &[(9_000, click("ann", "/x", 9_000))]);
    let late = h.take("late");
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].json(), click("ann", "/x", 9_000));
    assert_eq!(h.counter("late_events"), 1);
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(main_out(&mut h).len(), 1, "bob only");
}

#[test]
fn pages_are_distinct_sorted_and_capped() {
    let mut h = Harness::<Sessionize>::new(json!({"gap_ms": GAP, "max_pages": 2})).unwrap();
    for (i, page) in ["/z", "/b", "/b", "/a", "/c"].iter().enumerate() {
        h.send(i as i64, "ann", &click("ann", page, i as i64))
            .unwrap();
    }
    h.advance_watermark(i64::MAX).unwrap();
    let out = main_out(&mut h);
    assert_eq!(out[0].2["pages"], json!(["/a", "/b"]));
    assert_eq!(out[0].2["page_views"], 5);
}

#[test]
fn snapshot_and_restore_continue_with_identical_sessions() {
    let script: Vec<(&str, i64, Value)> = vec![
        ("ann", 1_000, click("ann", "/", 1_000)),
        ("bob", 2_000, cart("bob", "add", 2_000)),
        ("ann", 8_000, cart("ann", "add", 8_000)),
        ("bob", 6_000, click("bob", "/p", 6_000)),
        ("ann", 15_000, cart("ann", "checkout", 15_000)),
        ("bob", 19_000, order("bob", 19_000)),
        ("ann", 30_000, click("ann", "/again", 30_000)),
        ("bob", 45_000, click("bob", "/", 45_000)),
    ];
    let config = json!({"gap_ms": GAP});
    let run = |cut: Option<usize>| {
        let mut h = sessions();
        let mut out = Vec::new();
        for (i, (user, ts, v)) in script.iter().enumerate() {
            if Some(i) == cut {
                let snapshot = h.snapshot().unwrap();
                out.extend(main_out(&mut h));
                h = Harness::<Sessionize>::restore(config.clone(), &snapshot)
                    .unwrap()
                    .with_out_of_orderness(2_000);
            }
            h.send(*ts, user, v).unwrap();
        }
        h.advance_watermark(i64::MAX).unwrap();
        out.extend(main_out(&mut h));
        out
    };
    let whole = run(None);
    assert_eq!(whole.len(), 5, "{whole:#?}");
    for cut in 1..script.len() {
        assert_eq!(run(Some(cut)), whole, "snapshot before event {cut}");
    }
}

#[test]
fn a_restore_with_another_gap_is_refused_naming_both() {
    let mut h = sessions();
    h.send(1, "ann", &click("ann", "/", 1)).unwrap();
    let snapshot = h.snapshot().unwrap();
    let err = Harness::<Sessionize>::restore(json!({"gap_ms": 5_000}), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("gap_ms 10000") && err.contains("5000"),
        "{err}"
    );
}

#[test]
fn bad_records_go_to_dlq_and_bad_configs_are_refused() {
    let mut h = sessions();
    h.send(1, "ann", &json!({"view": {"page": "/"}})).unwrap();
    assert_eq!(h.take("dlq").len(), 1);
    assert_eq!(h.counter("bad_records"), 1);
    let err = |c: Value| Harness::<Sessionize>::new(c).err().unwrap().to_string();
    assert_eq!(err(json!({"gap_ms": 0})), "gap_ms must be positive, got 0");
    assert_eq!(
        err(json!({"max_pages": 5000})),
        "max_pages must be at most 1000, got 5000"
    );
}
