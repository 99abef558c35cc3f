//! Nexmark field shapes and distributions on large samples (NEXMARK.md §1.5–§1.7), and the
//! wire encodings of docs/events.md. Bounds are generous; a wrong formula still breaks them.

use serde_json::{Value, json};
use sluice_gen::RecordBuf;
use sluice_gen::encode::{to_msgpack, write_ndjson};
use sluice_gen::nexmark::sequence::{
    hot_auction, hot_bidder, hot_seller, last_auction, last_person,
};
use sluice_gen::nexmark::{
    CITIES, Event, FIRST_NAMES, HOT_CHANNELS, LAST_NAMES, NexmarkConfig, NexmarkEvent,
    NexmarkGenerator, STATES_LOWER, STATES_UPPER, write_event_msgpack,
};

fn sample(config: NexmarkConfig, n: u64) -> Vec<NexmarkEvent> {
    NexmarkGenerator::new(
        NexmarkConfig {
            num_events: n,
            ..config
        },
        0,
    )
    .expect("valid")
    .collect()
}

#[test]
fn fast_msgpack_encoder_matches_rmp_serde_for_every_kind() {
    for e in sample(NexmarkConfig::default(), 60) {
        let mut fast = Vec::new();
        write_event_msgpack(e.event.as_ref(), &mut fast).expect("encodes");
        assert_eq!(
            fast,
            to_msgpack(&e.event).expect("encodes"),
            "event {}",
            e.event_id
        );
        let back: Event = rmp_serde::from_slice(&fast).expect("decodes");
        assert_eq!(back, e.event);
    }
}

#[test]
fn generated_bid_decodes_to_the_documented_map() {
    let mut g = NexmarkGenerator::new(NexmarkConfig::default(), 0).expect("valid");
    g.seek(4); // event 4 is the first bid
    let mut rec = RecordBuf::default();
    assert!(g.next_record(&mut rec).expect("encodes"));
    assert_eq!(rec.key, b"4");
    let value: Value = rmp_serde::from_slice(&rec.value).expect("decodes");
    let bid = &value["bid"];
    let mut fields: Vec<&str> = bid
        .as_object()
        .expect("map")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "auction",
            "bidder",
            "channel",
            "date_time",
            "extra",
            "price",
            "url"
        ]
    );
    assert_eq!(value.as_object().expect("map").len(), 1);
    assert_eq!(bid["date_time"], json!(rec.timestamp));
    assert!(bid["auction"].as_u64().expect("auction is an integer") >= 1000);
    assert!(
        bid["url"]
            .as_str()
            .expect("url")
            .starts_with("https://www.nexmark.com/")
    );
}

#[test]
fn ndjson_lines_carry_key_timestamp_and_tagged_value() {
    let mut g = NexmarkGenerator::new(
        NexmarkConfig {
            num_events: 5,
            ..NexmarkConfig::default()
        },
        0,
    )
    .expect("valid");
    let mut out = Vec::new();
    while g.next_ndjson(&mut out).expect("encodes") {}
    let lines: Vec<Value> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["key"], json!("0"));
    assert_eq!(lines[0]["timestamp"], json!(1_436_918_400_000i64));
    assert_eq!(lines[0]["value"]["person"]["id"], json!(1000));
    assert_eq!(lines[1]["value"]["auction"]["id"], json!(1000));
    // The generic encoder writes the same line.
    let events = sample(NexmarkConfig::default(), 5);
    let (mut scratch, mut generic) = (Vec::new(), Vec::new());
    for e in &events {
        write_ndjson(e, &mut scratch, &mut generic).expect("encodes");
    }
    assert_eq!(generic, out);
}

struct Shares {
    persons: Vec<sluice_gen::nexmark::Person>,
    auctions: Vec<(u64, sluice_gen::nexmark::Auction)>,
    bids: Vec<(u64, sluice_gen::nexmark::Bid)>,
}

fn split_kinds(events: Vec<NexmarkEvent>) -> Shares {
    let mut s = Shares {
        persons: vec![],
        auctions: vec![],
        bids: vec![],
    };
    for e in events {
        match e.event {
            Event::Person(p) => s.persons.push(p),
            Event::Auction(a) => s.auctions.push((e.event_id, a)),
            Event::Bid(b) => s.bids.push((e.event_id, b)),
        }
    }
    s
}

fn frac(n: usize, of: usize) -> f64 {
    n as f64 / of as f64
}

