//! The engine in this process for one repetition: an [`Instance`] starts `Engine::start` on
//! a fresh temporary data dir, creates and preloads topics through `Engine::ingest`, starts
//! jobs, watches them until their outputs have settled, and reads output topics back for
//! checking. Used by the `sluice` system's in-process and HTTP modes; nothing in it is timed.
//!
//! Invariant: an instance owns its data dir; dropping it shuts the engine down (final
//! checkpoints included) before the directory is removed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::config::Config;
use sluice::job::engine::{Engine, EngineError};
use sluice::job::ingest::NewRecords;
use sluice::job::spec::JobSpec;
use sluice::log::{FsyncPolicy, TopicConfig};
use sluice_gen::reference::OutputRecord;

use crate::BenchError;
use crate::check::Answer;

/// Longest a job may take to settle before the run is declared stuck.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(600);
/// How long a job's progress must stand still (lag 0, no new output) to count as settled
/// when the expected output size is unknown or not reached.
pub const QUIET_SPAN: Duration = Duration::from_millis(1_500);
/// Poll period of [`Instance::wait_settled`]. It does not limit the precision of the end
/// of the timed span, which is the job's own record of its last activity; it is long
/// enough that the poll takes no noticeable time from the shards.
const POLL: Duration = Duration::from_millis(10);
/// Most records read from an output topic for checking.
pub const MAX_OUTPUT_RECORDS: usize = 50_000_000;
/// Longest the driver keeps retrying an ingest the shards refuse as busy.
const BUSY_LIMIT: Duration = Duration::from_secs(60);

/// An engine with its own data dir and a small runtime to await its async calls.
pub struct Instance {
    /// The engine.
    pub engine: Arc<Engine>,
    rt: tokio::runtime::Runtime,
    dir: Option<tempfile::TempDir>,
}

/// Where a running job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records the first stage read from its sources.
    pub read: u64,
    /// Records behind the ends of every stage's inputs.
    pub lag: u64,
    /// Records in the output topic.
    pub output: u64,
    /// When a task of the job last read or wrote records.
    pub active: Option<Instant>,
}

/// When a job finished and what it did until then.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The last moment the job made progress (read input or wrote output).
    pub finished: Instant,
    /// `[seconds since start, records read]` every ~50 ms.
    pub read_curve: Vec<[f64; 2]>,
    /// The final progress.
    pub progress: Progress,
}

pub(crate) fn failed(workload: &str, message: impl Into<String>) -> BenchError {
    BenchError::SystemFailed {
        system: "sluice".into(),
        workload: workload.into(),
        message: message.into(),
    }
}

fn engine_error(what: &str, e: EngineError) -> BenchError {
    failed(what, e.to_string())
}

