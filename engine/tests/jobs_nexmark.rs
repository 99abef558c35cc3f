//! Nexmark queries as real jobs (bundled `nexmark` plugin, real log, real
//! shards), checked against the straightforward reference implementations of
//! `sluice-gen` over the same generated events, for 1 and 2 shards.

mod log_common;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use log_common::segment_files;
use serde_json::{Value, json};
use sluice::job::ingest::NewRecords;
use sluice::job::spec::JobSpec;
use sluice::shard::IngestRecord;
use sluice_gen::nexmark::{NexmarkConfig, NexmarkEvent, NexmarkGenerator};
use sluice_gen::reference::{self, Query};
use support::{Server, read_all, wait_for};

const PARTITIONS: u32 = 4;

/// Events per out-of-order group of the generator: at its 10,000 events/s, event times
/// within each half second arrive shuffled (the jobs allow 4 s of disorder).
const OUT_OF_ORDER_GROUP: u64 = 5_000;

/// `n` Nexmark events (default generator, seeded, out of order) and the same as records.
fn events(n: u64) -> (Vec<NexmarkEvent>, NewRecords) {
    let cfg = NexmarkConfig {
        num_events: n,
        out_of_order_group_size: OUT_OF_ORDER_GROUP,
        ..NexmarkConfig::default()
    };
    let events: Vec<NexmarkEvent> = NexmarkGenerator::new(cfg, 0).unwrap().collect();
    let mut latest = i64::MIN;
    let mut behind = 0;
    for e in &events {
        latest = latest.max(e.event.timestamp());
        behind = behind.max(latest - e.event.timestamp());
    }
    assert!(
        (100..4_000).contains(&behind),
        "events up to {behind} ms behind the latest: the input should be out of order, within the jobs' 4 s"
    );
    let mut out = NewRecords::default();
    let mut rec = sluice_gen::RecordBuf::default();
    for e in &events {
        rec.fill(e).unwrap();
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
    (events, out)
}

/// A server with `shards` shards (`tweak` applied to its config) and an
/// empty `nexmark` topic of `PARTITIONS` partitions.
fn with_nexmark_topic(shards: usize, tweak: impl FnOnce(&mut sluice::config::Config)) -> Server {
    let s = Server::start(shards, tweak);
    s.engine
        .log
        .create_topic(sluice::log::TopicConfig {
            fsync: sluice::log::FsyncPolicy::Never,
            ..sluice::log::TopicConfig::new("nexmark", PARTITIONS)
        })
        .unwrap();
    s
}

/// Ingests in batches of `batch` records.
fn ingest(s: &Server, topic: &str, all: &NewRecords, batch: usize) {
    for chunk in all.records.chunks(batch) {
        let part = NewRecords {
            data: all.data.clone(),
            records: chunk.to_vec(),
        };
        s.block_on(s.engine.ingest(topic, part, None))
            .expect("ingest");
    }
}

fn sorted(mut v: Vec<(String, i64, Value)>) -> Vec<(String, i64, String)> {
    let mut s: Vec<_> = v.drain(..).map(|(k, t, v)| (k, t, v.to_string())).collect();
    s.sort();
    s
}

/// Runs `spec` over the events and waits until the job has read them all.
fn run_job(s: &Server, spec: Value, expected_in: u64) {
    let spec: JobSpec = serde_json::from_value(spec).unwrap();
    let name = spec.name.clone();
    s.engine.create_job(spec).expect("job starts");
    wait_for("job to read every record", Duration::from_secs(60), || {
        let (_, _, rt, _) = s.engine.job(&name)?;
        let rt = rt?;
        let read = rt
            .stats
            .records_in
            .load(std::sync::atomic::Ordering::Relaxed);
        (read >= expected_in && rt.lag() == 0).then_some(())
    });
}

fn stateless_query_matches_reference(shards: usize, query: &str) {
    let s = with_nexmark_topic(shards, |_| {});
    let (events, records) = events(20_000);
    ingest(&s, "nexmark", &records, 700);
    run_job(
        &s,
        json!({"name": format!("j-{query}"), "sources": [{"topic": "nexmark"}],
               "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": query}}],
               "sinks": {"main": {"topic": {"topic": format!("out-{query}")}}}}),
        events.len() as u64,
    );
    let got = read_all(&s, &format!("out-{query}"));
    let q: Query = query.parse().unwrap();
    let want: Vec<(String, i64, Value)> = reference::final_results(q, &events)
        .into_iter()
        .map(|r| (r.key, r.timestamp, r.value))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        got.len(),
        want.len(),
        "{query} with {shards} shards: output count"
    );
    assert_eq!(sorted(got), sorted(want), "{query} with {shards} shards");
}

