//! The Nexmark queries against hand-checked outputs (docs/events.md), run
//! natively through the SDK harness with the jobs' watermark: largest event
//! time seen minus 4 s.

use nexmark::Nexmark;
use serde_json::{Value, json};
use sluice_sdk::testing::{Harness, Input};

const OUT_OF_ORDERNESS_MS: i64 = 4_000;

fn query(q: &str) -> Harness<Nexmark> {
    Harness::<Nexmark>::new(json!({"query": q}))
        .unwrap()
        .with_out_of_orderness(OUT_OF_ORDERNESS_MS)
}

fn bid(auction: u64, bidder: u64, price: u64, ts: i64) -> Value {
    json!({"bid": {"auction": auction, "bidder": bidder, "price": price, "channel": "Apple",
                   "url": "https://www.nexmark.com/x/y/z/item.htm?query=1", "date_time": ts,
                   "extra": "xyz"}})
}

fn person(id: u64, name: &str, ts: i64) -> Value {
    json!({"person": {"id": id, "name": name, "email_address": "a@b.com", "credit_card": "1234 5678 9012 3456",
                      "city": "Bend", "state": "OR", "date_time": ts, "extra": ""}})
}

fn auction(id: u64, seller: u64, ts: i64) -> Value {
    json!({"auction": {"id": id, "item_name": "lamp", "description": "old", "initial_bid": 100, "reserve": 150,
                       "date_time": ts, "expires": ts + 1_000, "seller": seller, "category": 10, "extra": ""}})
}

/// Sends each event as its own batch, keyed by its position (like event ids).
fn send_all(h: &mut Harness<Nexmark>, events: &[(i64, Value)]) {
    for (i, (ts, value)) in events.iter().enumerate() {
        h.send(*ts, i.to_string(), value).unwrap();
    }
}