impl Instance {
    /// Starts an engine with `shards` shards on a new temp dir, `tweak` applied to its config.
    pub fn start(shards: u32, tweak: impl FnOnce(&mut Config)) -> Result<Instance, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("sluice-bench-")
            .tempdir()
            .map_err(|e| BenchError::io("creating a temp dir", std::env::temp_dir(), e))?;
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            shards: shards as usize,
            log_level: "warn".into(),
            ..Config::default()
        };
        tweak(&mut config);
        Instance::start_in(dir, config)
    }

    /// Starts an engine on `dir` (which may hold a previous run's data) with `config`.
    pub fn start_in(dir: tempfile::TempDir, config: Config) -> Result<Instance, BenchError> {
        let engine = Engine::start(config).map_err(|e| engine_error("start", e))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-driver")
            .enable_all()
            .build()
            .map_err(|e| failed("start", format!("tokio runtime: {e}")))?;
        Ok(Instance {
            engine,
            rt,
            dir: Some(dir),
        })
    }

    /// The data dir.
    pub fn data_dir(&self) -> &std::path::Path {
        self.engine.data_dir.as_path()
    }

    /// Writes the data dir's dirty pages to disk and waits for them, so that the kernel's
    /// writeback of a preload does not take CPU from the shards inside the timed span
    /// that follows (the page cache keeps the data).
    pub fn write_back(&self) -> Result<(), BenchError> {
        let dir = self.data_dir();
        let f = std::fs::File::open(dir).map_err(|e| {
            failed(
                "preload",
                format!("opening {} to write it back: {e}", dir.display()),
            )
        })?;
        // SAFETY: syncfs only reads the descriptor, which `f` keeps open.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(failed(
                "preload",
                format!(
                    "writing {} back to disk: {e}; check free space and errors on the disk \
                     holding it, or point TMPDIR at another disk",
                    dir.display()
                ),
            ));
        }
        Ok(())
    }

    /// Runs a future to completion on the instance's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Creates topic `name` with `partitions` partitions and `fsync`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        fsync: FsyncPolicy,
    ) -> Result<(), BenchError> {
        self.engine
            .log
            .create_topic(TopicConfig {
                fsync,
                ..TopicConfig::new(name, partitions)
            })
            .map(|_| ())
            .map_err(|e| failed(name, format!("creating topic `{name}`: {e}")))
    }

    /// Appends `records` to `topic` through the shards, waiting out "busy" refusals.
    pub fn ingest(&self, topic: &str, records: NewRecords) -> Result<(), BenchError> {
        self.rt
            .block_on(ingest(Arc::clone(&self.engine), topic.to_owned(), records))
    }

    /// Like [`Instance::ingest`], on the instance's runtime without waiting for the ack.
    pub fn spawn_ingest(
        &self,
        topic: &str,
        records: NewRecords,
    ) -> tokio::task::JoinHandle<Result<(), BenchError>> {
        self.rt
            .spawn(ingest(Arc::clone(&self.engine), topic.to_owned(), records))
    }

    /// Starts `spec`.
    pub fn create_job(&self, spec: JobSpec) -> Result<(), BenchError> {
        let name = spec.name.clone();
        self.engine
            .create_job(spec)
            .map_err(|e| failed(&name, format!("creating job `{name}`: {e}")))
    }

    /// Records in every partition of `topic` (0 if it does not exist yet).
    pub fn topic_records(&self, topic: &str) -> u64 {
        self.engine.log.topic(topic).map_or(0, |t| {
            t.partitions()
                .iter()
                .map(|p| p.end_offset() - p.start_offset())
                .sum()
        })
    }

    /// Where job `job` stands; `None` if it is not running. Its output is the records of
    /// topic `output`, or with `None` every output it dropped (to discard sinks, or
    /// for want of a sink).
    pub fn progress(&self, job: &str, output: Option<&str>) -> Option<Progress> {
        let (_, _, rt, _) = self.engine.job(job)?;
        let rt = rt?;
        let read = rt.tasks.first().map_or(0, |s| {
            s.iter().map(|t| t.records_in.load(Ordering::Relaxed)).sum()
        });
        Some(Progress {
            read,
            lag: rt.lag(),
            active: rt.last_active(),
            output: match output {
                Some(topic) => self.topic_records(topic),
                None => rt.stats.dropped.load(Ordering::Relaxed),
            },
        })
    }

    /// The first error job `job` reported, if any.
    fn job_error(&self, job: &str) -> Option<String> {
        let (_, state, rt, _) = self.engine.job(job)?;
        if let Some(e) = rt.and_then(|rt| rt.recent_errors().into_iter().next()) {
            return Some(format!("operator {}: {}", e.operator, e.message));
        }
        let state = format!("{state:?}");
        state.contains("Failed").then_some(state)
    }

    /// Waits until job `job` has read `input` records, has no lag, and either wrote
    /// `expected` output records or stood still for [`QUIET_SPAN`]. Returns the last moment
    /// it made progress: the end of the timed span.
    pub fn wait_settled(
        &self,
        job: &str,
        output: Option<&str>,
        input: u64,
        expected: Option<u64>,
    ) -> Result<Settled, BenchError> {
        let start = Instant::now();
        let mut last = Progress {
            read: 0,
            lag: u64::MAX,
            output: 0,
            active: None,
        };
        let mut moved = start;
        let mut curve = vec![[0.0, 0.0]];
        let mut next_sample = start + Duration::from_millis(50);
        loop {
            let now = Instant::now();
            let p = self.progress(job, output).unwrap_or(last);
            if p.read != last.read || p.output != last.output {
                moved = now;
            }
            last = p;
            if now >= next_sample {
                curve.push([(now - start).as_secs_f64(), p.read as f64]);
                next_sample = now + Duration::from_millis(50);
            }
            let all_read = p.read >= input && p.lag == 0;
            let complete = expected.is_some_and(|n| p.output >= n);
            if all_read && (complete || now - moved >= QUIET_SPAN) {
                let finished = p.active.unwrap_or(moved);
                let end = (finished - start).as_secs_f64();
                curve.retain(|[t, _]| *t < end);
                curve.push([end, p.read as f64]);
                return Ok(Settled {
                    finished,
                    read_curve: curve,
                    progress: p,
                });
            }
            if let Some(e) = self.job_error(job) {
                return Err(failed(job, format!("job `{job}` failed: {e}")));
            }
            if now - start > SETTLE_LIMIT {
                return Err(failed(
                    job,
                    format!(
                        "job `{job}` did not settle within {SETTLE_LIMIT:?} (SETTLE_LIMIT): read {} of {input} records, lag {}, {} output records",
                        p.read, p.lag, p.output
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Every record of every partition of `topic`, values decoded from MessagePack to JSON,
    /// in canonical form.
    pub fn read_topic(&self, topic: &str) -> Result<Answer, BenchError> {
        let Some(t) = self.engine.log.topic(topic) else {
            return Ok(Answer::default());
        };
        let mut out = Answer::default();
        let mut bad = None;
        for p in t.partitions() {
            let mut reader = p.reader();
            let mut from = p.start_offset();
            while from < p.end_offset() {
                let o = reader
                    .read(from, 10_000, 16 << 20, |rv| {
                        match rmp_serde::from_slice::<serde_json::Value>(rv.value) {
                            Ok(value) => out.push(OutputRecord {
                                key: String::from_utf8_lossy(rv.key).into_owned(),
                                timestamp: rv.timestamp,
                                value,
                            }),
                            Err(e) => bad = Some(format!("offset {}: {e}", rv.offset)),
                        }
                    })
                    .map_err(|e| failed(topic, format!("reading `{topic}`: {e}")))?;
                if o.records == 0 {
                    break;
                }
                from = o.next_offset;
                if out.len() > MAX_OUTPUT_RECORDS {
                    return Err(failed(
                        topic,
                        format!(
                            "`{topic}` holds more than {MAX_OUTPUT_RECORDS} records (MAX_OUTPUT_RECORDS); check a smaller dataset"
                        ),
                    ));
                }
            }
        }
        if let Some(e) = bad {
            return Err(failed(
                topic,
                format!("`{topic}` holds a value that is not MessagePack ({e})"),
            ));
        }
        Ok(out.finish())
    }

    /// Shuts the engine down and keeps its data dir (to start again on it).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.engine.shutdown();
        self.dir
            .take()
            .unwrap_or_else(|| unreachable!("the dir is taken only here"))
    }
}

/// Appends `records` to `topic`, retrying while the shards answer "busy".
async fn ingest(engine: Arc<Engine>, topic: String, records: NewRecords) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        match engine.ingest(&topic, records.clone(), None).await {
            Ok(_) => return Ok(()),
            Err(EngineError::Busy { retry_after_ms }) if started.elapsed() < BUSY_LIMIT => {
                tokio::time::sleep(Duration::from_millis(retry_after_ms.clamp(1, 50))).await;
            }
            Err(e) => return Err(failed(&topic, format!("ingest into `{topic}`: {e}"))),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.dir.is_some() {
            self.engine.shutdown();
        }
    }
}
