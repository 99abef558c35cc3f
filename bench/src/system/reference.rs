//! The `reference` system: sluice-gen's reference implementations timed as a baseline —
//! plain Rust, one thread, no engine, events already decoded in memory, results built as
//! JSON values. It is what the other systems are checked against, so its own Nexmark
//! output is not checked; its fraud-rules output is checked against the generator's ground
//! truth.

use sluice_gen::reference::{self, alert_records, detect_fraud};

use super::{Job, Load, Sample, System, repeat};
use crate::BenchError;
use crate::check::{Answer, Output};
use crate::measure::Span;
use crate::workload::{Scenario, Workload};

/// The reference implementations as a system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reference;

impl System for Reference {
    fn name(&self) -> &str {
        "reference"
    }

    fn mode(&self) -> &str {
        "in-process"
    }

    fn supports(&self, workload: Workload, load: &Load) -> Result<(), String> {
        if *load != Load::Closed {
            return Err("the reference runs closed loop only (it has no ingest to pace)".into());
        }
        match workload {
            Workload::Nexmark(_) | Workload::Scenario(Scenario::FraudRules) => Ok(()),
            Workload::Scenario(_) => Err(format!(
                "there is no reference implementation of {workload}"
            )),
        }
    }

    fn shards(&self, _requested: u32) -> Option<u32> {
        Some(1)
    }

    fn measures(&self, _load: &Load) -> String {
        "one thread over events already generated and decoded in memory (generation untimed): \
         no parsing, no I/O, no engine, so it bounds what the query logic alone costs; builds \
         every result as a JSON value; peak RSS includes the input held in memory"
            .into()
    }

    fn run(&mut self, job: &Job<'_>) -> Result<Vec<Sample>, BenchError> {
        job.progress
            .set_message(format!("{}: generating events in memory", job.workload));
        let events = job.events()?;
        match job.workload {
            Workload::Nexmark(query) => {
                let input = job.data.nexmark_events()?;
                repeat(job, |_, _| {
                    let span = Span::start();
                    let out = reference::final_results(query, &input);
                    let usage = span.finish();
                    let output = Output::Unchecked {
                        rows: out.len() as u64,
                        reason: "the reference is the answer others are checked against".into(),
                    };
                    Ok(sample(events, usage, job.verify(output)?))
                })
            }
            Workload::Scenario(Scenario::FraudRules) => {
                let data = job.data.payments()?;
                repeat(job, |_, _| {
                    let span = Span::start();
                    let alerts = detect_fraud(&data.rules, &data.payments);
                    let usage = span.finish();
                    let output = Output::Records(Answer::of(alert_records(&alerts)));
                    Ok(sample(events, usage, job.verify(output)?))
                })
            }
            other => Err(BenchError::usage(
                "--workload",
                format!("{other} has no reference implementation"),
                "run it with another system",
            )),
        }
    }
}

fn sample(events: u64, usage: crate::measure::Usage, verdict: crate::check::Verdict) -> Sample {
    Sample {
        wall_s: usage.wall_s,
        events,
        cpu_s: Some(usage.cpu_s),
        peak_rss_mb: usage.peak_rss_mb,
        latency: None,
        timeline: Vec::new(),
        startup_s: None,
        overhead_s: None,
        verdict,
    }
}
