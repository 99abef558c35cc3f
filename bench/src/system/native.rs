//! The `native` system: the bundled plugins' own Rust code (the `nexmark` and `fraud-rules`
//! crates) compiled natively into the harness and driven through
//! `sluice_sdk::testing::Harness` — the same `Runtime` the Wasm exports call, the same ABI v1
//! batches (each record tagged with the watermark before it: largest event time so far
//! minus the job's out-of-orderness), one thread, no engine, no Wasm, no log.
//!
//! It measures what the query logic plus the SDK's batch decoding and output encoding cost,
//! so `sluice ÷ native` is what the engine (log, Wasm, exchange, sinks, checkpoints) adds.
//! Windowed Nexmark queries run in one phase over the whole stream (one instance sees every
//! partition) and get the same far-future flush persons the engine's input ends with.

use serde_json::json;
use sluice_gen::RecordBuf;
use sluice_gen::reference::OutputRecord;
use sluice_sdk::testing::{Harness, Input};

use super::sluice::input::{self, NEXMARK_OUT_OF_ORDERNESS_MS};
use super::{Job, Load, Sample, System, repeat};
use crate::BenchError;
use crate::check::{Answer, Output};
use crate::measure::Span;
use crate::workload::{Scenario, Workload};

/// Records per batch: the engine's default `batch_max_records`.
pub const BATCH: usize = 1_024;
/// Out-of-orderness of the fraud-rules demo job.
const FRAUD_OUT_OF_ORDERNESS_MS: i64 = 2_000;
/// Partitions the flush persons are spread over (any count closes every window here).
const FLUSH_PARTITIONS: u32 = 1;

/// The plugins compiled natively.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

fn failed(workload: Workload, e: impl std::fmt::Display) -> BenchError {
    BenchError::SystemFailed {
        system: "native".into(),
        workload: workload.to_string(),
        message: e.to_string(),
    }
}

/// The workload's input as harness batches (built untimed, consumed by one repetition).
fn batches(workload: Workload, job: &Job<'_>) -> Result<Vec<Vec<Input>>, BenchError> {
    let mut rec = RecordBuf::default();
    let mut inputs: Vec<Input> = Vec::new();
    let mut push =
        |rec: &RecordBuf| inputs.push(Input::raw(rec.timestamp, &rec.key, rec.value.clone()));
    match workload {
        Workload::Nexmark(q) => {
            let events = job.data.nexmark_events()?;
            for e in events.iter() {
                rec.fill(e)?;
                push(&rec);
            }
            if input::two_phase(q) {
                let last = events
                    .iter()
                    .map(|e| e.event.timestamp())
                    .max()
                    .unwrap_or(0);
                let flush = input::flush_persons(FLUSH_PARTITIONS, last)?;
                for r in &flush.records {
                    rec.key = flush.data[r.key.clone()].to_vec();
                    rec.value = flush.data[r.value.clone()].to_vec();
                    rec.timestamp = r.timestamp;
                    push(&rec);
                }
            }
        }
        Workload::Scenario(Scenario::FraudRules) => {
            for p in &job.data.payments()?.payments {
                rec.fill(p)?;
                push(&rec);
            }
        }
        other => return Err(failed(other, "no native build of this workload's plugin")),
    }
    let mut out = Vec::with_capacity(inputs.len().div_ceil(BATCH));
    let mut it = inputs.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(BATCH).collect());
    }
    Ok(out)
}

/// Sends every batch through `harness`, collecting the records of `output` (raw, decoded
/// after the timed span).
fn drive<O: sluice_sdk::Operator>(
    mut harness: Harness<O>,
    batches: Vec<Vec<Input>>,
    output: &str,
) -> Result<Vec<sluice_sdk::testing::Output>, sluice_sdk::Error> {
    let mut out = Vec::new();
    for batch in batches {
        harness.send_batch(batch)?;
        out.append(&mut harness.take(output));
    }
    Ok(out)
}

impl System for Native {
    fn name(&self) -> &str {
        "native"
    }

    fn mode(&self) -> &str {
        "in-process"
    }

    fn supports(&self, workload: Workload, load: &Load) -> Result<(), String> {
        if *load != Load::Closed {
            return Err("the native build runs closed loop only".into());
        }
        match workload {
            Workload::Nexmark(_) | Workload::Scenario(Scenario::FraudRules) => Ok(()),
            other => Err(format!("no native build of {other}'s plugin here")),
        }
    }

    fn shards(&self, _requested: u32) -> Option<u32> {
        Some(1)
    }

    fn measures(&self, _load: &Load) -> String {
        format!(
            "the plugin crate compiled natively, driven through sluice_sdk::testing::Harness on \
             one thread: ABI v1 batches of {BATCH} MessagePack records built before the timed \
             span, the SDK's decoding, the query, output encoding and the harness's copy of \
             each output; windowed queries in one phase; no engine, log or Wasm"
        )
    }

    fn run(&mut self, job: &Job<'_>) -> Result<Vec<Sample>, BenchError> {
        let workload = job.workload;
        let events = job.events()?;
        repeat(job, |_, _| {
            job.progress
                .set_message(format!("{workload}: encoding batches"));
            let input = batches(workload, job)?;
            job.progress.set_message(format!("{workload}: running"));
            let span = Span::start();
            let out = match workload {
                Workload::Nexmark(q) => {
                    let harness = Harness::<nexmark::Nexmark>::new(json!({"query": q.to_string()}))
                        .map_err(|e| failed(workload, e))?
                        .with_out_of_orderness(NEXMARK_OUT_OF_ORDERNESS_MS as i64);
                    drive(harness, input, "main")
                }
                _ => {
                    let rules = &job.data.payments()?.rules;
                    let harness = Harness::<fraud_rules::FraudRules>::new(json!({
                        "large_amount": rules.large_amount, "span_ms": rules.span_ms,
                        "velocity_max": rules.velocity_max, "device_amount": rules.device_amount,
                    }))
                    .map_err(|e| failed(workload, e))?
                    .with_out_of_orderness(FRAUD_OUT_OF_ORDERNESS_MS);
                    drive(harness, input, "alerts")
                }
            }
            .map_err(|e| failed(workload, e))?;
            let usage = span.finish();
            let records = out
                .iter()
                .map(|o| {
                    o.decode::<serde_json::Value>().map(|value| OutputRecord {
                        key: o.key_str(),
                        timestamp: o.timestamp,
                        value,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| failed(workload, e))?;
            Ok(Sample {
                wall_s: usage.wall_s,
                events,
                cpu_s: Some(usage.cpu_s),
                peak_rss_mb: usage.peak_rss_mb,
                latency: None,
                timeline: Vec::new(),
                startup_s: None,
                overhead_s: None,
                verdict: job.verify(Output::Records(Answer::of(records)))?,
            })
        })
    }
}
