//! The bundled showcase plugins as real jobs: the real engine, log, shards
//! and Wasm modules, each plugin's own `demo-job.json`, seeded `sluice-gen`
//! streams delivered up to 1 s out of order (the jobs allow 2 s), with 1 and
//! with 2 shards. Outputs are compared with references written here from
//! docs/events.md and the plugin READMEs — small, obviously-correct batch
//! computations over the same events, sharing no code with the plugins.
//!
//! Windows are flushed with one sentinel record per partition, an hour of
//! event time after the data, in a key of its own: it moves every partition's
//! watermark past every window of the data, and its own windows never close.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::job::ingest::NewRecords;
use sluice::job::spec::JobSpec;
use sluice::shard::IngestRecord;
use sluice::shard::route::partition_of;
use sluice::state::view::Query;
use sluice_gen::RecordBuf;
use sluice_gen::encode::EventRecord;
use sluice_gen::scenarios::ScenarioConfig;
use sluice_gen::scenarios::heartbeats::{Heartbeat, HeartbeatsConfig, HeartbeatsGenerator};
use sluice_gen::scenarios::payments::{
    FraudRules, Injection, Payment, PaymentsConfig, PaymentsGenerator,
};
use sluice_gen::scenarios::rides::{HotSpot, RideEvent, RideRequest, RidesConfig, RidesGenerator};
use sluice_gen::scenarios::scores::{Score, ScoresConfig, ScoresGenerator};
use sluice_gen::scenarios::shop::{Click, ShopConfig, ShopEvent, ShopGenerator};
use support::{Server, read_all};

const PARTITIONS: u32 = 4;
/// Event time of the sentinels after the last event.
const SENTINEL_AFTER_MS: i64 = 3_600_000;
/// How long a job may take to produce its outputs.
const JOB_DEADLINE: Duration = Duration::from_secs(90);

/// One output record: key, timestamp, value.
type Out = (String, i64, Value);

// ------------------------------------------------------------------ harness

fn scenario(seed: u64, rate: u64, count: u64, keys: u64, skew: f64) -> ScenarioConfig {
    ScenarioConfig {
        seed,
        rate,
        count,
        keys,
        skew,
        max_delay_ms: 1_000,
        ..ScenarioConfig::default()
    }
}

fn records<E: EventRecord>(events: &[E]) -> NewRecords {
    let mut out = NewRecords::default();
    let mut rec = RecordBuf::default();
    for e in events {
        rec.fill(e).expect("generated events encode");
        let k0 = out.data.len();
        out.data.extend_from_slice(&rec.key);
        let v0 = out.data.len();
        out.data.extend_from_slice(&rec.value);
        out.records.push(IngestRecord {
            timestamp: rec.timestamp,
            key: k0..v0,
            value: v0..out.data.len(),
            headers: Vec::new(),
        });
    }
    out
}

/// One key per partition of the topic, none of them a key of the data.
fn sentinel_keys() -> Vec<String> {
    let mut by_partition: BTreeMap<u32, String> = BTreeMap::new();
    for i in 0.. {
        let key = format!("zz-sentinel-{i}");
        by_partition
            .entry(partition_of(key.as_bytes(), PARTITIONS))
            .or_insert(key);
        if by_partition.len() == PARTITIONS as usize {
            break;
        }
    }
    by_partition.into_values().collect()
}

/// A sentinel event per partition, [`SENTINEL_AFTER_MS`] after the last event.
fn with_sentinels<E: EventRecord>(mut events: Vec<E>, make: impl Fn(&str, i64) -> E) -> Vec<E> {
    let last = events.iter().map(EventRecord::timestamp).max().unwrap_or(0);
    for key in sentinel_keys() {
        let e = make(&key, last + SENTINEL_AFTER_MS);
        assert_eq!(e.key(), key, "a sentinel is keyed by its sentinel key");
        events.push(e);
    }
    events
}

/// A plugin's demo job with its sinks replaced (to read every output).
fn demo_job(text: &str, sinks: Value) -> JobSpec {
    let mut spec: Value = serde_json::from_str(text).expect("demo-job.json is JSON");
    assert_eq!(
        spec["max_out_of_orderness_ms"], 2_000,
        "demo jobs allow the demo generators' 1 s of disorder"
    );
    spec["sinks"] = sinks;
    let spec: JobSpec = serde_json::from_value(spec).expect("demo-job.json is a job spec");
    spec.validate().expect("demo-job.json validates");
    spec
}