/// `(timestamp, key, value)` of everything emitted to `output`.
fn take(h: &mut Harness<Nexmark>, output: &str) -> Vec<(i64, String, Value)> {
    h.take(output)
        .into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

#[test]
fn q0_passes_bids_through_and_skips_other_events() {
    let mut h = query("q0");
    send_all(
        &mut h,
        &[
            (1_000, bid(1, 2, 300, 1_000)),
            (1_500, person(1, "Kate", 1_500)),
        ],
    );
    assert_eq!(
        take(&mut h, "main"),
        vec![(
            1_000,
            "0".into(),
            json!({"auction": 1, "bidder": 2, "price": 300, "date_time": 1_000, "extra": "xyz"})
        )]
    );
}

#[test]
fn q0_and_q1_refuse_a_bid_lacking_a_field_or_with_a_bad_price() {
    for q in ["q0", "q1"] {
        let mut h = query(q);
        let mut short = bid(1, 2, 300, 1_000);
        short["bid"].as_object_mut().unwrap().remove("extra");
        let err = h.send(1_000, "k", &short).unwrap_err().to_string();
        assert!(err.contains("missing field `extra`"), "{q}: {err}");
        let mut priced = bid(1, 2, 300, 1_000);
        priced["bid"]["price"] = json!("cheap");
        assert!(h.send(1_000, "k", &priced).is_err(), "{q}: a text price");
        assert!(take(&mut h, "main").is_empty(), "{q}: nothing emitted");
        let two = json!({"bid": bid(1, 2, 3, 4)["bid"], "person": {}});
        assert!(h.send(1_000, "k", &two).is_err(), "{q}: two kinds at once");
    }
}

#[test]
fn q1_converts_prices_to_euros() {
    let mut h = query("q1");
    send_all(&mut h, &[(1_000, bid(1, 2, 1_000, 1_000))]);
    let out = take(&mut h, "main");
    assert_eq!(
        out[0].2,
        json!({"auction": 1, "bidder": 2, "price": 908.0, "date_time": 1_000, "extra": "xyz"})
    );
}

#[test]
fn q2_keeps_bids_on_every_123rd_auction() {
    let mut h = query("q2");
    send_all(
        &mut h,
        &[
            (1, bid(123, 1, 5, 1)),
            (2, bid(124, 1, 6, 2)),
            (3, bid(0, 1, 7, 3)),
            (4, bid(246_000, 1, 8, 4)),
        ],
    );
    let values: Vec<Value> = take(&mut h, "main")
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(
        values,
        vec![
            json!({"auction": 123, "price": 5}),
            json!({"auction": 0, "price": 7}),
            json!({"auction": 246_000, "price": 8})
        ]
    );
}

#[test]
fn q5_reports_the_most_bid_auctions_of_every_sliding_window() {
    let mut h = query("q5");
    // 3000 arrives after 3500: out of order, but before its windows close.
    send_all(
        &mut h,
        &[
            (1_000, bid(1, 9, 1, 1_000)),
            (3_500, bid(2, 9, 1, 3_500)),
            (3_000, bid(1, 9, 1, 3_000)),
            (5_000, bid(2, 9, 1, 5_000)),
            (9_000, bid(3, 9, 1, 9_000)),
        ],
    );
    h.advance_watermark(100_000).unwrap();
    let got: Vec<(i64, String, Value)> = take(&mut h, "main");
    let hot = |auction: u64, num: u64, start: i64| {
        (
            start + 9_999,
            auction.to_string(),
            json!({"auction": auction, "num": num, "window_start": start, "window_end": start + 10_000}),
        )
    };
    assert_eq!(
        got,
        vec![
            hot(1, 1, -8_000),
            hot(1, 2, -6_000),
            hot(1, 2, -4_000),
            hot(2, 2, -4_000),
            hot(1, 2, -2_000),
            hot(2, 2, -2_000),
            hot(1, 2, 0),
            hot(2, 2, 0),
            hot(2, 2, 2_000),
            hot(2, 1, 4_000),
            hot(3, 1, 4_000),
            hot(3, 1, 6_000),
            hot(3, 1, 8_000),
        ]
    );
    // Every window of this bid has closed: it goes to `late` unchanged.
    h.send(1_500, "late-one", &bid(9, 9, 1, 1_500)).unwrap();
    let late = h.take("late");
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].timestamp, late[0].key_str(), late[0].json()),
        (1_500, "late-one".into(), bid(9, 9, 1, 1_500))
    );
    assert_eq!(h.counter("late_events"), 1);
    assert!(h.take("main").is_empty());
}

#[test]
fn q7_reports_every_bid_at_the_highest_price_of_each_tumbling_window() {
    let mut h = query("q7");
    send_all(
        &mut h,
        &[
            (1_000, bid(1, 11, 50, 1_000)),
            (4_000, bid(3, 13, 90, 4_000)),
            (2_000, bid(2, 12, 90, 2_000)),
            (9_999, bid(4, 14, 10, 9_999)),
            (10_000, bid(5, 15, 70, 10_000)),
            (15_000, bid(6, 16, 70, 15_000)),
            (12_000, bid(7, 17, 100, 12_000)),
        ],
    );
    let top = |auction: u64, bidder: u64, price: u64, ts: i64, start: i64| {
        (
            start + 9_999,
            auction.to_string(),
            json!({"auction": auction, "bidder": bidder, "price": price, "date_time": ts, "window_start": start, "window_end": start + 10_000}),
        )
    };
    // The watermark reached 11 000 at the bid of 15 000: [0, 10 000) closed.
    assert_eq!(
        take(&mut h, "main"),
        vec![top(2, 12, 90, 2_000, 0), top(3, 13, 90, 4_000, 0)]
    );
    h.send(26_000, "x", &bid(8, 18, 1, 26_000)).unwrap();
    assert_eq!(take(&mut h, "main"), vec![top(7, 17, 100, 12_000, 10_000)]);
    h.send(5_000, "late", &bid(9, 19, 1_000, 5_000)).unwrap();
    assert_eq!(h.take("late").len(), 1);
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(take(&mut h, "main"), vec![top(8, 18, 1, 26_000, 20_000)]);
}

