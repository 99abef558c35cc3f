//! What the engine is given for a workload: the dataset's events encoded as log records in
//! ingest-sized chunks (plus, for the windowed Nexmark queries, one far-future person per
//! partition, and for the windowed scenarios a far-future copy of the last record per
//! partition, so that every window closes), and the job spec that runs the workload's
//! plugin over them.
//!
//! The records are exactly those the other systems see (sluice-gen's MessagePack encoding,
//! keyed as the generator keys them); the flush persons produce no result in any query.

use serde_json::{Value, json};
use sluice::job::ingest::NewRecords;
use sluice::job::spec::JobSpec;
use sluice::shard::IngestRecord;
use sluice::shard::route::partition_of;
use sluice_gen::reference::Query;
use sluice_gen::{EventRecord, RecordBuf};

use crate::BenchError;
use crate::dataset::Dataset;
use crate::workload::{Scenario, Workload};

/// Records per preload ingest call.
pub const PRELOAD_CHUNK: usize = 10_000;
/// Event time of the flush persons after the last event: past every window and session.
pub const FLUSH_AFTER_MS: i64 = 3_600_000;
/// Out-of-orderness bound of the Nexmark jobs (NEXMARK.md: the generator's disorder).
pub const NEXMARK_OUT_OF_ORDERNESS_MS: u64 = 4_000;
/// First person id of the flush persons, far above any generated id.
const FLUSH_PERSON_ID: u64 = 1 << 40;

/// A workload's input as log records.
#[derive(Debug, Clone)]
pub struct Input {
    /// The source topic.
    pub topic: &'static str,
    /// Records in ingest-sized chunks, in stream order.
    pub chunks: Vec<NewRecords>,
    /// Total records (events plus flush records).
    pub records: u64,
    /// Events of the dataset (what throughput is counted in).
    pub events: u64,
}

/// Appends one record to `out`.
pub fn push_record(out: &mut NewRecords, key: &[u8], timestamp: i64, value: &[u8]) {
    let k0 = out.data.len();
    out.data.extend_from_slice(key);
    let v0 = out.data.len();
    out.data.extend_from_slice(value);
    out.records.push(IngestRecord {
        timestamp,
        key: k0..v0,
        value: v0..out.data.len(),
        headers: Vec::new(),
    });
}

/// `events` as records in chunks of `chunk`.
pub fn encode<E: EventRecord>(events: &[E], chunk: usize) -> Result<Vec<NewRecords>, BenchError> {
    let mut rec = RecordBuf::default();
    let mut chunks = Vec::with_capacity(events.len().div_ceil(chunk.max(1)));
    for part in events.chunks(chunk.max(1)) {
        let mut out = NewRecords {
            data: Vec::with_capacity(part.len() * 160),
            records: Vec::with_capacity(part.len()),
        };
        for e in part {
            rec.fill(e)?;
            push_record(&mut out, &rec.key, rec.timestamp, &rec.value);
        }
        chunks.push(out);
    }
    Ok(chunks)
}

/// One person per partition of a `partitions`-partition topic, `FLUSH_AFTER_MS` after
/// `last_ms`: every window and session of the real events then closes, and no query
/// reports them (they open no auction and place no bid).
pub fn flush_persons(partitions: u32, last_ms: i64) -> Result<NewRecords, BenchError> {
    let mut out = NewRecords::default();
    let ts = last_ms + FLUSH_AFTER_MS;
    for (i, key) in flush_keys(partitions) {
        let person = json!({"person": {"id": FLUSH_PERSON_ID + i, "name": "Flush Person",
            "email_address": "flush@example.com", "credit_card": "0000 0000 0000 0000",
            "city": "Bend", "state": "OR", "date_time": ts, "extra": ""}});
        let value = rmp_serde::to_vec_named(&person).map_err(|e| {
            super::fixture::failed("flush", format!("encoding a flush person: {e}"))
        })?;
        push_record(&mut out, key.as_bytes(), ts, &value);
    }
    Ok(out)
}