fn topic_sinks(outputs: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = outputs
        .iter()
        .map(|(output, topic)| (output.to_string(), json!({"topic": {"topic": topic}})))
        .collect();
    Value::Object(map)
}

/// Starts `shards` shards, ingests `input` into `topic`, runs `spec`, and
/// waits until the job has no lag and every output topic holds at least its
/// expected count (or the deadline passed: the comparison then shows what is
/// missing).
fn run_job(
    shards: usize,
    topic: &str,
    input: &NewRecords,
    spec: JobSpec,
    expected: &[(&str, usize)],
) -> Server {
    let s = Server::start(shards, |_| {});
    s.engine
        .log
        .create_topic(sluice::log::TopicConfig {
            fsync: sluice::log::FsyncPolicy::Never,
            ..sluice::log::TopicConfig::new(topic, PARTITIONS)
        })
        .expect("topic");
    for chunk in input.records.chunks(1_000) {
        let part = NewRecords {
            data: input.data.clone(),
            records: chunk.to_vec(),
        };
        s.block_on(s.engine.ingest(topic, part, None))
            .expect("ingest");
    }
    let name = spec.name.clone();
    s.engine.create_job(spec).expect("job starts");
    let start = Instant::now();
    while start.elapsed() < JOB_DEADLINE {
        let caught_up = s
            .engine
            .job(&name)
            .and_then(|(_, _, rt, _)| rt)
            .is_some_and(|rt| rt.lag() == 0);
        let complete = expected
            .iter()
            .all(|(t, n)| support::topic_records(&s, t) >= *n as u64);
        if caught_up && complete {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, state, rt, _) = s.engine.job(&name).expect("job exists");
    let rt = rt.unwrap_or_else(|| panic!("job {name} is not running: {state:?}"));
    assert_eq!(
        rt.stats.errors.load(Ordering::Relaxed),
        0,
        "job {name}: plugin calls failed"
    );
    assert_eq!(
        rt.stats.late_events.load(Ordering::Relaxed),
        0,
        "job {name}: nothing is late"
    );
    s
}

/// Runs a plugin's demo job over `input` with 1 and with 2 shards, each
/// output `(output, topic, expected)` sent to a topic, and checks every topic
/// holds exactly the expected records.
fn check_demo_job(job: &str, topic: &str, input: &NewRecords, outputs: &[(&str, &str, &[Out])]) {
    let sinks: Vec<(&str, &str)> = outputs.iter().map(|(o, t, _)| (*o, *t)).collect();
    let counts: Vec<(&str, usize)> = outputs.iter().map(|(_, t, w)| (*t, w.len())).collect();
    for shards in [1, 2] {
        let s = run_job(
            shards,
            topic,
            input,
            demo_job(job, topic_sinks(&sinks)),
            &counts,
        );
        for (_, out_topic, want) in outputs {
            let what = format!("{out_topic}, {shards} shards");
            assert_same(&what, &read_all(&s, out_topic), want);
        }
    }
}

/// Recursively key-sorted JSON text, to order values whatever their map order.
fn canon(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, String> = m.iter().map(|(k, v)| (k, canon(v))).collect();
            let inner: Vec<String> = sorted.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canon).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn sorted(v: &[Out]) -> Vec<(String, i64, String)> {
    let mut s: Vec<_> = v
        .iter()
        .map(|(k, t, v)| (k.clone(), *t, canon(v)))
        .collect();
    s.sort();
    s
}

/// Same records, in any order; on a mismatch, shows the first differences.
fn assert_same(what: &str, got: &[Out], want: &[Out]) {
    let (got, want) = (sorted(got), sorted(want));
    if got == want {
        return;
    }
    let (got_set, want_set): (BTreeSet<_>, BTreeSet<_>) =
        (got.iter().collect(), want.iter().collect());
    let missing: Vec<_> = want_set.difference(&got_set).take(3).collect();
    let extra: Vec<_> = got_set.difference(&want_set).take(3).collect();
    panic!(
        "{what}: {} records, expected {}\nmissing (first 3): {missing:#?}\nunexpected (first 3): {extra:#?}",
        got.len(),
        want.len()
    );
}

/// Windows `[start, start + size)` every `slide` that hold `ts`.
fn window_starts(ts: i64, size: i64, slide: i64) -> impl Iterator<Item = i64> {
    let last = ts - ts.rem_euclid(slide);
    (0..)
        .map(move |n| last - n * slide)
        .take_while(move |s| s + size > ts)
}

fn tumbling(ts: i64, size: i64) -> i64 {
    ts - ts.rem_euclid(size)
}

// ------------------------------------------------------------- fraud-rules

const FRAUD_JOB: &str = include_str!("../../plugins/fraud-rules/demo-job.json");

fn payments() -> (Vec<Payment>, Vec<Out>) {
    let scenario = scenario(11, 200, 20_000, 3_000, 0.8);
    let rules = FraudRules {
        span_ms: 20_000,
        ..FraudRules::default()
    };
    let injections = Injection::evenly_spaced(24, &scenario, &rules);
    let generator = PaymentsGenerator::new(PaymentsConfig {
        scenario,
        rules,
        injections,
        ..PaymentsConfig::default()
    })
    .expect("payments config");
    let alerts: Vec<Out> = generator
        .expected_alerts()
        .iter()
        .map(|a| {
            (
                a.payer.clone(),
                a.detected_at,
                serde_json::to_value(a).unwrap(),
            )
        })
        .collect();
    (generator.collect(), alerts)
}

#[test]
fn fraud_rules_raise_exactly_the_planted_alerts_with_one_and_two_shards() {
    let (payments, want) = payments();
    assert_eq!(want.len(), 24);
    check_demo_job(
        FRAUD_JOB,
        "payments",
        &records(&payments),
        &[("alerts", "alerts", &want)],
    );
}

#[test]
fn the_fraud_alerts_view_of_the_demo_job_holds_every_alert() {
    let (payments, want) = payments();
    let spec = JobSpec::from_json(FRAUD_JOB.as_bytes()).expect("fraud demo job");
    let s = run_job(2, "payments", &records(&payments), spec, &[]);
    let view = s
        .engine
        .views
        .get("fraud-alerts")
        .expect("the job made its view");
    let deadline = Instant::now() + JOB_DEADLINE;
    while view.stats().0 < want.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rows: Vec<Out> = view
        .query(&Query {
            limit: Some(1_000),
            ..Query::default()
        })
        .rows
        .into_iter()
        .map(|r| (r.key, r.timestamp, r.value))
        .collect();
    assert_same("fraud-alerts view", &rows, &want);
    let one = &want[0];
    let by_payer = view.query(&Query {
        key: Some(one.0.clone()),
        ..Query::default()
    });
    assert!(by_payer.rows.iter().any(|r| r.value == one.2));
}

// ----------------------------------------------------------- surge-pricing

const SURGE_JOB: &str = include_str!("../../plugins/surge-pricing/demo-job.json");

/// Surge quotes straight from the definition: every window end of a cell from
/// its first window with an event on; a window's counts, the multiplier
/// rounded to a tenth; emitted on the first window and whenever it changes.
fn surge_reference(events: &[RideEvent], size: i64, slide: i64) -> Vec<Out> {
    // cell -> window start -> (requests, available drivers)
    type Windows = BTreeMap<i64, (u64, BTreeSet<String>)>;
    let mut cells: BTreeMap<String, Windows> = BTreeMap::new();
    for e in events {
        for start in window_starts(e.timestamp(), size, slide) {
            let w = cells
                .entry(e.cell().to_owned())
                .or_default()
                .entry(start)
                .or_default();
            match e {
                RideEvent::RideRequest(_) => w.0 += 1,
                RideEvent::DriverPing(p) if p.available => {
                    w.1.insert(p.driver_id.clone());
                }
                RideEvent::DriverPing(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    for (cell, windows) in cells {
        let (first, last) = (
            *windows.keys().next().unwrap(),
            *windows.keys().last().unwrap(),
        );
        let mut previous: Option<f64> = None;
        let mut start = first;
        while start <= last + slide {
            let (requests, drivers) = windows
                .get(&start)
                .map_or((0, 0), |(r, d)| (*r, d.len() as u64));
            let ratio = requests as f64 / drivers.max(1) as f64;
            let raw = (1.0 + 0.5 * (ratio - 1.0)).clamp(1.0, 3.0);
            let multiplier = ((raw * 10.0).round() / 10.0).clamp(1.0, 3.0);
            if previous != Some(multiplier) {
                let end = start + size;
                out.push((
                    cell.clone(),
                    end - 1,
                    json!({"cell": cell, "requests": requests, "drivers": drivers, "ratio": ratio,
                           "multiplier": multiplier, "window_start": start, "window_end": end}),
                ));
            }
            previous = Some(multiplier);
            start += slide;
        }
    }
    out
}

#[test]
fn surge_pricing_quotes_match_the_definition_with_one_and_two_shards() {
    let base = ScenarioConfig::default().base_time_ms;
    let generator = RidesGenerator::new(RidesConfig {
        scenario: scenario(12, 200, 24_000, 36, 0.5),
        drivers: 300,
        hot_spots: vec![HotSpot {
            cell: 7,
            from_ms: base + 20_000,
            to_ms: base + 70_000,
            share: 0.5,
        }],
        ..RidesConfig::default()
    })
    .expect("rides config");
    let events: Vec<RideEvent> = generator.collect();
    let want = surge_reference(&events, 60_000, 10_000);
    let surged = want
        .iter()
        .filter(|o| o.2["multiplier"].as_f64() > Some(1.0))
        .count();
    assert!(surged > 5, "the hot spot surges: {surged} quotes above 1.0");
    let events = with_sentinels(events, |key, ts| {
        RideEvent::RideRequest(RideRequest {
            rider_id: "rider-0".into(),
            cell: key.into(),
            ts,
        })
    });
    check_demo_job(
        SURGE_JOB,
        "rides",
        &records(&events),
        &[("main", "surge", &want)],
    );
}

// ------------------------------------------------------ sales and sessions

const SALES_JOB: &str = include_str!("../../plugins/sales-rollup/demo-job.json");
const SESSIONS_JOB: &str = include_str!("../../plugins/sessionize/demo-job.json");

fn shop_events() -> Vec<ShopEvent> {
    ShopGenerator::new(ShopConfig {
        scenario: scenario(13, 100, 20_000, 2_000, 1.0),
        ..ShopConfig::default()
    })
    .expect("shop config")
    .collect()
}

fn shop_sentinel(key: &str, ts: i64) -> ShopEvent {
    ShopEvent::Click(Click {
        user_id: key.into(),
        page: "/".into(),
        product_id: None,
        ts,
    })
}

/// Per-minute roll-ups straight from the events.
fn sales_reference(events: &[ShopEvent]) -> Vec<Out> {
    const W: i64 = 60_000;
    #[derive(Default)]
    struct Minute {
        active: BTreeSet<String>,
        buyers: BTreeSet<String>,
        products: BTreeMap<String, (u64, u64, u64)>,
    }
    let mut minutes: BTreeMap<i64, Minute> = BTreeMap::new();
    for e in events {
        let m = minutes.entry(tumbling(e.timestamp(), W)).or_default();
        m.active.insert(e.user_id().to_owned());
        if let ShopEvent::Order(o) = e {
            m.buyers.insert(o.user_id.clone());
            let p = m.products.entry(o.product_id.clone()).or_default();
            p.0 += 1;
            p.1 += u64::from(o.qty);
            p.2 += u64::from(o.qty) * o.price;
        }
    }
    let mut out = Vec::new();
    for (start, m) in minutes {
        let (end, ts) = (start + W, start + W - 1);
        let totals = m
            .products
            .values()
            .fold((0, 0, 0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
        out.push((
            "all".to_owned(),
            ts,
            json!({"active_users": m.active.len(), "buyers": m.buyers.len(),
                   "conversion_rate": m.buyers.len() as f64 / m.active.len() as f64,
                   "total_orders": totals.0, "total_units": totals.1, "total_revenue": totals.2,
                   "window_start": start, "window_end": end}),
        ));
        for (product, (orders, units, revenue)) in m.products {
            out.push((
                product.clone(),
                ts,
                json!({"product_id": product, "orders": orders, "units": units, "revenue": revenue,
                       "avg_order_value": revenue as f64 / orders as f64,
                       "window_start": start, "window_end": end}),
            ));
        }
    }
    out
}

#[test]
fn sales_rollup_two_phase_job_matches_the_per_minute_totals_with_one_and_two_shards() {
    let events = shop_events();
    let want = sales_reference(&events);
    assert!(want.len() > 100, "{} roll-ups", want.len());
    let spec = demo_job(SALES_JOB, topic_sinks(&[]));
    assert!(
        spec.operators[1].partition_by_key,
        "the final phase is re-keyed"
    );
    let input = records(&with_sentinels(events, shop_sentinel));
    check_demo_job(SALES_JOB, "shop", &input, &[("main", "sales", &want)]);
}

/// Sessions straight from the definition: a user's events in time order,
/// split where the next event is at least the gap after the previous one.
fn sessions_reference(events: &[ShopEvent], gap: i64) -> Vec<Out> {
    let mut by_user: BTreeMap<&str, Vec<&ShopEvent>> = BTreeMap::new();
    for e in events {
        by_user.entry(e.user_id()).or_default().push(e);
    }
    let mut out = Vec::new();
    for (user, mut evs) in by_user {
        evs.sort_by_key(|e| e.timestamp());
        let mut sessions: Vec<Vec<&ShopEvent>> = Vec::new();
        for e in evs {
            match sessions.last_mut() {
                Some(s) if e.timestamp() - s.last().unwrap().timestamp() < gap => s.push(e),
                _ => sessions.push(vec![e]),
            }
        }
        for s in sessions {
            let (first, last) = (s[0].timestamp(), s.last().unwrap().timestamp());
            let pages: BTreeSet<&str> = s
                .iter()
                .filter_map(|e| match e {
                    ShopEvent::Click(c) => Some(c.page.as_str()),
                    _ => None,
                })
                .collect();
            let pages: Vec<&str> = pages.into_iter().take(20).collect();
            let cart = |action: &str| {
                s.iter()
                    .filter(|e| matches!(e, ShopEvent::Cart(c) if c.action == action))
                    .count()
            };
            let page_views = s
                .iter()
                .filter(|e| matches!(e, ShopEvent::Click(_)))
                .count();
            let ordered = s.iter().any(|e| matches!(e, ShopEvent::Order(_)));
            let (adds, checked_out) = (cart("add"), cart("checkout") > 0);
            out.push((
                user.to_owned(),
                last + gap - 1,
                json!({"user_id": user, "session_start": first, "session_end": last,
                       "events": s.len(), "page_views": page_views, "pages": pages,
                       "cart_adds": adds, "checked_out": checked_out, "ordered": ordered,
                       "abandoned": adds > 0 && !checked_out,
                       "window_start": first, "window_end": last + gap}),
            ));
        }
    }
    out
}

#[test]
fn sessionize_sessions_match_the_gap_definition_with_one_and_two_shards() {
    let events = shop_events();
    let want = sessions_reference(&events, 30_000);
    let abandoned = want.iter().filter(|o| o.2["abandoned"] == true).count();
    assert!(
        want.len() > 500 && abandoned > 50,
        "{} sessions, {abandoned} abandoned",
        want.len()
    );
    let input = records(&with_sentinels(events, shop_sentinel));
    check_demo_job(SESSIONS_JOB, "shop", &input, &[("main", "sessions", &want)]);
}

// ----------------------------------------------------------------- viewers

const VIEWERS_JOB: &str = include_str!("../../plugins/viewers/demo-job.json");

fn viewers_reference(beats: &[Heartbeat]) -> Vec<Out> {
    const W: i64 = 30_000;
    // stream -> window start -> (viewers, beats, buffering beats, buffering ms)
    type Windows = BTreeMap<i64, (BTreeSet<String>, u64, u64, u64)>;
    let mut streams: BTreeMap<String, Windows> = BTreeMap::new();
    for b in beats {
        let w = streams
            .entry(b.stream_id.clone())
            .or_default()
            .entry(tumbling(b.ts, W))
            .or_default();
        w.0.insert(b.viewer_id.clone());
        w.1 += 1;
        if b.buffering_ms > 0 {
            w.2 += 1;
            w.3 += u64::from(b.buffering_ms);
        }
    }
    let mut out = Vec::new();
    for (stream, windows) in streams {
        let mut peak = 0;
        for (start, (viewers, beats, buffering, buffering_ms)) in windows {
            peak = peak.max(viewers.len());
            out.push((
                stream.clone(),
                start + W - 1,
                json!({"stream_id": stream, "viewers": viewers.len(), "viewers_exact": true,
                       "beats": beats, "buffering_beats": buffering,
                       "buffering_ratio": buffering as f64 / beats as f64,
                       "buffering_ms": buffering_ms, "peak_viewers": peak,
                       "window_start": start, "window_end": start + W}),
            ));
        }
    }
    out
}

#[test]
fn viewers_per_stream_match_the_heartbeats_with_one_and_two_shards() {
    let beats: Vec<Heartbeat> = HeartbeatsGenerator::new(HeartbeatsConfig {
        scenario: scenario(14, 200, 24_000, 12, 1.0),
        viewers: 800,
        switch_every: 10,
        ..HeartbeatsConfig::default()
    })
    .expect("heartbeats config")
    .collect();
    let want = viewers_reference(&beats);
    let input = records(&with_sentinels(beats, |key, ts| Heartbeat {
        viewer_id: "viewer-0".into(),
        stream_id: key.into(),
        bitrate_kbps: 400,
        buffering_ms: 0,
        ts,
    }));
    check_demo_job(
        VIEWERS_JOB,
        "heartbeats",
        &input,
        &[("main", "viewers", &want)],
    );
}

// ------------------------------------------------------------------- top-k

const LEADERBOARD_JOB: &str = include_str!("../../plugins/top-k/demo-job.json");

/// The leaderboard straight from the definition: per contest and 10 s window
/// (those with scores), add the window's points, rank everyone (points
/// descending, then player), report players whose points or rank changed and
/// the top 10.
fn leaderboard_reference(scores: &[Score]) -> (Vec<Out>, Vec<Out>) {
    const W: i64 = 10_000;
    let mut windows: BTreeMap<(String, i64), BTreeMap<String, i64>> = BTreeMap::new();
    for s in scores {
        *windows
            .entry((s.contest_id.clone(), tumbling(s.ts, W)))
            .or_default()
            .entry(s.player_id.clone())
            .or_default() += s.points;
    }
    let (mut rows, mut tops) = (Vec::new(), Vec::new());
    let mut boards: BTreeMap<String, BTreeMap<String, (i64, usize)>> = BTreeMap::new();
    for ((contest, start), deltas) in windows {
        let end = start + W;
        let board = boards.entry(contest.clone()).or_default();
        let before = board.clone();
        for (player, delta) in deltas {
            board.entry(player).or_insert((0, 0)).0 += delta;
        }
        let mut order: Vec<(String, i64)> = board
            .iter()
            .map(|(p, (pts, _))| (p.clone(), *pts))
            .collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (i, (player, points)) in order.iter().enumerate() {
            board.get_mut(player).unwrap().1 = i + 1;
            if before.get(player) != Some(&(*points, i + 1)) {
                rows.push((
                    format!("{contest}/{player}"),
                    end - 1,
                    json!({"contest_id": contest, "player_id": player, "points": points,
                           "rank": i + 1, "as_of": end}),
                ));
            }
        }
        let top: Vec<Value> = order
            .iter()
            .take(10)
            .enumerate()
            .map(|(i, (p, pts))| json!({"rank": i + 1, "player_id": p, "points": pts}))
            .collect();
        tops.push((
            contest.clone(),
            end - 1,
            json!({"contest_id": contest, "top": top, "entries": order.len(),
                   "window_start": start, "window_end": end}),
        ));
    }
    (rows, tops)
}

fn scores() -> Vec<Score> {
    ScoresGenerator::new(ScoresConfig {
        scenario: scenario(15, 200, 20_000, 5, 1.0),
        players: 1_000,
        players_per_contest: 100,
    })
    .expect("scores config")
    .collect()
}

fn score_sentinel(key: &str, ts: i64) -> Score {
    Score {
        player_id: "player-0".into(),
        contest_id: key.into(),
        points: 0,
        ts,
    }
}

#[test]
fn top_k_leaderboard_matches_running_totals_and_ranks_with_one_and_two_shards() {
    let scores = scores();
    let (rows, tops) = leaderboard_reference(&scores);
    let input = records(&with_sentinels(scores, score_sentinel));
    check_demo_job(
        LEADERBOARD_JOB,
        "scores",
        &input,
        &[("main", "standings", &rows), ("top", "tops", &tops)],
    );
}

#[test]
fn the_leaderboard_views_answer_top_ten_and_rank_of_a_player() {
    let scores = scores();
    let (rows, tops) = leaderboard_reference(&scores);
    let input = records(&with_sentinels(scores, score_sentinel));
    let spec = JobSpec::from_json(LEADERBOARD_JOB.as_bytes()).expect("leaderboard demo job");
    let s = run_job(2, "scores", &input, spec, &[]);
    let (board, top) = (
        s.engine.views.get("leaderboard").expect("leaderboard view"),
        s.engine
            .views
            .get("leaderboard-top")
            .expect("leaderboard-top view"),
    );
    // The latest row of each player, and the latest top list of each contest.
    let latest_rows: BTreeMap<&str, &Value> =
        rows.iter().map(|(k, _, v)| (k.as_str(), v)).collect();
    let latest_tops: BTreeMap<&str, &Value> =
        tops.iter().map(|(k, _, v)| (k.as_str(), v)).collect();
    let deadline = Instant::now() + JOB_DEADLINE;
    while board.stats().0 < latest_rows.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    for (contest, want) in &latest_tops {
        let answer = top.query(&Query {
            key: Some(contest.to_string()),
            latest: true,
            ..Query::default()
        });
        assert_eq!(answer.rows.len(), 1, "one latest top list of {contest}");
        assert_eq!(&&answer.rows[0].value, want, "top 10 of {contest}");
    }
    for (key, want) in latest_rows.iter().step_by(37) {
        let answer = board.query(&Query {
            key: Some(key.to_string()),
            ..Query::default()
        });
        assert_eq!(answer.rows.len(), 1, "one standing row per player");
        assert_eq!(&&answer.rows[0].value, want, "standing of {key}");
    }
    // Sorted by points, the view's order is the overall order of the rows.
    let answer = board.query(&Query {
        sort: Some("points".into()),
        limit: Some(10_000),
        ..Query::default()
    });
    assert_eq!(answer.total, latest_rows.len());
    let points: Vec<i64> = answer
        .rows
        .iter()
        .map(|r| r.value["points"].as_i64().unwrap())
        .collect();
    assert!(points.windows(2).all(|w| w[0] >= w[1]));
}

// ----------------------------------------------------------- dedup-validate

const QUALITY_JOB: &str = include_str!("../../plugins/dedup-validate/demo-job.json");

#[test]
fn dedup_validate_drops_copies_and_rejects_bad_records_with_one_and_two_shards() {
    let (payments, _) = payments();
    // Every 40th payment is sent again five records later (a retry), every
    // 70th has amount 0 (invalid).
    let mut input: Vec<Payment> = Vec::new();
    let mut retries: Vec<(usize, Payment)> = Vec::new();
    for (i, mut p) in payments.into_iter().enumerate() {
        if i % 70 == 0 {
            p.amount = 0;
        }
        if i % 40 == 0 {
            retries.push((i + 5, p.clone()));
        }
        input.push(p);
        while retries.first().is_some_and(|(at, _)| *at == i) {
            input.push(retries.remove(0).1);
        }
    }
    let mut seen = BTreeSet::new();
    let (mut clean, mut rejected, mut copies) = (Vec::new(), Vec::new(), 0);
    for p in &input {
        let value = serde_json::to_value(p).unwrap();
        if p.amount == 0 {
            rejected.push((
                p.payer.clone(),
                p.ts,
                json!({"reason": "field `amount`: value 0 is below min 1", "record": value}),
            ));
        } else if seen.insert(p.txn_id.clone()) {
            clean.push((p.payer.clone(), p.ts, value));
        } else {
            copies += 1;
        }
    }
    assert!(copies > 300 && rejected.len() > 250);
    check_demo_job(
        QUALITY_JOB,
        "payments",
        &records(&input),
        &[("main", "clean", &clean), ("dlq", "rejected", &rejected)],
    );
}
