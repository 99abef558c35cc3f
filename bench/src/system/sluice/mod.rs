//! The `sluice` system: the engine itself, started in this process on a temporary data dir
//! for every repetition.
//!
//! - Mode `in-process`, closed loop: the dataset is preloaded into the source topic
//!   (untimed); the timed span runs from `create_job` until the job has read every record
//!   and its output topic holds the whole answer (or stopped growing), and the output is
//!   then checked against the reference. CPU time is the whole process's over the span
//!   (every shard thread, the epoch ticker, the harness's 10 ms progress poll).
//! - Mode `in-process`, open loop (q0, q1): batches are ingested on a fixed schedule while the
//!   job runs, and each batch's latency is measured from its intended send time until the
//!   output topic holds its records (see `latency`).
//! - Mode `http`: see `http`.
//!
//! Everything engine-specific (starting it, preloading, watching a job) lives in `fixture`;
//! the records and job specs of each workload in `input`.

pub mod fixture;
pub mod http;
pub mod input;
pub mod latency;

use std::time::Instant;

use sluice::job::spec::{MAX_CHECKPOINT_MS, MIN_CHECKPOINT_MS, SinkSpec};
use sluice::log::FsyncPolicy;
use sluice_gen::reference::Query;

use super::{Job, Load, Sample, System, SystemSettings, repeat};
use crate::BenchError;
use crate::check::Output;
use crate::measure::Span;
use crate::measure::timeline::rates;
use crate::workload::Workload;
use fixture::Instance;
use input::{OUTPUT_TOPIC, input, job_spec};

/// Default checkpoint interval of benchmark jobs: the engine's default (1 s).
pub const CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// Most source partitions per shard (or in all, with `--partitions`) accepted.
pub const MAX_PARTITIONS_PER_SHARD: u32 = 64;

/// How many partitions a job's source topic has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitions {
    /// This many for each shard.
    PerShard(u32),
    /// This many whatever the shard count.
    Fixed(u32),
}

impl Partitions {
    /// Source partitions for `shards` shards.
    pub fn for_shards(self, shards: u32) -> u32 {
        match self {
            Partitions::PerShard(n) => (shards * n).max(1),
            Partitions::Fixed(n) => n,
        }
    }
}

impl std::fmt::Display for Partitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Partitions::PerShard(n) => write!(f, "{n} partitions per shard"),
            Partitions::Fixed(n) => write!(f, "{n} partitions for any number of shards"),
        }
    }
}

/// How the `sluice` system reaches the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Engine` calls in this process.
    InProcess,
    /// The HTTP API on loopback, server in this process, MessagePack bodies.
    Http,
    /// The same with JSON bodies.
    HttpJson,
}

/// Where the in-process jobs' results go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Appended to the output topic and checked record by record.
    Topic,
    /// Counted and dropped (Flink's Nexmark runs use blackhole sinks); checked by count.
    Discard,
}

impl std::str::FromStr for Sink {
    type Err = String;

    fn from_str(s: &str) -> Result<Sink, String> {
        match s {
            "topic" => Ok(Sink::Topic),
            "discard" => Ok(Sink::Discard),
            other => Err(format!("`{other}` is not a sink; use topic or discard")),
        }
    }
}

/// The engine as a benchmarked system.
#[derive(Debug, Clone)]
pub struct Sluice {
    /// How it is reached.
    pub mode: Mode,
    /// Source topic partitions.
    pub partitions: Partitions,
    /// Checkpoint interval of the benchmark jobs, ms.
    pub checkpoint_interval_ms: u64,
    /// Client threads of the http modes.
    pub http_clients: usize,
    /// Where the in-process jobs' results go.
    pub sink: Sink,
    /// The mode as rows show it: with the checkpoint interval when it is not the
    /// default, so that such rows sit beside the default ones instead of replacing them.
    label: String,
}