/// Keys `flush-<i>` (with their `i`), the first that lands in each partition of a
/// `partitions`-partition topic: one record per key reaches every partition.
fn flush_keys(partitions: u32) -> Vec<(u64, String)> {
    let mut covered = vec![false; partitions as usize];
    let mut keys = Vec::with_capacity(partitions as usize);
    let mut i = 0u64;
    while keys.len() < partitions as usize {
        let key = format!("flush-{i}");
        let p = partition_of(key.as_bytes(), partitions) as usize;
        if !covered[p] {
            covered[p] = true;
            keys.push((i, key));
        }
        i += 1;
    }
    keys
}

/// Whether a Nexmark query runs as two phases with re-keying (the windowed ones).
pub fn two_phase(query: Query) -> bool {
    !matches!(query, Query::Q0 | Query::Q1 | Query::Q2)
}

/// The records of `workload` over `data` for a source topic of `partitions` partitions.
pub fn input(workload: Workload, data: &Dataset, partitions: u32) -> Result<Input, BenchError> {
    match workload {
        Workload::Nexmark(query) => {
            let events = data.nexmark_events()?;
            let mut chunks = encode(&events, PRELOAD_CHUNK)?;
            if two_phase(query) {
                let last = events
                    .iter()
                    .map(|e| e.event.timestamp())
                    .max()
                    .unwrap_or(0);
                chunks.push(flush_persons(partitions, last)?);
            }
            Ok(Input {
                topic: "nexmark",
                records: chunks.iter().map(|c| c.records.len() as u64).sum(),
                events: events.len() as u64,
                chunks,
            })
        }
        Workload::Scenario(Scenario::FraudRules) => {
            let payments = data.payments()?;
            let chunks = encode(&payments.payments, PRELOAD_CHUNK)?;
            Ok(Input {
                topic: "payments",
                records: chunks.iter().map(|c| c.records.len() as u64).sum(),
                events: payments.payments.len() as u64,
                chunks,
            })
        }
        Workload::Scenario(scenario) => scenario_input(scenario, data, partitions),
    }
}