#[test]
fn proportions_hot_keys_and_prices_are_as_specified() {
    let s = split_kinds(sample(
        NexmarkConfig {
            seed: 3,
            ..NexmarkConfig::default()
        },
        250_000,
    ));
    assert_eq!(
        (s.persons.len(), s.auctions.len(), s.bids.len()),
        (5_000, 15_000, 230_000)
    );

    let bids = s.bids.len();
    let hot_a = s
        .bids
        .iter()
        .filter(|(id, b)| b.auction == 1000 + hot_auction(*id))
        .count();
    // 1/2 hot, plus random draws that land on the hot auction (~1/110 of the rest).
    assert!(
        (0.495..0.53).contains(&frac(hot_a, bids)),
        "hot auction share {}",
        frac(hot_a, bids)
    );
    let hot_b = s
        .bids
        .iter()
        .filter(|(id, b)| b.bidder == 1000 + hot_bidder(*id))
        .count();
    assert!(
        (0.745..0.77).contains(&frac(hot_b, bids)),
        "hot bidder share {}",
        frac(hot_b, bids)
    );
    let hot_s = s
        .auctions
        .iter()
        .filter(|(id, a)| a.seller == 1000 + hot_seller(*id))
        .count();
    assert!(
        (0.735..0.78).contains(&frac(hot_s, s.auctions.len())),
        "hot seller share"
    );

    // Random auctions and bidders stay within the in-flight / active windows plus the lead.
    for (id, b) in &s.bids {
        let hi = last_auction(*id) as u64 + 1000;
        assert!(
            b.auction + 100 >= hi && b.auction <= hi + 10,
            "auction {} for event {id}",
            b.auction
        );
        let people = last_person(*id) + 1;
        assert!(
            b.bidder >= 1000 + people.saturating_sub(1000) && b.bidder < 1000 + people + 10,
            "bidder {} for event {id}",
            b.bidder
        );
    }

    let prices: Vec<u64> = s.bids.iter().map(|(_, b)| b.price).collect();
    assert!(prices.iter().all(|&p| (100..=100_000_000).contains(&p)));
    let low = prices.iter().filter(|&&p| p < 10_000).count();
    let high = prices.iter().filter(|&&p| p >= 1_000_000).count();
    assert!(
        (frac(low, bids) - 1.0 / 3.0).abs() < 0.01,
        "low third {}",
        frac(low, bids)
    );
    assert!(
        (frac(high, bids) - 1.0 / 3.0).abs() < 0.01,
        "high third {}",
        frac(high, bids)
    );
    let mut sorted = prices.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    assert!((80_000..125_000).contains(&median), "median {median}");

    let hot_channel = s
        .bids
        .iter()
        .filter(|(_, b)| HOT_CHANNELS.contains(&b.channel.as_str()))
        .count();
    assert!((frac(hot_channel, bids) - 0.5).abs() < 0.01);
    let google = s.bids.iter().filter(|(_, b)| b.channel == "Google").count();
    assert!((frac(google, bids) - 0.125).abs() < 0.007);
    let cold: Vec<_> = s
        .bids
        .iter()
        .filter(|(_, b)| b.channel.starts_with("channel-"))
        .collect();
    let with_id = cold
        .iter()
        .filter(|(_, b)| b.url.contains("&channel_id="))
        .count();
    assert!((frac(with_id, cold.len()) - 0.9).abs() < 0.02);
    assert!(
        s.bids
            .iter()
            .filter(|(_, b)| HOT_CHANNELS.contains(&b.channel.as_str()))
            .all(|(_, b)| !b.url.contains("channel_id"))
    );

    let extra: Vec<usize> = s.bids.iter().map(|(_, b)| b.extra.len()).collect();
    assert_eq!(extra.iter().min(), Some(&54));
    assert_eq!(extra.iter().max(), Some(&81));
    let mean = extra.iter().sum::<usize>() as f64 / extra.len() as f64;
    assert!((mean - 67.5).abs() < 0.3, "bid extra mean {mean}");
}

#[test]
fn persons_and_auctions_have_well_formed_fields() {
    let s = split_kinds(sample(
        NexmarkConfig {
            seed: 4,
            ..NexmarkConfig::default()
        },
        100_000,
    ));
    for p in &s.persons {
        let (first, last) = p.name.split_once(' ').expect("First Last");
        assert!(
            FIRST_NAMES.contains(&first) && LAST_NAMES.contains(&last),
            "{}",
            p.name
        );
        let (local, domain) = p.email_address.split_once('@').expect("email has @");
        assert!(
            local.len() <= 6 && domain.ends_with(".com") && domain.len() <= 8,
            "{}",
            p.email_address
        );
        let groups: Vec<&str> = p.credit_card.split(' ').collect();
        assert_eq!(groups.len(), 4);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(CITIES.contains(&p.city.as_str()));
        assert!(STATES_UPPER.contains(&p.state.as_str()));
        // Size near the 200-byte average: the nominal size plus padding.
        let nominal = 8
            + p.name.len()
            + p.email_address.len()
            + p.credit_card.len()
            + p.city.len()
            + p.state.len();
        let total = nominal + p.extra.len();
        assert!((150..=250).contains(&total), "person size {total}");
    }
    let ids: Vec<u64> = s.persons.iter().map(|p| p.id).collect();
    assert_eq!(
        ids,
        (1000..1000 + s.persons.len() as u64).collect::<Vec<_>>()
    );
    let states_seen = s
        .persons
        .iter()
        .filter(|p| ["OR", "ID", "CA"].contains(&p.state.as_str()))
        .count();
    assert!((frac(states_seen, s.persons.len()) - 0.5).abs() < 0.05);

    let mut cat = [0usize; 5];
    for (_, a) in &s.auctions {
        cat[(a.category - 10) as usize] += 1;
        assert!(a.reserve > a.initial_bid);
        assert!(a.item_name.len() <= 19 && a.description.len() <= 99);
        assert!(a.expires > a.date_time);
    }
    assert!(
        cat.iter()
            .all(|&c| (frac(c, s.auctions.len()) - 0.2).abs() < 0.02),
        "{cat:?}"
    );
    let ids: Vec<u64> = s.auctions.iter().map(|(_, a)| a.id).collect();
    assert_eq!(
        ids,
        (1000..1000 + s.auctions.len() as u64).collect::<Vec<_>>()
    );
    // Mean duration ≈ the time to create 100 more auctions: 1,666 events at 100 µs ≈ 167 ms.
    let mean_len = s
        .auctions
        .iter()
        .map(|(_, a)| (a.expires - a.date_time) as f64)
        .sum::<f64>()
        / s.auctions.len() as f64;
    assert!(
        (150.0..185.0).contains(&mean_len),
        "mean auction length {mean_len}"
    );
}

#[test]
fn lower_case_states_switch() {
    let s = split_kinds(sample(NexmarkConfig::risingwave(), 5_000));
    assert!(
        s.persons
            .iter()
            .all(|p| STATES_LOWER.contains(&p.state.as_str()))
    );
}