/// Appends one far-future person per partition: every window of the real
/// events then closes, without adding anything q5, q7, q8 or q11 report.
fn flush_windows(s: &Server, topic: &str, after_ms: i64) {
    let mut out = NewRecords::default();
    let mut covered = std::collections::BTreeSet::new();
    let ts = after_ms + 3_600_000;
    for i in 0.. {
        let key = format!("flush-{i}");
        let p = sluice::shard::route::partition_of(key.as_bytes(), PARTITIONS);
        if !covered.insert(p) {
            continue;
        }
        let person = json!({"person": {"id": 1_000_000 + i, "name": "Flush Person", "email_address": "f@x.com",
            "credit_card": "0000 0000 0000 0000", "city": "Bend", "state": "OR", "date_time": ts, "extra": ""}});
        let value = rmp_serde::to_vec_named(&person).unwrap();
        let k0 = out.data.len();
        out.data.extend_from_slice(key.as_bytes());
        let v0 = out.data.len();
        out.data.extend_from_slice(&value);
        out.records.push(IngestRecord {
            timestamp: ts,
            key: k0..v0,
            value: v0..out.data.len(),
            headers: Vec::new(),
        });
        if covered.len() == PARTITIONS as usize {
            break;
        }
    }
    s.block_on(s.engine.ingest(topic, out, None))
        .expect("flush ingest");
}

/// Waits until the job has no lag anywhere and its output stopped growing.
fn settle(s: &Server, job: &str, topic: &str) {
    let mut last = usize::MAX;
    let mut stable = 0;
    wait_for("outputs to settle", Duration::from_secs(90), || {
        let (_, _, rt, _) = s.engine.job(job)?;
        let n = read_all(s, topic).len();
        if rt?.lag() == 0 && n == last {
            stable += 1;
        } else {
            stable = 0;
        }
        last = n;
        (stable >= 5).then_some(())
    });
}

/// A windowed query as two phases with re-keying in between, against the
/// reference over the whole stream.
fn windowed_query_matches_reference(shards: usize, query: &str) {
    let s = with_nexmark_topic(shards, |_| {});
    let (events, records) = events(30_000);
    ingest(&s, "nexmark", &records, 1_000);
    let last = events.iter().map(|e| e.event.timestamp()).max().unwrap();
    let name = format!("j-{query}");
    let out = format!("out-{query}");
    let spec: JobSpec = serde_json::from_value(json!({
        "name": name, "sources": [{"topic": "nexmark"}], "max_out_of_orderness_ms": 4000,
        "operators": [
            {"plugin": "nexmark@0.1.0", "config": {"query": query, "phase": "partial"}},
            {"plugin": "nexmark@0.1.0", "config": {"query": query, "phase": "final"}, "partition_by_key": true, "partitions": 3}
        ],
        "sinks": {"main": {"topic": {"topic": out}}}
    }))
    .unwrap();
    s.engine.create_job(spec).expect("job starts");
    flush_windows(&s, "nexmark", last);
    settle(&s, &name, &out);
    let got = read_all(&s, &out);
    let q: Query = query.parse().unwrap();
    let want: Vec<(String, i64, Value)> = reference::final_results(q, &events)
        .into_iter()
        .map(|r| (r.key, r.timestamp, r.value))
        .collect();
    assert!(!want.is_empty(), "{query}: the reference has results");
    assert_eq!(
        sorted(got),
        sorted(want),
        "{query} in two phases with {shards} shards"
    );
}

/// An exchange topic keeps only what a checkpoint in force may still read:
/// with small segments and frequent checkpoints, the segments the downstream
/// tasks consumed are removed while the job runs, and the job resumes from
/// its checkpoints after a restart without them.
#[test]
fn consumed_exchange_segments_are_removed_and_the_job_resumes_without_them() {
    let small = |c: &mut sluice::config::Config| c.topic_defaults.segment_bytes = 64 << 10;
    let s = with_nexmark_topic(2, small);
    let (events, records) = events(30_000);
    let spec: JobSpec = serde_json::from_value(json!({
        "name": "sessions", "sources": [{"topic": "nexmark"}], "max_out_of_orderness_ms": 4000,
        "checkpoint_interval_ms": 50,
        "operators": [
            {"plugin": "nexmark@0.1.0", "config": {"query": "q11", "phase": "partial"}},
            {"plugin": "nexmark@0.1.0", "config": {"query": "q11", "phase": "final"}, "partition_by_key": true}
        ],
        "sinks": {"main": {"topic": {"topic": "out"}}}
    }))
    .unwrap();
    s.engine.create_job(spec).expect("job starts");
    ingest(&s, "nexmark", &records, 500);
    let last = events.iter().map(|e| e.event.timestamp()).max().unwrap();
    flush_windows(&s, "nexmark", last);
    settle(&s, "sessions", "out");

    let exchange = sluice::job::plan::exchange_topic("sessions", 0);
    let x = s.engine.log.topic(&exchange).expect("exchange topic");
    let exchanged: u64 = x.partitions().iter().map(|p| p.end_offset()).sum();
    wait_for(
        "consumed exchange segments to be removed",
        Duration::from_secs(30),
        || {
            x.partitions()
                .iter()
                .all(|p| segment_files(&x.dir().join(p.id().to_string())).len() == 1)
                .then_some(())
        },
    );
    let removed: u64 = x.partitions().iter().map(|p| p.start_offset()).sum();
    assert!(
        removed > exchanged / 2,
        "{removed} of {exchanged} exchanged records removed"
    );
    let want: Vec<(String, i64, Value)> = reference::final_results(Query::Q11, &events)
        .into_iter()
        .map(|r| (r.key, r.timestamp, r.value))
        .collect();
    let got = read_all(&s, "out");
    assert_eq!(sorted(got.clone()), sorted(want));
    drop(x);

    // Restart on the same data dir: the job resumes from its checkpoints,
    // reads on from where they say, and writes nothing twice.
    let s = Server::start_in(s.stop(), 2, small);
    wait_for("the job to run again", Duration::from_secs(30), || {
        let (_, state, rt, _) = s.engine.job("sessions")?;
        assert!(
            matches!(state, sluice::job::engine::JobState::Running),
            "after the restart the job is {state:?}"
        );
        rt.map(|_| ())
    });
    settle(&s, "sessions", "out");
    assert_eq!(read_all(&s, "out"), got, "the output after the restart");
    let (_, state, _, _) = s.engine.job("sessions").unwrap();
    assert!(
        matches!(state, sluice::job::engine::JobState::Running),
        "after the restart the job is {state:?}"
    );
}