impl Sluice {
    /// The system in `mode` with the partitions and checkpoint interval of `settings`.
    pub fn new(mode: Mode, settings: &SystemSettings) -> Result<Sluice, BenchError> {
        let ms = settings.checkpoint_interval_ms;
        if !(MIN_CHECKPOINT_MS..=MAX_CHECKPOINT_MS).contains(&ms) {
            return Err(BenchError::usage(
                "--checkpoint-interval-ms",
                format!("is {ms}"),
                format!("use {MIN_CHECKPOINT_MS}..={MAX_CHECKPOINT_MS}"),
            ));
        }
        if !(1..=MAX_PARTITIONS_PER_SHARD).contains(&settings.partitions_per_shard) {
            return Err(BenchError::usage(
                "--partitions-per-shard",
                format!("is {}", settings.partitions_per_shard),
                format!("use 1..={MAX_PARTITIONS_PER_SHARD}"),
            ));
        }
        let partitions = match settings.partitions {
            None => Partitions::PerShard(settings.partitions_per_shard),
            Some(n) if (1..=MAX_PARTITIONS_PER_SHARD).contains(&n) => Partitions::Fixed(n),
            Some(n) => {
                return Err(BenchError::usage(
                    "--partitions",
                    format!("is {n}"),
                    format!("use 1..={MAX_PARTITIONS_PER_SHARD}"),
                ));
            }
        };
        if !(1..=http::MAX_CLIENTS).contains(&settings.http_clients) {
            return Err(BenchError::usage(
                "--http-clients",
                format!("is {}", settings.http_clients),
                format!("use 1..={}", http::MAX_CLIENTS),
            ));
        }
        let base = match mode {
            Mode::InProcess => "in-process",
            Mode::Http => "http",
            Mode::HttpJson => "http-json",
        };
        let mut label = base.to_owned();
        if ms != CHECKPOINT_INTERVAL_MS {
            label.push_str(&format!(", checkpoint every {ms} ms"));
        }
        if settings.sink == Sink::Discard {
            label.push_str(", discard sink");
        }
        if let Partitions::Fixed(n) = partitions {
            label.push_str(&format!(", {n} partitions"));
        }
        Ok(Sluice {
            mode,
            label,
            http_clients: settings.http_clients,
            sink: settings.sink,
            partitions,
            checkpoint_interval_ms: ms,
        })
    }
}

impl System for Sluice {
    fn name(&self) -> &str {
        "sluice"
    }

    fn mode(&self) -> &str {
        &self.label
    }

    fn supports(&self, workload: Workload, load: &Load) -> Result<(), String> {
        if self.sink == Sink::Discard {
            if self.mode != Mode::InProcess || *load != Load::Closed {
                return Err(
                    "the discard sink applies to in-process closed-loop runs; drop `--sink discard`"
                        .into(),
                );
            }
            // The check counts every dropped output; the scenario jobs leave some outputs
            // without a sink, and those are dropped (and counted) too.
            if !matches!(workload, Workload::Nexmark(_)) {
                return Err(
                    "the discard sink applies to the Nexmark queries (as in Flink's runs); drop \
                     `--sink discard` for the scenarios"
                        .into(),
                );
            }
        }
        match (self.mode, load, workload) {
            (Mode::InProcess, Load::Closed, _) => Ok(()),
            (Mode::InProcess, Load::Open { .. }, Workload::Nexmark(Query::Q0 | Query::Q1)) => {
                Ok(())
            }
            (Mode::InProcess, Load::Open { .. }, _) => Err(
                "open-loop latency is measured on q0 and q1 only: the watcher needs one output \
                 per bid (windowed queries would also add their window to every latency); use \
                 --workload q0 or q1"
                    .into(),
            ),
            (Mode::Http | Mode::HttpJson, _, Workload::Nexmark(_)) => Ok(()),
            (Mode::Http | Mode::HttpJson, _, _) => {
                Err("the http modes ingest Nexmark bids into a Nexmark query's view".into())
            }
        }
    }

