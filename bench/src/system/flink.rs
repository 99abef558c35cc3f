//! The `flink` system: Apache Flink SQL in a local mini cluster (mode `local`), driven by
//! bench/peers/flink/run.sh over the dataset written as NDJSON part files (one per unit of
//! parallelism), the same files Sluice's HTTP ingest takes.
//!
//! One runner process per workload: it starts the JVM (timed separately as start-up), counts
//! the query's result rows once (also the warm-up), then runs the timed repetitions into a
//! blackhole sink and prints one JSON line per repetition, parsed here. Flink's output is
//! checked by row count only.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::{Job, Load, Sample, System};
use crate::BenchError;
use crate::check::Output;
use crate::generate::write::{DEFAULT_BATCH, Format, WriteOptions};
use crate::workload::Workload;

/// Exit status of run.sh when Flink is not installed.
const EXIT_NOT_INSTALLED: i32 = 3;
/// Lines of the runner's log kept for error messages.
const LOG_TAIL_LINES: usize = 60;

/// bench/peers/flink/run.sh in this source tree, unless `SLUICE_FLINK_RUNNER` names another.
pub fn default_runner() -> PathBuf {
    std::env::var_os("SLUICE_FLINK_RUNNER").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/peers/flink/run.sh")),
        PathBuf::from,
    )
}

/// Flink through its runner script.
#[derive(Debug, Clone)]
pub struct Flink {
    runner: PathBuf,
}

/// One line of the runner's output (bench/peers/flink/nexmark_flink.py).
#[derive(Debug, Deserialize)]
struct RunnerLine {
    query: String,
    events: u64,
    wall_s: f64,
    result_rows: Option<u64>,
    startup_s: Option<f64>,
    job_overhead_s: Option<f64>,
    cpu_s: Option<f64>,
    peak_rss_mb: Option<f64>,
}

impl Flink {
    /// Flink run by `runner` (the interface of bench/peers/flink/run.sh).
    pub fn new(runner: PathBuf) -> Self {
        Flink { runner }
    }

    fn failed(&self, job: &Job<'_>, message: String) -> BenchError {
        BenchError::SystemFailed {
            system: "flink".into(),
            workload: job.workload.to_string(),
            message,
        }
    }
}

impl System for Flink {
    fn name(&self) -> &str {
        "flink"
    }

    fn mode(&self) -> &str {
        "local"
    }

    fn supports(&self, workload: Workload, load: &Load) -> Result<(), String> {
        if *load != Load::Closed {
            return Err(
                "the Flink peer runs closed loop only (it reads files at full speed)".into(),
            );
        }
        match workload {
            Workload::Nexmark(_) => Ok(()),
            Workload::Scenario(_) => Err(format!("the Flink peer has no SQL for {workload}")),
        }
    }

    fn measures(&self, _load: &Load) -> String {
        "Flink SQL, local mini cluster, reading the NDJSON part files from disk (one per \
         parallel source task); wall time from job submission to job end, so it includes \
         planning, code generation, mini-cluster start (see its job overhead) and JSON \
         parsing; JVM start-up excluded and shown separately; CPU and peak RSS are the JVM's; \
         checked by result-row count"
            .into()
    }

    fn run(&mut self, job: &Job<'_>) -> Result<Vec<Sample>, BenchError> {
        let Workload::Nexmark(query) = job.workload else {
            return Err(self.failed(job, "only Nexmark queries have Flink SQL".into()));
        };
        let options = WriteOptions {
            format: Format::Ndjson,
            parts: job.shards,
            batch: DEFAULT_BATCH,
        };
        job.progress
            .set_message(format!("{}: writing NDJSON input", job.workload));
        let (dir, manifest) = job.data.files(&options, job.progress)?;

        job.progress.set_length(u64::from(job.repetitions));
        job.progress.set_position(0);
        job.progress
            .set_message(format!("{}: starting Flink", job.workload));
        let mut child = Command::new(&self.runner)
            .arg("--input")
            .arg(&dir)
            .args(["--queries", &query.to_string()])
            .args(["--events", &manifest.records.to_string()])
            .args(["--parallelism", &job.shards.to_string()])
            .args(["--warmup", &job.warmup.to_string()])
            .args(["--repetitions", &job.repetitions.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::io("starting the Flink runner", &self.runner, e))?;

        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL_LINES)));
        let log = child.stderr.take().map(|stderr| {
            let (tail, progress) = (Arc::clone(&tail), job.progress.clone());
            let workload = job.workload;
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(msg) = line.strip_prefix("nexmark_flink: ") {
                        progress.set_message(format!("{workload}: {msg}"));
                    }
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == LOG_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            })
        });

        let mut samples = Vec::new();
        let mut bad_line = None;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !line.starts_with('{') {
                    continue;
                }
                match serde_json::from_str::<RunnerLine>(&line) {
                    Ok(run) if run.query == query.to_string() => {
                        let output = match run.result_rows {
                            Some(n) => Output::Count(n),
                            None => Output::Unchecked {
                                rows: 0,
                                reason: "the runner did not count result rows".into(),
                            },
                        };
                        samples.push(Sample {
                            wall_s: run.wall_s,
                            events: run.events,
                            cpu_s: run.cpu_s,
                            peak_rss_mb: run.peak_rss_mb,
                            latency: None,
                            timeline: Vec::new(),
                            startup_s: run.startup_s,
                            overhead_s: run.job_overhead_s,
                            verdict: job.verify(output)?,
                        });
                        job.progress.inc(1);
                    }
                    Ok(_) => {}
                    Err(e) => bad_line = Some(format!("unreadable runner output `{line}`: {e}")),
                }
            }
        }
        let status = child
            .wait()
            .map_err(|e| BenchError::io("waiting for the Flink runner", &self.runner, e))?;
        if let Some(handle) = log {
            let _ = handle.join();
        }
        let log = {
            let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            tail.iter().cloned().collect::<Vec<_>>().join("\n")
        };
        if status.code() == Some(EXIT_NOT_INSTALLED) {
            return Err(BenchError::PeerMissing {
                system: "flink",
                message: log,
            });
        }
        if !status.success() {
            return Err(self.failed(
                job,
                format!("runner exited with {status}; its log ends:\n{log}"),
            ));
        }
        if let Some(bad) = bad_line {
            return Err(self.failed(job, bad));
        }
        if samples.len() != job.repetitions as usize {
            return Err(self.failed(
                job,
                format!(
                    "runner reported {} of {} repetitions; its log ends:\n{log}",
                    samples.len(),
                    job.repetitions
                ),
            ));
        }
        Ok(samples)
    }
}
