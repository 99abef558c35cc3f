//! Nexmark generator: ids, types, timestamps and splits against hand-computed values
//! (NEXMARK.md §1.4–§1.5), and determinism of the bytes.

use std::collections::HashMap;

use sluice_gen::RecordBuf;
use sluice_gen::nexmark::{
    DEFAULT_BASE_TIME_MS, Event, NexmarkConfig, NexmarkEvent, NexmarkGenerator,
};

const BASE: i64 = DEFAULT_BASE_TIME_MS;

fn events(config: &NexmarkConfig, index: u32) -> Vec<NexmarkEvent> {
    NexmarkGenerator::new(config.clone(), index)
        .expect("valid config")
        .collect()
}

fn kind(e: &Event) -> &'static str {
    match e {
        Event::Person(_) => "person",
        Event::Auction(_) => "auction",
        Event::Bid(_) => "bid",
    }
}

#[test]
fn default_stream_starts_with_person_1000_then_three_auctions() {
    let config = NexmarkConfig {
        num_events: 120,
        ..NexmarkConfig::default()
    };
    let ev = events(&config, 0);
    assert_eq!(ev.len(), 120);
    for (n, e) in ev.iter().enumerate() {
        assert_eq!(e.event_id, n as u64);
        // 10,000 ev/s → 100 µs apart → ts = base + n/10 ms.
        assert_eq!(e.event.timestamp(), BASE + n as i64 / 10, "event {n}");
    }
    let kinds: Vec<&str> = ev[..6].iter().map(|e| kind(&e.event)).collect();
    assert_eq!(
        kinds,
        ["person", "auction", "auction", "auction", "bid", "bid"]
    );
    match (&ev[0].event, &ev[3].event, &ev[50].event, &ev[52].event) {
        (Event::Person(p0), Event::Auction(a2), Event::Person(p1), Event::Auction(a4)) => {
            assert_eq!((p0.id, a2.id, p1.id, a4.id), (1000, 1002, 1001, 1004));
        }
        other => panic!("unexpected layout {other:?}"),
    }
    // In block 0 the hot auction is 1000 and the hot bidder is 1001 (base 0 + 1 + 1000).
    let hot_bids = ev[4..50]
        .iter()
        .filter(|e| matches!(&e.event, Event::Bid(b) if b.auction == 1000 && b.bidder == 1001))
        .count();
    assert!(hot_bids > 5, "{hot_bids}");
}

#[test]
fn flink_split_gives_disjoint_id_blocks_on_parallel_timelines() {
    let config = NexmarkConfig {
        num_events: 1003,
        num_generators: 4,
        ..NexmarkConfig::flink()
    };
    let gens = NexmarkGenerator::all(config.clone()).expect("valid");
    // ⌊1003/4⌋ = 250 per generator, the last takes 253; ids start at 1 + i·250, and event
    // number 1 is the first, so generator 0 starts with id 2 (an auction, not a person).
    let firsts: Vec<(u64, u64)> = gens
        .iter()
        .map(|g| (g.split().first_event_id, g.len()))
        .collect();
    assert_eq!(firsts, [(1, 250), (251, 250), (501, 250), (751, 253)]);
    let g1 = &gens[1];
    assert_eq!(g1.event_id_at(0), 252);
    assert_eq!(g1.event_id_at(5), 257);
    // P = 4 at 10,000 ev/s: 400 µs per event per generator; number 6 → 2,400 µs → 2 ms.
    assert_eq!(g1.timestamp_at(0), BASE);
    assert_eq!(g1.timestamp_at(5), BASE + 2);
    assert_eq!(g1.timestamp_at(249), BASE + 100); // number 250 → 100,000 µs
    let first = events(&config, 0);
    assert_eq!(first[0].event_id, 2);
    assert!(matches!(first[0].event, Event::Auction(_)));
    // Every generator has the same timestamps.
    for g in &gens[1..] {
        for n in [0, 7, 100, 249] {
            assert_eq!(g.timestamp_at(n), gens[0].timestamp_at(n));
        }
    }
    // Flink's quirk adds 1000 twice to bidders: the hot bidder of block 0 is 2001.
    let bidders: Vec<u64> = first
        .iter()
        .filter_map(|e| match &e.event {
            Event::Bid(b) => Some(b.bidder),
            _ => None,
        })
        .collect();
    assert!(bidders.iter().all(|&b| b >= 2000));
    assert!(bidders.contains(&2001));
}

#[test]
fn out_of_order_groups_shuffle_ids_and_times_within_each_group() {
    let config = NexmarkConfig {
        num_events: 200,
        out_of_order_group_size: 50,
        ..NexmarkConfig::default()
    };
    let g = NexmarkGenerator::new(config.clone(), 0).expect("valid");
    // Position 1 → 953 mod 50 = 3 → event id 3, timestamp of number 3.
    assert_eq!(g.event_id_at(1), 3);
    assert_eq!(g.event_id_at(2), 6);
    assert_eq!(g.event_id_at(17), 1);
    assert_eq!(g.timestamp_at(1), BASE);
    assert_eq!(g.event_id_at(34), 2); // 34·953 ≡ 2 (mod 50)
    assert_eq!(g.timestamp_at(34), BASE);
    assert_eq!(g.event_id_at(51), 53);
    assert_eq!(g.timestamp_at(51), BASE + 5);
    assert_eq!(g.watermark_hint_at(51), BASE + 5); // ts(50)
    let ev = events(&config, 0);
    let mut ids: Vec<u64> = ev.iter().map(|e| e.event_id).collect();
    assert_ne!(ids, (0..200).collect::<Vec<_>>());
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    // The shuffled stream holds exactly the in-order stream's events.
    let in_order = NexmarkConfig {
        out_of_order_group_size: 1,
        ..config
    };
    let mut a = ev.clone();
    a.sort_by_key(|e| e.event_id);
    assert_eq!(a, events(&in_order, 0));
}