    fn measures(&self, load: &Load) -> String {
        match (self.mode, load) {
            (Mode::InProcess, Load::Open { batch, .. }) => format!(
                "the engine in this process on a fresh temp dir; the job starts first, then \
                 batches of {batch} events are ingested (Engine::ingest into the source topic: \
                 {}, fsync {}) at their intended send times without waiting for acks; latency \
                 from each batch's intended send time until the output topic holds as many \
                 records as the bids sent so far (so a stall counts against every batch due \
                 during it); events/s is the offered rate; includes Wasm, output appends and {} \
                 ms checkpoints; CPU is the whole process over the run; peak RSS includes the \
                 input held in memory",
                self.partitions,
                latency::SOURCE_FSYNC,
                self.checkpoint_interval_ms
            ),
            (Mode::InProcess, _) if self.sink == Sink::Discard => format!(
                "as in-process, but the job's results go to a discard sink (counted and dropped, \
                 as Flink's Nexmark runs send theirs to blackhole sinks) and are checked by \
                 count; input preloaded and written back to disk, untimed; timed from \
                 create_job until the last record the job read or dropped, once it has read \
                 every record and dropped the whole answer; includes Wasm, the exchange between \
                 phases and {} ms checkpoints ({})",
                self.checkpoint_interval_ms, self.partitions
            ),
            (Mode::InProcess, _) => format!(
                "the engine in this process on a fresh temp dir, input preloaded into the source \
                 topic ({}) and written back to disk, untimed; timed from \
                 create_job until the last record the job read or wrote, once it has read every \
                 record and its output topic holds the whole answer; includes \
                 Wasm, the exchange between phases, output appends and {} ms checkpoints; CPU \
                 is the whole process over that span; peak RSS includes the input held in \
                 memory",
                self.partitions, self.checkpoint_interval_ms
            ),
            (Mode::Http | Mode::HttpJson, _) => http::MEASURES
                .replace("{clients}", &self.http_clients.to_string())
                .replace("{partitions}", &self.partitions.to_string()),
        }
    }

    fn run(&mut self, job: &Job<'_>) -> Result<Vec<Sample>, BenchError> {
        match (self.mode, job.load) {
            (Mode::InProcess, Load::Closed) => self.closed_loop(job),
            (Mode::InProcess, Load::Open { rate, batch }) => latency::run(self, job, rate, batch),
            (Mode::Http | Mode::HttpJson, _) => http::run(self, job),
        }
    }
}

impl Sluice {
    /// Source partitions for `shards` shards.
    pub fn partitions(&self, shards: u32) -> u32 {
        self.partitions.for_shards(shards)
    }

    fn closed_loop(&self, job: &Job<'_>) -> Result<Vec<Sample>, BenchError> {
        let partitions = self.partitions(job.shards);
        job.progress
            .set_message(format!("{}: encoding the input", job.workload));
        let data = input(job.workload, job.data, partitions)?;
        let expected = job.expected_rows()?;
        repeat(job, |i, _| {
            job.progress.set_message(format!(
                "{}: preloading {} records (repetition {})",
                job.workload,
                data.records,
                i + 1
            ));
            let instance = Instance::start(job.shards, |_| {})?;
            instance.create_topic(data.topic, partitions, FsyncPolicy::Never)?;
            for chunk in &data.chunks {
                instance.ingest(data.topic, chunk.clone())?;
            }
            instance.write_back()?;
            let mut spec = job_spec("bench", job.workload, job.data, self.checkpoint_interval_ms)?;
            let output = match self.sink {
                Sink::Topic => Some(OUTPUT_TOPIC),
                Sink::Discard => {
                    for sink in spec.sinks.values_mut() {
                        if matches!(sink, SinkSpec::Topic { topic } if topic == OUTPUT_TOPIC) {
                            *sink = SinkSpec::Discard;
                        }
                    }
                    None
                }
            };
            job.progress
                .set_message(format!("{}: running the job", job.workload));
            let span = Span::start();
            let started = Instant::now();
            instance.create_job(spec)?;
            let settled = instance.wait_settled("bench", output, data.records, expected)?;
            let usage = span.finish();
            let wall_s = (settled.finished - started).as_secs_f64();
            let output = match output {
                Some(topic) => Output::Records(instance.read_topic(topic)?),
                None => Output::Count(settled.progress.output),
            };
            drop(instance);
            Ok(Sample {
                wall_s,
                events: data.events,
                cpu_s: Some(usage.cpu_s),
                peak_rss_mb: usage.peak_rss_mb,
                latency: None,
                timeline: rates(&settled.read_curve),
                startup_s: None,
                overhead_s: None,
                verdict: job.verify(output)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_partition_count_does_not_follow_the_shards() {
        let settings = |partitions| SystemSettings {
            partitions,
            ..SystemSettings::default()
        };
        let per_shard = Sluice::new(Mode::InProcess, &settings(None)).unwrap();
        assert_eq!([1, 2].map(|s| per_shard.partitions(s)), [2, 4]);
        let fixed = Sluice::new(Mode::InProcess, &settings(Some(3))).unwrap();
        assert_eq!([1, 2].map(|s| fixed.partitions(s)), [3, 3]);
        assert!(Sluice::new(Mode::InProcess, &settings(Some(0))).is_err());
    }
}
