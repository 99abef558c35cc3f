//! Rides, shop, heartbeats and scores: schemas on the wire, determinism, bounded
//! out-of-orderness, skew and the scenario-specific structure (hot spots, sessions, rosters).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use sluice_gen::encode::{EventRecord, RecordBuf, write_ndjson};
use sluice_gen::scenarios::ScenarioConfig;
use sluice_gen::scenarios::heartbeats::{
    BITRATES_KBPS, Heartbeat, HeartbeatsConfig, HeartbeatsGenerator,
};
use sluice_gen::scenarios::rides::{HotSpot, RideEvent, RidesConfig, RidesGenerator};
use sluice_gen::scenarios::scores::{Score, ScoresConfig, ScoresGenerator};
use sluice_gen::scenarios::shop::{ShopConfig, ShopEvent, ShopGenerator};

fn scenario(count: u64, keys: u64, skew: f64, max_delay_ms: u64) -> ScenarioConfig {
    ScenarioConfig {
        seed: 17,
        rate: 1_000,
        count,
        keys,
        skew,
        max_delay_ms,
        ..ScenarioConfig::default()
    }
}

/// Every event is at most `bound` older than the newest before it, and some are out of order.
fn assert_bounded_disorder<E: EventRecord>(events: &[E], bound: i64) {
    let mut max_seen = i64::MIN;
    let mut disordered = 0;
    for (i, e) in events.iter().enumerate() {
        let t = e.timestamp();
        assert!(
            t >= max_seen.saturating_sub(bound),
            "event {i} at {t} is more than {bound} ms behind {max_seen}"
        );
        disordered += usize::from(t < max_seen);
        max_seen = max_seen.max(t);
    }
    assert!(bound == 0 || disordered > 0);
}

fn decode(e: &impl EventRecord) -> (String, Value) {
    let mut rec = RecordBuf::default();
    rec.fill(e).expect("encodes");
    assert_eq!(rec.timestamp, e.timestamp());
    let value = rmp_serde::from_slice(&rec.value).expect("decodes");
    (String::from_utf8(rec.key).expect("utf-8 key"), value)
}

#[test]
fn rides_hot_spot_draws_its_share_of_requests_while_active() {
    let base = ScenarioConfig::default().base_time_ms;
    let cfg = RidesConfig {
        scenario: scenario(60_000, 100, 0.0, 1_500),
        hot_spots: vec![HotSpot {
            cell: 42,
            from_ms: base + 20_000,
            to_ms: base + 40_000,
            share: 0.3,
        }],
        ..RidesConfig::default()
    };
    let events: Vec<RideEvent> = RidesGenerator::new(cfg.clone()).expect("valid").collect();
    assert_eq!(
        events,
        RidesGenerator::new(cfg.clone())
            .expect("valid")
            .collect::<Vec<_>>()
    );
    assert_bounded_disorder(&events, 1_500);
    assert_eq!(cfg.cell_name(42), "4-2");
    let share_in = |from: i64, to: i64| {
        let reqs: Vec<&RideEvent> = events
            .iter()
            .filter(|e| matches!(e, RideEvent::RideRequest(r) if (base + from..base + to).contains(&r.ts)))
            .collect();
        reqs.iter().filter(|e| e.cell() == "4-2").count() as f64 / reqs.len() as f64
    };
    // Active: 0.3 + 0.7/100; before and after: 1/100.
    assert!(
        (share_in(20_000, 40_000) - 0.307).abs() < 0.02,
        "{}",
        share_in(20_000, 40_000)
    );
    assert!(share_in(0, 20_000) < 0.02 && share_in(40_000, 60_000) < 0.02);
    let pings = events
        .iter()
        .filter(|e| matches!(e, RideEvent::DriverPing(_)))
        .count();
    assert!((pings as f64 / events.len() as f64 - 0.5).abs() < 0.02);

    let ping = events
        .iter()
        .find(|e| matches!(e, RideEvent::DriverPing(_)))
        .expect("a ping");
    let (key, value) = decode(ping);
    assert_eq!(key, ping.cell());
    let fields: HashSet<&str> = value["driver_ping"]
        .as_object()
        .expect("tagged")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        HashSet::from(["driver_id", "cell", "available", "ts"])
    );
    assert!(value["driver_ping"]["available"].is_boolean());
}

