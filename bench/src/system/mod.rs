//! The seam between the harness and what it measures: a [`System`] runs one workload over a
//! dataset for a number of repetitions and returns one [`Sample`] per timed repetition.
//!
//! Implementations here:
//! - [`reference::Reference`] (`reference`, `in-process`): sluice-gen's reference
//!   implementations, plain single-threaded Rust over events in memory, no engine;
//! - [`flink::Flink`] (`flink`, `local`): Apache Flink SQL in a local mini cluster, run by
//!   bench/peers/flink over the same events written as NDJSON files;
//! - [`sluice::Sluice`] (`sluice`, `in-process` or `http`): the engine itself, started in
//!   this process, its jobs running the bundled Wasm plugins;
//! - [`native::Native`] (`native`, `in-process`): the same plugin logic compiled natively
//!   and driven through `sluice_sdk::testing::Harness`, one thread, no engine, no Wasm.
//!
//! To add a system: implement [`System`], measure each timed repetition (with
//! [`crate::measure::Span`] in process, [`crate::measure::OpenLoop`] for latency,
//! [`crate::measure::Sampler`] for throughput over time), hand its output to
//! [`Job::verify`], and register it by name in [`by_name`].

pub mod flink;
pub mod native;
pub mod reference;
pub mod sluice;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use indicatif::ProgressBar;

use crate::BenchError;
use crate::check::{self, Answer, Output, Verdict};
use crate::dataset::Dataset;
use crate::measure::LatencySummary;
use crate::workload::Workload;

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// As fast as the system takes it (throughput).
    Closed,
    /// At a fixed rate, latency measured from intended send times.
    Open {
        /// Events per second.
        rate: f64,
        /// Events per send.
        batch: u64,
    },
}

/// One workload for one system: what to run, on what, how often.
pub struct Job<'a> {
    /// The workload.
    pub workload: Workload,
    /// Its input.
    pub data: &'a Dataset,
    /// Shards (engine threads) or parallelism requested.
    pub shards: u32,
    /// Closed or open loop.
    pub load: Load,
    /// Untimed repetitions first.
    pub warmup: u32,
    /// Timed repetitions.
    pub repetitions: u32,
    /// Where to show progress (its message and position belong to the system).
    pub progress: &'a ProgressBar,
    expected: OnceLock<Result<Option<Arc<Answer>>, String>>,
}

impl<'a> Job<'a> {
    /// A job; the expected answer is computed on the first [`Job::verify`].
    pub fn new(
        workload: Workload,
        data: &'a Dataset,
        shards: u32,
        load: Load,
        warmup: u32,
        repetitions: u32,
        progress: &'a ProgressBar,
    ) -> Self {
        Job {
            workload,
            data,
            shards,
            load,
            warmup,
            repetitions,
            progress,
            expected: OnceLock::new(),
        }
    }

    /// The same job with other shards, warm-up and repetitions, sharing the reference
    /// answer if this one has computed it already.
    pub fn with(&self, shards: u32, warmup: u32, repetitions: u32) -> Job<'a> {
        Job {
            workload: self.workload,
            data: self.data,
            shards,
            load: self.load,
            warmup,
            repetitions,
            progress: self.progress,
            expected: self.expected.clone(),
        }
    }

    /// Checks a repetition's output against the reference answer (computed once, untimed).
    pub fn verify(&self, output: Output) -> Result<Verdict, BenchError> {
        if matches!(output, Output::Unchecked { .. }) {
            return Ok(check::verdict(output, None));
        }
        let want = self.expected()?;
        Ok(check::verdict(output, want.map(|w| &**w)))
    }

    /// The number of records a correct answer has, if the harness has a reference for
    /// the workload (computed once, untimed, and reused by [`Job::verify`]).
    pub fn expected_rows(&self) -> Result<Option<u64>, BenchError> {
        Ok(self.expected()?.map(|w| w.len() as u64))
    }

    fn expected(&self) -> Result<Option<&Arc<Answer>>, BenchError> {
        let expected = self.expected.get_or_init(|| {
            self.progress
                .set_message(format!("{}: computing the reference answer", self.workload));
            check::expected(self.workload, self.data).map_err(|e| e.to_string())
        });
        match expected {
            Ok(want) => Ok(want.as_ref()),
            Err(message) => Err(BenchError::SystemFailed {
                system: "reference".into(),
                workload: self.workload.to_string(),
                message: message.clone(),
            }),
        }
    }

    /// Events in the input.
    pub fn events(&self) -> Result<u64, BenchError> {
        self.data.len()
    }
}