#[test]
fn same_seed_gives_same_bytes_and_other_seeds_differ() {
    let config = NexmarkConfig {
        num_events: 5_000,
        seed: 11,
        ..NexmarkConfig::default()
    };
    let bytes = |config: &NexmarkConfig| {
        let mut g = NexmarkGenerator::new(config.clone(), 0).expect("valid");
        let (mut rec, mut all) = (RecordBuf::default(), Vec::new());
        while g.next_record(&mut rec).expect("encodes") {
            all.extend_from_slice(&rec.key);
            all.extend_from_slice(&rec.timestamp.to_le_bytes());
            all.extend_from_slice(&rec.value);
        }
        all
    };
    let a = bytes(&config);
    assert_eq!(a, bytes(&config));
    assert_ne!(a, bytes(&NexmarkConfig { seed: 12, ..config }));
}

#[test]
fn seeking_replays_exactly_the_same_tail() {
    let config = NexmarkConfig {
        num_events: 3_000,
        out_of_order_group_size: 7,
        ..NexmarkConfig::default()
    };
    let all = events(&config, 0);
    let mut g = NexmarkGenerator::new(config, 0).expect("valid");
    g.seek(1_234);
    let tail: Vec<NexmarkEvent> = g.by_ref().collect();
    assert_eq!(tail, all[1_234..]);
    g.seek(u64::MAX);
    assert_eq!(g.position(), 3_000);
    assert!(g.next().is_none());
}

/// The event without its time fields, which depend on the timeline it was generated on.
fn timeless(e: &NexmarkEvent) -> (u64, Event) {
    let mut ev = e.event.clone();
    match &mut ev {
        Event::Person(p) => p.date_time = 0,
        Event::Auction(a) => (a.date_time, a.expires) = (0, 0),
        Event::Bid(b) => b.date_time = 0,
    }
    (e.event_id, ev)
}

#[test]
fn splitting_into_p_generators_yields_the_same_events_as_one() {
    let one = NexmarkConfig {
        num_events: 2_001,
        seed: 5,
        ..NexmarkConfig::default()
    };
    let single: Vec<(u64, Event)> = events(&one, 0).iter().map(timeless).collect();
    for p in [2u32, 3, 8] {
        let split = NexmarkConfig {
            num_generators: p,
            ..one.clone()
        };
        let mut union: Vec<(u64, Event)> = (0..p)
            .flat_map(|i| events(&split, i))
            .map(|e| timeless(&e))
            .collect();
        union.sort_by_key(|(id, _)| *id);
        assert_eq!(union, single, "P = {p}");
    }
    // Generating the P generators in one thread or in P threads gives identical streams.
    let split = NexmarkConfig {
        num_generators: 3,
        ..one
    };
    let threaded: Vec<Vec<NexmarkEvent>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                s.spawn({
                    let split = split.clone();
                    move || events(&split, i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator thread"))
            .collect()
    });
    for (i, stream) in threaded.iter().enumerate() {
        assert_eq!(*stream, events(&split, i as u32));
    }
}

#[test]
fn bad_configs_are_rejected_with_the_field_named() {
    let cases = [
        (
            NexmarkConfig {
                event_rate: 0,
                ..NexmarkConfig::default()
            },
            "event_rate",
        ),
        (
            NexmarkConfig {
                num_generators: 0,
                ..NexmarkConfig::default()
            },
            "num_generators",
        ),
        (
            NexmarkConfig {
                out_of_order_group_size: 0,
                ..NexmarkConfig::default()
            },
            "out_of_order_group_size",
        ),
        (
            NexmarkConfig {
                hot_bidders_ratio: 0,
                ..NexmarkConfig::default()
            },
            "hot_bidders_ratio",
        ),
        (
            NexmarkConfig {
                avg_bid_bytes: 1 << 20,
                ..NexmarkConfig::default()
            },
            "avg_bid_bytes",
        ),
    ];
    for (config, field) in cases {
        let err = NexmarkGenerator::new(config, 0)
            .expect_err("invalid")
            .to_string();
        assert!(err.contains(field), "{err}");
    }
    let err = NexmarkGenerator::new(NexmarkConfig::default(), 1)
        .expect_err("index out of range")
        .to_string();
    assert!(err.contains("index"), "{err}");
}

#[test]
fn unbounded_config_uses_flinks_cap() {
    let g = NexmarkGenerator::new(NexmarkConfig::default(), 0).expect("valid");
    assert_eq!(g.len(), i64::MAX as u64 / (50 * 500));
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for e in g.take(100) {
        *counts.entry(kind(&e.event)).or_default() += 1;
    }
    assert_eq!(counts["person"], 2);
    assert_eq!(counts["auction"], 6);
    assert_eq!(counts["bid"], 92);
}