#[test]
fn shop_sessions_end_in_orders_abandoned_carts_or_browsing() {
    let cfg = ShopConfig {
        scenario: scenario(100_000, 2_000, 1.0, 0),
        ..ShopConfig::default()
    };
    let generator = ShopGenerator::new(cfg.clone()).expect("valid");
    let events: Vec<ShopEvent> = generator.collect();
    assert_eq!(
        events,
        ShopGenerator::new(cfg.clone())
            .expect("valid")
            .collect::<Vec<_>>()
    );

    // Replay per user: adds since the last checkout are the open cart; orders follow a checkout.
    let mut open_cart: HashMap<&str, u32> = HashMap::new();
    let mut checked_out: HashMap<&str, bool> = HashMap::new();
    let (mut orders, mut checkouts) = (0, 0);
    for e in &events {
        match e {
            ShopEvent::Cart(c) if c.action == "add" => {
                *open_cart.entry(&c.user_id).or_default() += 1
            }
            ShopEvent::Cart(c) if c.action == "checkout" => {
                checkouts += 1;
                open_cart.insert(&c.user_id, 0);
                checked_out.insert(&c.user_id, true);
            }
            ShopEvent::Cart(c) => assert_eq!(c.action, "remove"),
            ShopEvent::Order(o) => {
                orders += 1;
                assert!(
                    checked_out
                        .get(o.user_id.as_str())
                        .copied()
                        .unwrap_or(false),
                    "order without checkout"
                );
                assert_eq!(
                    o.price,
                    cfg.price_of(
                        o.product_id
                            .trim_start_matches("product-")
                            .parse()
                            .expect("id")
                    )
                );
                assert!((1..=3).contains(&o.qty));
            }
            ShopEvent::Click(c) => {
                checked_out.insert(&c.user_id, false);
                assert_eq!(c.product_id.is_some(), c.page.starts_with("/product/"));
            }
        }
    }
    assert!(
        orders >= checkouts && checkouts > 1_000,
        "{orders} orders, {checkouts} checkouts"
    );
    let abandoned = open_cart.values().filter(|&&n| n > 0).count();
    assert!(
        abandoned > 500,
        "only {abandoned} users left items in a cart"
    );

    let click = events
        .iter()
        .find(|e| matches!(e, ShopEvent::Click(c) if c.product_id.is_none()))
        .expect("home page");
    let (key, value) = decode(click);
    assert_eq!(key, click.user_id());
    assert_eq!(value["click"]["product_id"], Value::Null);
    assert_eq!(value["click"]["page"], json!("/"));
    // Skewed users: user-0 is the most active.
    let by_user = |u: &str| events.iter().filter(|e| e.user_id() == u).count();
    assert!(by_user("user-0") > 5 * by_user("user-1000"));
}

#[test]
fn heartbeats_come_round_robin_with_skewed_streams() {
    let cfg = HeartbeatsConfig {
        scenario: scenario(50_000, 20, 1.0, 800),
        viewers: 1_000,
        ..HeartbeatsConfig::default()
    };
    let beats: Vec<Heartbeat> = HeartbeatsGenerator::new(cfg.clone())
        .expect("valid")
        .collect();
    assert_bounded_disorder(&beats, 800);
    // Viewer 7 beats every 1,000 slots = every second of nominal time.
    let v7: Vec<&Heartbeat> = beats.iter().filter(|b| b.viewer_id == "viewer-7").collect();
    assert_eq!(v7.len(), 50);
    let streams: HashMap<&str, usize> = beats.iter().fold(HashMap::new(), |mut m, b| {
        *m.entry(b.stream_id.as_str()).or_default() += 1;
        m
    });
    assert!(streams["stream-0"] > 3 * streams.get("stream-10").copied().unwrap_or(0));
    assert!(
        beats
            .iter()
            .all(|b| BITRATES_KBPS.contains(&b.bitrate_kbps))
    );
    let buffering = beats.iter().filter(|b| b.buffering_ms > 0).count() as f64 / beats.len() as f64;
    assert!((buffering - 0.05).abs() < 0.01);
    let (key, value) = decode(&beats[0]);
    assert_eq!(key, beats[0].stream_id);
    let fields: HashSet<&str> = value
        .as_object()
        .expect("plain map")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        HashSet::from([
            "viewer_id",
            "stream_id",
            "bitrate_kbps",
            "buffering_ms",
            "ts"
        ])
    );
}

#[test]
fn scores_follow_contest_rosters_and_the_points_mix() {
    let cfg = ScoresConfig {
        scenario: scenario(40_000, 50, 1.0, 0),
        players: 10_000,
        players_per_contest: 100,
    };
    let scores: Vec<Score> = ScoresGenerator::new(cfg.clone()).expect("valid").collect();
    for s in &scores {
        let c: u64 = s
            .contest_id
            .trim_start_matches("contest-")
            .parse()
            .expect("contest id");
        let p: u64 = s
            .player_id
            .trim_start_matches("player-")
            .parse()
            .expect("player id");
        assert!(
            (c * 100..c * 100 + 100).contains(&p),
            "{} not on {}'s roster",
            s.player_id,
            s.contest_id
        );
        assert!(s.points == -2 || (1..=25).contains(&s.points));
    }
    let in_contest = |c: &str| scores.iter().filter(|s| s.contest_id == c).count();
    assert!(in_contest("contest-0") > 5 * in_contest("contest-20"));
    let mut lines = Vec::new();
    let mut scratch = Vec::new();
    write_ndjson(&scores[0], &mut scratch, &mut lines).expect("encodes");
    let line: Value = serde_json::from_slice(&lines).expect("json");
    assert_eq!(line["key"], json!(scores[0].contest_id));
    assert_eq!(line["timestamp"], json!(scores[0].ts));
    assert_eq!(line["value"]["points"], json!(scores[0].points));
}

#[test]
fn bad_scenario_settings_name_the_field() {
    let err = RidesGenerator::new(RidesConfig {
        scenario: ScenarioConfig {
            rate: 0,
            ..ScenarioConfig::default()
        },
        ..RidesConfig::default()
    })
    .expect_err("rate 0")
    .to_string();
    assert!(err.contains("rides") && err.contains("rate"), "{err}");
    let err = ShopGenerator::new(ShopConfig {
        concurrent_sessions: 10_000,
        ..ShopConfig::default()
    })
    .expect_err("more sessions than users")
    .to_string();
    assert!(err.contains("concurrent_sessions"), "{err}");
    let err = HeartbeatsGenerator::new(HeartbeatsConfig {
        scenario: ScenarioConfig {
            skew: -1.0,
            ..ScenarioConfig::default()
        },
        ..HeartbeatsConfig::default()
    })
    .expect_err("negative skew")
    .to_string();
    assert!(err.contains("skew"), "{err}");
}
