//! Nexmark queries as real jobs (bundled `nexmark` plugin, real log, real
//! shards), checked against the straightforward reference implementations of
//! `sluice-gen` over the same generated events, for 1 and 2 shards.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sluice::job::ingest::NewRecords;
use sluice::job::spec::JobSpec;
use sluice::shard::IngestRecord;
use sluice_gen::nexmark::{NexmarkConfig, NexmarkEvent, NexmarkGenerator};
use sluice_gen::reference::{self, Query};
use support::{Server, wait_for};

const PARTITIONS: u32 = 4;

/// `n` Nexmark events (default generator, seeded) and the same as records.
fn events(n: u64) -> (Vec<NexmarkEvent>, NewRecords) {
    let cfg = NexmarkConfig {
        num_events: n,
        ..NexmarkConfig::default()
    };
    let events: Vec<NexmarkEvent> = NexmarkGenerator::new(cfg, 0).unwrap().collect();
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

/// Every record of every partition of `topic`: (key, timestamp, value).
fn read_all(s: &Server, topic: &str) -> Vec<(String, i64, Value)> {
    let t = s.engine.log.topic(topic).expect("output topic exists");
    let mut out = Vec::new();
    for p in t.partitions() {
        let mut reader = p.reader();
        let mut from = p.start_offset();
        loop {
            let o = reader
                .read(from, 10_000, 16 << 20, |rv| {
                    out.push((
                        String::from_utf8_lossy(rv.key).into_owned(),
                        rv.timestamp,
                        rmp_serde::from_slice::<Value>(rv.value).expect("output is MessagePack"),
                    ))
                })
                .unwrap();
            if o.records == 0 {
                break;
            }
            from = o.next_offset;
        }
    }
    out
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
    let s = Server::start(shards, |_| {});
    s.engine
        .log
        .create_topic(sluice::log::TopicConfig {
            fsync: sluice::log::FsyncPolicy::Never,
            ..sluice::log::TopicConfig::new("nexmark", PARTITIONS)
        })
        .unwrap();
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
/// byte-identical output topics whatever the batch sizes and shard count.
#[test]
fn outputs_do_not_depend_on_batch_sizes_or_shard_count() {
    let mut runs: Vec<BTreeMap<u32, Vec<u8>>> = Vec::new();
    for (shards, ingest_batch, job_batch) in [(1, 1_000, 1_024), (2, 97, 7), (2, 5_000, 65_536)] {
        let s = Server::start(shards, |_| {});
        s.engine
            .log
            .create_topic(sluice::log::TopicConfig {
                fsync: sluice::log::FsyncPolicy::Never,
                ..sluice::log::TopicConfig::new("nexmark", PARTITIONS)
            })
            .unwrap();
        let (events, records) = events(10_000);
        ingest(&s, "nexmark", &records, ingest_batch);
        run_job(
            &s,
            json!({"name": "j", "sources": [{"topic": "nexmark"}], "batch_max_records": job_batch,
                   "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": "q1"}}],
                   "sinks": {"main": {"topic": {"topic": "out"}}}}),
            events.len() as u64,
        );
        let t = s.engine.log.topic("out").unwrap();
        let mut bytes = BTreeMap::new();
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
            bytes.insert(p.id(), b);
        }
        runs.push(bytes);
    }
    assert_eq!(
        runs[0], runs[1],
        "batching and shard count changed the output"
    );
    assert_eq!(runs[0], runs[2], "batching changed the output");
}