#[test]
fn q8_reports_persons_who_opened_an_auction_in_their_registration_window() {
    let mut h = query("q8");
    send_all(
        &mut h,
        &[
            (1_000, person(100, "Kate Smith", 1_000)),
            (2_000, auction(1, 100, 2_000)),
            (2_500, auction(2, 100, 2_500)),
            (3_000, person(101, "Paul Jones", 3_000)),
            (11_000, auction(3, 101, 11_000)),
            (12_000, person(102, "Luke White", 12_000)),
            (12_300, bid(3, 102, 5, 12_300)),
            (12_500, auction(4, 102, 12_500)),
            // Out of order: the watermark is 8 500, so [0, 10 000) is still open.
            (9_000, auction(5, 101, 9_000)),
        ],
    );
    h.advance_watermark(30_000).unwrap();
    let user = |id: u64, name: &str, start: i64| {
        (
            start + 9_999,
            id.to_string(),
            json!({"id": id, "name": name, "window_start": start, "window_end": start + 10_000}),
        )
    };
    assert_eq!(
        take(&mut h, "main"),
        vec![
            user(100, "Kate Smith", 0),
            user(101, "Paul Jones", 0),
            user(102, "Luke White", 10_000)
        ]
    );
    h.send(25_000, "p", &person(103, "Late Person", 25_000))
        .unwrap();
    assert_eq!(h.counter("late_events"), 1);
}

#[test]
fn q11_counts_bids_per_bidder_session_and_merges_sessions_a_late_bid_bridges() {
    let mut h = query("q11");
    send_all(
        &mut h,
        &[
            (1_000, bid(1, 1, 1, 1_000)),
            (2_000, bid(1, 2, 1, 2_000)),
            (14_000, bid(1, 1, 1, 14_000)),
            // Bridges [1 000, 11 000) and [14 000, 24 000) of bidder 1.
            (5_000, bid(1, 1, 1, 5_000)),
        ],
    );
    assert!(h.take("main").is_empty());
    h.send(30_000, "x", &bid(1, 1, 1, 30_000)).unwrap();
    let session = |bidder: u64, count: u64, start: i64, end: i64| {
        (
            end - 1,
            bidder.to_string(),
            json!({"bidder": bidder, "bid_count": count, "window_start": start, "window_end": end}),
        )
    };
    assert_eq!(
        take(&mut h, "main"),
        vec![session(2, 1, 2_000, 12_000), session(1, 3, 1_000, 24_000)]
    );
    h.send(3_000, "late", &bid(1, 2, 1, 3_000)).unwrap();
    assert_eq!(h.take("late").len(), 1);
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(take(&mut h, "main"), vec![session(1, 1, 30_000, 40_000)]);
}

#[test]
fn an_unknown_query_is_refused_with_the_choices() {
    let err = Harness::<Nexmark>::new(json!({"query": "q3"}))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown variant `q3`") && err.contains("q11"),
        "{err}"
    );
}

#[test]
fn a_malformed_value_fails_the_batch_naming_the_record() {
    let mut h = query("q7");
    let err = h.send_raw(1, "k", b"\x92\x01").unwrap_err().to_string();
    assert!(
        err.starts_with("record at offset 0 of partition 0"),
        "{err}"
    );
}

/// A mixed, out-of-order stream with late events, persons and auctions.
fn script() -> Vec<Input> {
    let mut events = Vec::new();
    for i in 0..400u64 {
        let ts = (i as i64) * 97 + if i % 7 == 0 { -3_000 } else { 0 };
        let ts = if i % 53 == 0 { ts - 20_000 } else { ts }; // late
        let value = match i % 10 {
            0 => person(1_000 + i / 10, "Sarah Walton", ts),
            1 => auction(i, 1_000 + (i / 10) % 7, ts),
            _ => bid(i % 123 * 123 + i % 5, i % 11, i * 37 % 1_000, ts),
        };
        events.push(Input::new(ts, i.to_string(), &value).partition((i % 3) as u32));
    }
    events
}

