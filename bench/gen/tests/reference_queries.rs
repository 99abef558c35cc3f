//! Reference Nexmark queries on small hand-built inputs with hand-checked outputs, including
//! out-of-order and late records and the effect of batch boundaries on the watermark.

use serde_json::json;
use sluice_gen::nexmark::{
    Auction, Bid, Event, NexmarkConfig, NexmarkEvent, NexmarkGenerator, Person,
};
use sluice_gen::reference::{
    Batching, OutputRecord, Query, each_final_result, final_results, run_query,
};

fn bid(id: u64, auction: u64, bidder: u64, price: u64, t: i64) -> NexmarkEvent {
    NexmarkEvent {
        event_id: id,
        event: Event::Bid(Bid {
            auction,
            bidder,
            price,
            channel: "Google".into(),
            url: "https://www.nexmark.com/a/b/c/item.htm?query=1".into(),
            date_time: t,
            extra: "x".into(),
        }),
    }
}

fn person(id: u64, pid: u64, name: &str, t: i64) -> NexmarkEvent {
    NexmarkEvent {
        event_id: id,
        event: Event::Person(Person {
            id: pid,
            name: name.into(),
            date_time: t,
            ..Person::default()
        }),
    }
}

fn auction(id: u64, aid: u64, seller: u64, t: i64) -> NexmarkEvent {
    NexmarkEvent {
        event_id: id,
        event: Event::Auction(Auction {
            id: aid,
            seller,
            date_time: t,
            expires: t + 100,
            category: 10,
            ..Auction::default()
        }),
    }
}

fn out(key: u64, timestamp: i64, value: serde_json::Value) -> OutputRecord {
    OutputRecord {
        key: key.to_string(),
        timestamp,
        value,
    }
}

#[test]
fn stateless_queries_keep_input_key_and_timestamp() {
    let input = vec![
        bid(4, 246, 1001, 1000, 50),
        person(5, 1002, "Kate Smith", 60),
        bid(6, 1000, 1001, 2500, 70),
    ];
    let q0 = final_results(Query::Q0, &input);
    assert_eq!(
        q0,
        [
            out(
                4,
                50,
                json!({"auction": 246, "bidder": 1001, "price": 1000, "date_time": 50, "extra": "x"})
            ),
            out(
                6,
                70,
                json!({"auction": 1000, "bidder": 1001, "price": 2500, "date_time": 70, "extra": "x"})
            ),
        ]
    );
    let q1 = final_results(Query::Q1, &input);
    assert_eq!(q1[0].value["price"], json!(908.0));
    assert_eq!(q1[1].value["price"], json!(2500.0 * 0.908));
    assert_eq!(q1[1].key, "6");
    let q2 = final_results(Query::Q2, &input);
    assert_eq!(q2, [out(4, 50, json!({"auction": 246, "price": 1000}))]);
}

fn q5_input() -> Vec<NexmarkEvent> {
    vec![
        bid(1, 1, 100, 10, 10_500),
        bid(2, 2, 100, 10, 11_000),
        bid(3, 2, 100, 10, 12_500),
        bid(4, 1, 100, 10, 13_000),
        bid(5, 2, 100, 10, 13_500),
    ]
}

fn q5_row(auction: u64, num: u64, start: i64) -> OutputRecord {
    let end = start + 10_000;
    out(
        auction,
        end - 1,
        json!({"auction": auction, "num": num, "window_start": start, "window_end": end}),
    )
}

#[test]
fn q5_emits_every_auction_tied_for_the_most_bids_per_hop_window() {
    let expected = vec![
        q5_row(1, 1, 2_000), // [2000, 12000): one bid each, a tie
        q5_row(2, 1, 2_000),
        q5_row(2, 3, 4_000),
        q5_row(2, 3, 6_000),
        q5_row(2, 3, 8_000),
        q5_row(2, 3, 10_000),
        q5_row(2, 2, 12_000), // [12000, 22000): 12.5 s, 13 s (auction 1), 13.5 s
    ];
    assert_eq!(final_results(Query::Q5, &q5_input()), expected);
    // In order within 4 s: batching changes nothing.
    let per_record = run_query(Query::Q5, &q5_input(), &Batching::Fixed(1));
    assert_eq!(per_record.results, expected);
    assert!(per_record.late.is_empty());
}