#[test]
fn q5_hot_items_in_two_phases_match_the_reference() {
    windowed_query_matches_reference(1, "q5");
    windowed_query_matches_reference(2, "q5");
}

#[test]
fn q7_highest_bids_in_two_phases_match_the_reference() {
    windowed_query_matches_reference(2, "q7");
}

#[test]
fn q8_new_users_in_two_phases_match_the_reference() {
    windowed_query_matches_reference(2, "q8");
}

#[test]
fn q11_sessions_in_two_phases_match_the_reference() {
    windowed_query_matches_reference(1, "q11");
    windowed_query_matches_reference(2, "q11");
}

#[test]
fn q0_passes_every_bid_through_with_one_and_two_shards() {
    stateless_query_matches_reference(1, "q0");
    stateless_query_matches_reference(2, "q0");
}

#[test]
fn q1_converts_prices_with_one_and_two_shards() {
    stateless_query_matches_reference(1, "q1");
    stateless_query_matches_reference(2, "q1");
}

#[test]
fn q2_selects_every_123rd_auction_with_one_and_two_shards() {
    stateless_query_matches_reference(1, "q2");
    stateless_query_matches_reference(2, "q2");
}

/// Output partition contents depend only on the log: the same input gives
/// byte-identical output topics whatever the batch sizes and shard count,
/// also through a re-keying exchange.
#[test]
fn outputs_do_not_depend_on_batch_sizes_or_shard_count() {
    let two_phase = |q: &str| {
        json!([
            {"plugin": "nexmark@0.1.0", "config": {"query": q, "phase": "partial"}},
            {"plugin": "nexmark@0.1.0", "config": {"query": q, "phase": "final"}, "partition_by_key": true}
        ])
    };
    let jobs = [
        (
            "q1",
            json!([{"plugin": "nexmark@0.1.0", "config": {"query": "q1"}}]),
        ),
        ("q5", two_phase("q5")),
        ("q11", two_phase("q11")),
    ];
    let mut runs: Vec<BTreeMap<(String, u32), Vec<u8>>> = Vec::new();
    for (shards, ingest_batch, job_batch) in [(1, 1_000, 1_024), (2, 97, 7), (2, 5_000, 65_536)] {
        let s = with_nexmark_topic(shards, |_| {});
        let (events, records) = events(10_000);
        ingest(&s, "nexmark", &records, ingest_batch);
        let last = events.iter().map(|e| e.event.timestamp()).max().unwrap();
        for (name, ops) in &jobs {
            let spec: JobSpec = serde_json::from_value(json!({
                "name": name, "sources": [{"topic": "nexmark"}], "batch_max_records": job_batch,
                "max_out_of_orderness_ms": 4000, "operators": ops,
                "sinks": {"main": {"topic": {"topic": format!("out-{name}")}}}
            }))
            .unwrap();
            s.engine.create_job(spec).expect("job starts");
        }
        flush_windows(&s, "nexmark", last);
        let mut bytes = BTreeMap::new();
        for (name, _) in &jobs {
            settle(&s, name, &format!("out-{name}"));
            let t = s.engine.log.topic(&format!("out-{name}")).unwrap();
            for p in t.partitions() {
                let mut b = Vec::new();
                p.reader()
                    .read(0, 1_000_000, 1 << 30, |rv| {
                        b.extend_from_slice(&rv.offset.to_le_bytes());
                        b.extend_from_slice(&rv.timestamp.to_le_bytes());
                        b.extend_from_slice(rv.key);
                        b.extend_from_slice(rv.value);
                    })
                    .unwrap();
                bytes.insert((name.to_string(), p.id()), b);
            }
        }
        assert!(
            bytes.values().filter(|b| !b.is_empty()).count() >= 6,
            "jobs produced output"
        );
        runs.push(bytes);
    }
    assert!(
        runs[0] == runs[1],
        "batching and shard count changed the output"
    );
    assert!(runs[0] == runs[2], "batching changed the output");
}