fn run(h: &mut Harness<Nexmark>, events: &[Input]) -> Vec<(String, i64, String, Value)> {
    for chunk in events.chunks(25) {
        h.send_batch(chunk.iter().cloned()).unwrap();
    }
    h.advance_watermark(i64::MAX).unwrap();
    let mut out = Vec::new();
    for name in ["main", "late"] {
        out.extend(
            take(h, name)
                .into_iter()
                .map(|(t, k, v)| (name.to_string(), t, k, v)),
        );
    }
    out
}

#[test]
fn every_query_continues_identically_after_snapshot_and_restore() {
    let events = script();
    let (first, second) = events.split_at(200);
    for q in ["q0", "q1", "q2", "q5", "q7", "q8", "q11"] {
        let mut straight = query(q);
        let mut head = run_partial(&mut straight, first);
        head.extend(run(&mut straight, second));

        let mut before = query(q);
        let mut resumed_out = run_partial(&mut before, first);
        let snapshot = before.snapshot().unwrap();
        let mut resumed = Harness::<Nexmark>::restore(json!({"query": q}), &snapshot)
            .unwrap()
            .with_out_of_orderness(OUT_OF_ORDERNESS_MS);
        resumed_out.extend(run(&mut resumed, second));
        assert_eq!(head, resumed_out, "{q}");
        assert_eq!(
            straight.snapshot().unwrap(),
            resumed.snapshot().unwrap(),
            "{q}"
        );
        if ["q5", "q7", "q8", "q11"].contains(&q) {
            assert!(
                head.iter().any(|(name, ..)| name == "main"),
                "{q} produced results"
            );
            assert!(
                head.iter().any(|(name, ..)| name == "late"),
                "{q} saw late events"
            );
        }
    }
}

/// Sends `events` without flushing the windows, returning what was emitted.
fn run_partial(h: &mut Harness<Nexmark>, events: &[Input]) -> Vec<(String, i64, String, Value)> {
    for chunk in events.chunks(25) {
        h.send_batch(chunk.iter().cloned()).unwrap();
    }
    let mut out = Vec::new();
    for name in ["main", "late"] {
        out.extend(
            take(h, name)
                .into_iter()
                .map(|(t, k, v)| (name.to_string(), t, k, v)),
        );
    }
    out
}

#[test]
fn restoring_a_snapshot_under_another_query_is_refused() {
    let mut h = query("q5");
    let snapshot = h.snapshot().unwrap();
    let err = Harness::<Nexmark>::restore(json!({"query": "q7"}), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Q5") && err.contains("Q7"), "{err}");
}

/// The events of [`script`] with their partitions, less the ones later than
/// the out-of-orderness, so that every instance of a split run sees the same
/// events on time.
fn on_time_script() -> Vec<(u32, Input)> {
    script()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 53 != 0)
        .map(|(i, input)| ((i % 3) as u32, input))
        .collect()
}