#[test]
fn q5_record_behind_the_watermark_joins_only_its_open_windows() {
    let mut input = q5_input();
    input.push(bid(6, 9, 100, 10, 30_000)); // watermark → 26,000
    input.push(bid(7, 5, 100, 10, 17_000)); // windows end 18..26 s: all closed → late
    input.push(bid(8, 5, 100, 10, 18_500)); // only [18000, 28000) is still open
    let run = run_query(Query::Q5, &input, &Batching::Fixed(1));
    assert_eq!(run.late, [input[6].clone()]);
    let for_auction_5: Vec<&OutputRecord> = run.results.iter().filter(|r| r.key == "5").collect();
    assert_eq!(for_auction_5, [&q5_row(5, 1, 18_000)]);
    // Seen as one batch nothing is late and auction 5 counts in all its windows: it ties
    // auction 2 in [12 s, 22 s) and wins the three after; auction 2's three bids win before.
    let whole = final_results(Query::Q5, &input);
    let starts: Vec<i64> = whole
        .iter()
        .filter(|r| r.key == "5")
        .map(|r| r.value["window_start"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(starts, [12_000, 14_000, 16_000, 18_000]);
}

fn q7_row(b: &NexmarkEvent, start: i64) -> OutputRecord {
    let Event::Bid(x) = &b.event else {
        panic!("not a bid")
    };
    out(
        x.auction,
        start + 9_999,
        json!({"auction": x.auction, "bidder": x.bidder, "price": x.price, "date_time": x.date_time,
               "window_start": start, "window_end": start + 10_000}),
    )
}

#[test]
fn q7_emits_all_bids_at_the_window_maximum_and_windows_are_half_open() {
    let input = vec![
        bid(1, 7, 1, 5, 1_000),
        bid(2, 7, 2, 9, 2_000),
        bid(3, 3, 3, 9, 9_999),
        bid(4, 4, 4, 4, 10_000), // starts the next window
    ];
    assert_eq!(
        final_results(Query::Q7, &input),
        [
            q7_row(&input[2], 0),
            q7_row(&input[1], 0),
            q7_row(&input[3], 10_000)
        ]
    );
}

#[test]
fn q7_lateness_depends_on_where_batches_end() {
    let input = vec![
        bid(1, 1, 1, 5, 1_000),
        bid(2, 2, 2, 1, 15_000),
        bid(3, 3, 3, 100, 9_000),
    ];
    // Per record: 15 s moves the watermark to 11 s, window [0, 10 s) fires with the 5-cent
    // bid, and the 100-cent bid at 9 s arrives late.
    let per_record = run_query(Query::Q7, &input, &Batching::Fixed(1));
    assert_eq!(per_record.late, [input[2].clone()]);
    assert_eq!(
        per_record.results,
        [q7_row(&input[0], 0), q7_row(&input[1], 10_000)]
    );
    assert_eq!(
        run_query(Query::Q7, &input, &Batching::Sizes(vec![2, 1])),
        per_record
    );
    // If 15 s and 9 s share a batch, the watermark has not moved yet: 9 s counts.
    let same_batch = run_query(Query::Q7, &input, &Batching::Sizes(vec![1, 2]));
    assert!(same_batch.late.is_empty());
    assert_eq!(
        same_batch.results,
        [q7_row(&input[2], 0), q7_row(&input[1], 10_000)]
    );
    assert_eq!(same_batch.results, final_results(Query::Q7, &input));
}

#[test]
fn q8_joins_persons_and_sellers_of_the_same_tumbling_window_once() {
    let input = vec![
        person(1, 1001, "Kate Smith", 1_000),
        person(2, 1002, "Paul Jones", 2_000),
        person(3, 1003, "Luke White", 3_000),
        auction(4, 1000, 1003, 4_000),
        auction(5, 1001, 1001, 5_000),
        auction(6, 1002, 1003, 6_000),
        auction(7, 1003, 1004, 7_000), // seller never registered
        bid(8, 1000, 1001, 10, 8_000),
        auction(9, 1004, 1002, 12_000), // next window: no match for 1002
    ];
    let row = |id: u64, name: &str| {
        out(
            id,
            9_999,
            json!({"id": id, "name": name, "window_start": 0, "window_end": 10_000}),
        )
    };
    assert_eq!(
        final_results(Query::Q8, &input),
        [row(1001, "Kate Smith"), row(1003, "Luke White")]
    );

    // A person arriving after the window fired is late and matches nothing.
    let mut late_input = input.clone();
    late_input.push(bid(10, 1000, 1001, 10, 20_000)); // watermark → 16 s
    late_input.push(person(11, 1005, "Saul Noris", 9_000));
    late_input.push(auction(12, 1005, 1005, 9_500));
    let run = run_query(Query::Q8, &late_input, &Batching::Fixed(1));
    assert_eq!(run.late, late_input[10..].to_vec());
    assert_eq!(
        run.results,
        [row(1001, "Kate Smith"), row(1003, "Luke White")]
    );
}

fn q11_row(bidder: u64, count: u64, start: i64, end: i64) -> OutputRecord {
    out(
        bidder,
        end - 1,
        json!({"bidder": bidder, "bid_count": count, "window_start": start, "window_end": end}),
    )
}

#[test]
fn q11_sessions_merge_overlapping_gaps_and_bridge_out_of_order_bids() {
    let input = vec![
        bid(1, 1, 7, 1, 1_000),
        bid(2, 1, 8, 1, 2_000),
        bid(3, 1, 7, 1, 5_000),
        bid(4, 1, 8, 1, 12_000), // exactly the gap after 2 s: a new session
        bid(5, 1, 7, 1, 14_999), // within the gap after 5 s: same session
        bid(6, 1, 9, 1, 40_000),
        bid(7, 1, 9, 1, 55_000),
        bid(8, 1, 9, 1, 47_000), // overlaps both [40 s, 50 s) and [55 s, 65 s): bridges them
    ];
    let expected = [
        q11_row(8, 1, 2_000, 12_000),
        q11_row(8, 1, 12_000, 22_000),
        q11_row(7, 3, 1_000, 24_999),
        q11_row(9, 3, 40_000, 65_000),
    ];
    assert_eq!(final_results(Query::Q11, &input), expected);

    // Per record, 55 s moves the watermark to 51 s and closes [40 s, 50 s) before the
    // bridging bid arrives; that bid (47 s + gap > 51 s) is not late and joins 55 s.
    let run = run_query(Query::Q11, &input, &Batching::Fixed(1));
    assert!(run.late.is_empty());
    assert_eq!(
        run.results,
        [
            expected[0].clone(),
            expected[1].clone(),
            expected[2].clone(),
            q11_row(9, 1, 40_000, 50_000),
            q11_row(9, 2, 47_000, 65_000),
        ]
    );
    // A bid whose own session would already be closed is late.
    let mut late_input = input;
    late_input.push(bid(9, 1, 9, 1, 41_000)); // 41 s + 10 s = 51 s <= 51 s
    let run = run_query(Query::Q11, &late_input, &Batching::Fixed(1));
    assert_eq!(run.late, [late_input[8].clone()]);
}

#[test]
fn q11_bid_exactly_one_gap_later_starts_a_new_session_under_any_batching() {
    // 14 s moves the watermark to exactly 10 s, closing [0 s, 10 s) of bidder 1 just before
    // its bid at 10 s (4 s behind: within the bound) arrives.
    let input = vec![
        bid(1, 1, 1, 1, 0),
        bid(2, 1, 2, 1, 14_000),
        bid(3, 1, 1, 1, 10_000),
    ];
    let expected = [
        q11_row(1, 1, 0, 10_000),
        q11_row(1, 1, 10_000, 20_000),
        q11_row(2, 1, 14_000, 24_000),
    ];
    assert_eq!(final_results(Query::Q11, &input), expected);
    assert_eq!(
        run_query(Query::Q11, &input, &Batching::Fixed(1)).results,
        expected
    );
}

#[test]
fn generated_streams_within_four_seconds_give_the_same_results_for_any_batching() {
    let config = NexmarkConfig {
        num_events: 30_000,
        event_rate: 1_000, // 30 s of event time
        out_of_order_group_size: 50,
        seed: 21,
        ..NexmarkConfig::default()
    };
    let input: Vec<NexmarkEvent> = NexmarkGenerator::new(config, 0).expect("valid").collect();
    for q in Query::ALL {
        let expected = final_results(q, &input);
        assert!(
            !expected.is_empty() || q == Query::Q8,
            "{q} produced nothing"
        );
        let mut each = Vec::new();
        each_final_result(q, &input, |r| each.push(r));
        assert_eq!(each, expected, "{q}: one at a time");
        for batching in [
            Batching::Fixed(1),
            Batching::Fixed(977),
            Batching::Sizes(vec![5, 10_000, 3]),
        ] {
            let run = run_query(q, &input, &batching);
            assert!(run.late.is_empty(), "{q} {batching:?}");
            assert_eq!(run.results, expected, "{q} {batching:?}");
        }
        // Window outputs come in (window_end, window_start, key) order.
        let order: Vec<(i64, i64, u64)> = expected
            .iter()
            .filter_map(|r| {
                let v = &r.value;
                Some((
                    v["window_end"].as_i64()?,
                    v["window_start"].as_i64()?,
                    r.key.parse().ok()?,
                ))
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{q} out of order");
    }
    // q7 picks exactly one maximum per 10 s window here, three windows in 30 s.
    assert_eq!(final_results(Query::Q7, &input).len(), 3);
}

#[test]
fn query_names_parse_and_unknown_ones_are_rejected() {
    assert_eq!("q11".parse::<Query>(), Ok(Query::Q11));
    let err = "q4".parse::<Query>().expect_err("not bundled").to_string();
    assert!(err.contains("q4") && err.contains("q0, q1"), "{err}");
}