/// One timed repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Wall-clock seconds (what it includes is the system's [`System::measures`]).
    pub wall_s: f64,
    /// Input events processed.
    pub events: u64,
    /// CPU seconds spent by the system over the repetition, if known.
    pub cpu_s: Option<f64>,
    /// Peak resident memory, MiB, if known.
    pub peak_rss_mb: Option<f64>,
    /// Latency, for open-loop runs.
    pub latency: Option<LatencySummary>,
    /// `[t_s, events/s]` throughput samples, if the system records them.
    pub timeline: Vec<[f64; 2]>,
    /// Start-up seconds outside `wall_s`, if any.
    pub startup_s: Option<f64>,
    /// Fixed seconds inside `wall_s` that any run pays whatever its input (a peer's job
    /// submission and teardown, measured with an empty job), if known.
    pub overhead_s: Option<f64>,
    /// The output checked against the reference.
    pub verdict: Verdict,
}

/// Something the harness can benchmark.
pub trait System {
    /// The `system` of its results rows: `sluice`, `native`, `reference`, `flink`, ...
    fn name(&self) -> &str;

    /// The `mode` of its results rows: `in-process`, `http`, `local`.
    fn mode(&self) -> &str;

    /// `Err(reason)` if it cannot run `workload` under `load`; the runner skips it and says
    /// why.
    fn supports(&self, workload: Workload, load: &Load) -> Result<(), String>;

    /// The `shards` of its rows when `requested` were asked for (`None` = not parallel).
    fn shards(&self, requested: u32) -> Option<u32> {
        Some(requested)
    }

    /// What its wall time and CPU time include under `load`, for the report (e.g. "parsing
    /// NDJSON from disk; excludes JVM start-up").
    fn measures(&self, load: &Load) -> String;

    /// Runs `job.warmup` untimed then `job.repetitions` timed repetitions and returns one
    /// sample per timed repetition, each with its output checked by [`Job::verify`].
    fn run(&mut self, job: &Job<'_>) -> Result<Vec<Sample>, BenchError>;
}

/// Runs `once` for every warm-up and timed repetition of `job`, keeping the timed samples
/// and advancing `job.progress` (for systems that measure one repetition at a time).
pub fn repeat(
    job: &Job<'_>,
    mut once: impl FnMut(u32, bool) -> Result<Sample, BenchError>,
) -> Result<Vec<Sample>, BenchError> {
    let total = job.warmup + job.repetitions;
    job.progress.set_length(u64::from(total));
    let mut samples = Vec::with_capacity(job.repetitions as usize);
    for i in 0..total {
        let timed = i >= job.warmup;
        job.progress.set_message(if timed {
            format!(
                "{}: repetition {}/{}",
                job.workload,
                i - job.warmup + 1,
                job.repetitions
            )
        } else {
            format!("{}: warm-up {}/{}", job.workload, i + 1, job.warmup)
        });
        let sample = once(i, timed)?;
        if timed {
            samples.push(sample);
        }
        job.progress.inc(1);
    }
    Ok(samples)
}

/// Settings a system may need to start.
#[derive(Debug, Clone)]
pub struct SystemSettings {
    /// bench/peers/flink/run.sh, or another runner with its interface.
    pub flink_runner: Option<PathBuf>,
    /// Source topic partitions per shard (sluice).
    pub partitions_per_shard: u32,
    /// Source topic partitions whatever the shard count, instead of per shard (sluice).
    pub partitions: Option<u32>,
    /// Checkpoint interval of the benchmark jobs, ms (sluice).
    pub checkpoint_interval_ms: u64,
    /// Client threads of the sluice http modes.
    pub http_clients: usize,
    /// Where the in-process sluice jobs' results go.
    pub sink: sluice::Sink,
}

impl Default for SystemSettings {
    fn default() -> Self {
        SystemSettings {
            flink_runner: None,
            partitions_per_shard: 2,
            partitions: None,
            checkpoint_interval_ms: sluice::CHECKPOINT_INTERVAL_MS,
            http_clients: sluice::http::DEFAULT_CLIENTS,
            sink: sluice::Sink::Topic,
        }
    }
}

/// Names `by_name` accepts (`sluice` runs in process; `sluice-http` is its HTTP mode).
pub const SYSTEMS: [&str; 6] = [
    "sluice",
    "sluice-http",
    "sluice-http-json",
    "native",
    "reference",
    "flink",
];

/// The system called `name`.
pub fn by_name(name: &str, settings: &SystemSettings) -> Result<Box<dyn System>, BenchError> {
    match name {
        "reference" => Ok(Box::new(reference::Reference)),
        "flink" => Ok(Box::new(flink::Flink::new(
            settings
                .flink_runner
                .clone()
                .unwrap_or_else(flink::default_runner),
        ))),
        "sluice" => Ok(Box::new(sluice::Sluice::new(
            sluice::Mode::InProcess,
            settings,
        )?)),
        "sluice-http" => Ok(Box::new(sluice::Sluice::new(sluice::Mode::Http, settings)?)),
        "sluice-http-json" => Ok(Box::new(sluice::Sluice::new(
            sluice::Mode::HttpJson,
            settings,
        )?)),
        "native" => Ok(Box::new(native::Native)),
        _ => Err(BenchError::usage(
            "--system",
            format!("`{name}` is not a system"),
            format!("use one of {}", SYSTEMS.join(", ")),
        )),
    }
}