/// Runs `q` as a job would in two phases: a partial instance per input
/// partition, its `main` records routed by key to one of `finals` final
/// instances, which see every partial result before their watermark passes
/// the windows. Returns the finals' `main` records, sorted.
fn two_phases(q: &str, events: &[(u32, Input)], finals: usize) -> Vec<(i64, String, Value)> {
    let partitions = events.iter().map(|(p, _)| p + 1).max().unwrap_or(1);
    let mut exchanged = Vec::new();
    for p in 0..partitions {
        let mut partial = Harness::<Nexmark>::new(json!({"query": q, "phase": "partial"}))
            .unwrap()
            .with_out_of_orderness(OUT_OF_ORDERNESS_MS);
        let mine: Vec<Input> = events
            .iter()
            .filter(|(part, _)| *part == p)
            .map(|(_, e)| e.clone().partition(p))
            .collect();
        for chunk in mine.chunks(25) {
            partial.send_batch(chunk.iter().cloned()).unwrap();
        }
        partial.advance_watermark(i64::MAX).unwrap();
        let late = take(&mut partial, "late");
        assert!(late.is_empty(), "{q}: partial {p} saw late events");
        exchanged.extend(partial.take("main"));
    }
    let mut out = Vec::new();
    for f in 0..finals {
        let mut last = Harness::<Nexmark>::new(json!({"query": q, "phase": "final"})).unwrap();
        let mine = exchanged.iter().filter(|o| {
            let key: u64 = o.key_str().parse().unwrap();
            key as usize % finals == f
        });
        for o in mine {
            last.send_raw(o.timestamp, &o.key, &o.value).unwrap();
        }
        last.advance_watermark(i64::MAX).unwrap();
        assert!(
            take(&mut last, "late").is_empty(),
            "{q}: final {f} saw late records"
        );
        out.extend(take(&mut last, "main"));
    }
    sorted(out)
}

/// The single-phase query's `main` records over `events`, sorted.
fn one_phase(q: &str, events: &[(u32, Input)]) -> Vec<(i64, String, Value)> {
    let mut h = query(q);
    let inputs: Vec<Input> = events.iter().map(|(_, e)| e.clone()).collect();
    let out = run(&mut h, &inputs)
        .into_iter()
        .filter(|(name, ..)| name == "main")
        .map(|(_, t, k, v)| (t, k, v))
        .collect();
    sorted(out)
}

fn sorted(mut out: Vec<(i64, String, Value)>) -> Vec<(i64, String, Value)> {
    out.sort_by_cached_key(|(t, k, v)| (*t, k.clone(), v.to_string()));
    out
}

#[test]
fn every_windowed_query_in_two_phases_matches_the_single_phase() {
    let events = on_time_script();
    for q in ["q5", "q7", "q8", "q11"] {
        let expected = one_phase(q, &events);
        assert!(!expected.is_empty(), "{q} produced results");
        for finals in [1, 2] {
            assert_eq!(
                two_phases(q, &events, finals),
                expected,
                "{q}, {finals} finals"
            );
        }
    }
}

#[test]
fn q5_partial_counts_of_a_busy_window_cross_in_chunks() {
    // More auctions in one window than one partial record carries, with the
    // most-bid auction counted partly in each partition.
    let auctions = nexmark::COUNTS_PER_RECORD as u64 * 2 + 100;
    let mut events = Vec::new();
    for a in 0..auctions {
        let ts = 1_000 + (a % 500) as i64;
        events.push((
            (a % 2) as u32,
            Input::new(ts, a.to_string(), &bid(a, 1, 10, ts)),
        ));
    }
    for i in 0..6u32 {
        let ts = 1_600 + i as i64;
        events.push((i % 2, Input::new(ts, "x", &bid(77, 2, 10, ts))));
    }
    let expected = one_phase("q5", &events);
    let nums: Vec<u64> = expected
        .iter()
        .map(|(_, _, v)| v["num"].as_u64().unwrap())
        .collect();
    assert_eq!(
        nums,
        vec![7; 5],
        "auction 77 leads the five windows holding its bids"
    );
    let mut partial = Harness::<Nexmark>::new(json!({"query": "q5", "phase": "partial"})).unwrap();
    let mine: Vec<Input> = events
        .iter()
        .filter(|(p, _)| *p == 0)
        .map(|(_, e)| e.clone())
        .collect();
    partial.send_batch(mine).unwrap();
    partial.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        partial.take("main").len(),
        5 * 2,
        "two chunks per window from partition 0"
    );
    assert_eq!(two_phases("q5", &events, 2), expected);
}