/// The other scenarios: the dataset's records as generated, then one copy of the last
/// record per partition, `FLUSH_AFTER_MS` later, so that every window and session of the
/// real records closes (the copies' own far-future windows never do).
fn scenario_input(
    scenario: Scenario,
    data: &Dataset,
    partitions: u32,
) -> Result<Input, BenchError> {
    let (topic, _) = demo_job(scenario);
    let mut stream = data.spec().stream()?;
    let mut rec = RecordBuf::default();
    let mut chunks = Vec::new();
    let mut chunk = NewRecords::default();
    let (mut events, mut last_ms, mut last_value) = (0u64, i64::MIN, Vec::new());
    while stream.next_record(&mut rec)? {
        push_record(&mut chunk, &rec.key, rec.timestamp, &rec.value);
        events += 1;
        if rec.timestamp >= last_ms {
            last_ms = rec.timestamp;
            last_value.clone_from(&rec.value);
        }
        if chunk.records.len() == PRELOAD_CHUNK {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    if events > 0 {
        for (_, key) in flush_keys(partitions) {
            push_record(
                &mut chunk,
                key.as_bytes(),
                last_ms + FLUSH_AFTER_MS,
                &last_value,
            );
        }
    }
    if !chunk.records.is_empty() {
        chunks.push(chunk);
    }
    Ok(Input {
        topic,
        records: chunks.iter().map(|c| c.records.len() as u64).sum(),
        events,
        chunks,
    })
}

/// The source topic and the shipped demo job of a scenario's plugin.
fn demo_job(scenario: Scenario) -> (&'static str, &'static str) {
    match scenario {
        Scenario::FraudRules => ("payments", FRAUD_DEMO_JOB),
        Scenario::SurgePricing => (
            "rides",
            include_str!("../../../../plugins/surge-pricing/demo-job.json"),
        ),
        Scenario::SalesRollup => (
            "shop",
            include_str!("../../../../plugins/sales-rollup/demo-job.json"),
        ),
        Scenario::Sessionize => (
            "shop",
            include_str!("../../../../plugins/sessionize/demo-job.json"),
        ),
        Scenario::Viewers => (
            "heartbeats",
            include_str!("../../../../plugins/viewers/demo-job.json"),
        ),
        Scenario::Leaderboard => (
            "scores",
            include_str!("../../../../plugins/top-k/demo-job.json"),
        ),
    }
}

/// The output the job's results go to.
pub const OUTPUT_TOPIC: &str = "results";

/// The job running `workload`, reading `input.topic`, results to [`OUTPUT_TOPIC`].
/// Nexmark q0–q2 are one operator; q5, q7, q8 and q11 are a partial phase per source
/// partition and a final phase after re-partitioning by key; fraud-rules is the plugin's
/// demo job with the dataset's rule thresholds and its alerts sent to a topic; the other
/// scenarios are their plugins' demo jobs with `main` sent to a topic.
pub fn job_spec(
    name: &str,
    workload: Workload,
    data: &Dataset,
    checkpoint_interval_ms: u64,
) -> Result<JobSpec, BenchError> {
    let sinks = json!({"main": {"topic": {"topic": OUTPUT_TOPIC}}});
    let spec: Value = match workload {
        Workload::Nexmark(query) if two_phase(query) => json!({
            "name": name, "sources": [{"topic": "nexmark"}],
            "max_out_of_orderness_ms": NEXMARK_OUT_OF_ORDERNESS_MS,
            "checkpoint_interval_ms": checkpoint_interval_ms,
            "operators": [
                {"plugin": "nexmark@0.1.0", "config": {"query": query.to_string(), "phase": "partial"}},
                {"plugin": "nexmark@0.1.0", "config": {"query": query.to_string(), "phase": "final"},
                 "partition_by_key": true}
            ],
            "sinks": sinks
        }),
        Workload::Nexmark(query) => json!({
            "name": name, "sources": [{"topic": "nexmark"}],
            "max_out_of_orderness_ms": NEXMARK_OUT_OF_ORDERNESS_MS,
            "checkpoint_interval_ms": checkpoint_interval_ms,
            "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": query.to_string()}}],
            "sinks": sinks
        }),
        Workload::Scenario(Scenario::FraudRules) => {
            let mut spec: Value = serde_json::from_str(FRAUD_DEMO_JOB).map_err(|e| {
                super::fixture::failed("fraud-rules", format!("demo-job.json: {e}"))
            })?;
            let rules = &data.payments()?.rules;
            spec["name"] = json!(name);
            spec["checkpoint_interval_ms"] = json!(checkpoint_interval_ms);
            spec["operators"][0]["config"] = json!({
                "large_amount": rules.large_amount, "span_ms": rules.span_ms,
                "velocity_max": rules.velocity_max, "device_amount": rules.device_amount,
            });
            spec["sinks"] = json!({"alerts": {"topic": {"topic": OUTPUT_TOPIC}}});
            spec
        }
        Workload::Scenario(scenario) => {
            // The plugin's demo job as shipped, its `main` output into the results topic
            // (other outputs, such as top-k's `top`, have no sink and are dropped).
            let (topic, text) = demo_job(scenario);
            let mut spec: Value = serde_json::from_str(text).map_err(|e| {
                super::fixture::failed(name, format!("demo-job.json of {workload}: {e}"))
            })?;
            spec["name"] = json!(name);
            spec["sources"] = json!([{"topic": topic}]);
            spec["checkpoint_interval_ms"] = json!(checkpoint_interval_ms);
            spec["sinks"] = sinks;
            spec
        }
    };
    serde_json::from_value(spec)
        .map_err(|e| super::fixture::failed(name, format!("job spec for {workload}: {e}")))
}

/// The fraud-rules plugin's demo job, as shipped.
const FRAUD_DEMO_JOB: &str = include_str!("../../../../plugins/fraud-rules/demo-job.json");
