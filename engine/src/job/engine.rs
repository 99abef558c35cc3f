//! The control plane: the one place that starts, stops, restores and
//! upgrades jobs, and that routes ingest to shards.
//!
//! It owns the log, the plugin store, the views and the shards. Jobs are
//! persisted as `<data>/jobs/<name>.json` (spec and desired state), so a
//! restart resumes what was running from its checkpoints. Every change to a
//! job goes through [`Engine`]'s job lock, so two requests never race on the
//! same job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::plan::{Plan, exchange_topic};
use super::plugins::{PluginStore, StoreError};
use super::spec::{JobSpec, SpecError, parse_plugin_ref};
use crate::config::Config;
use crate::log::{FsyncPolicy, Log, LogError, LogOptions};
use crate::shard::runtime::{JobRuntime, now_ms};
use crate::shard::{Command, ShardConfig, ShardHandle};
use crate::state::checkpoint::{self};
use crate::state::view::Views;
use crate::wasm::{HostConfig, InstanceLabel, WasmHost};

/// How long a job operation waits for the shards to answer.
const SHARD_REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Hint given to clients told to retry.
pub const RETRY_AFTER_MS: u64 = 200;
/// A job caught in this many shard panics within [`PANIC_WINDOW`] is paused instead of
/// restored once more: a bug that the job's data sets off would otherwise loop.
pub const MAX_PANICS_PER_JOB: usize = 3;
/// How far back [`MAX_PANICS_PER_JOB`] counts.
pub const PANIC_WINDOW: Duration = Duration::from_secs(60);

/// What a job is meant to be doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum JobState {
    Running,
    Stopped,
    /// Stopped by an error; resumes from its last checkpoint.
    Paused {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct JobFile {
    pub(super) spec: JobSpec,
    pub(super) state: JobState,
    pub(super) created_ms: i64,
}

pub(super) struct JobEntry {
    pub(super) file: JobFile,
    pub(super) runtime: Option<Arc<JobRuntime>>,
}

/// Errors of control-plane operations, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Plugin(#[from] StoreError),
    #[error("{0}")]
    Log(#[from] LogError),
    #[error("job `{0}` does not exist")]
    NoSuchJob(String),
    #[error("job `{0}` already exists; delete it first or pick another name")]
    JobExists(String),
    #[error("topic `{0}` does not exist; create it first")]
    NoSuchTopic(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the shards are busy; retry in {retry_after_ms} ms")]
    Busy { retry_after_ms: u64 },
    #[error("{0}")]
    Internal(String),
}

/// What recovery did at start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    pub jobs: Vec<String>,
    pub replay_records: u64,
    pub took_ms: u64,
    pub problems: Vec<String>,
    pub done: bool,
}

/// The appliance's core.
pub struct Engine {
    config: RwLock<Config>,
    pub data_dir: PathBuf,
    pub log: Arc<Log>,
    pub plugins: PluginStore,
    pub views: Arc<Views>,
    pub(super) shards: Vec<ShardHandle>,
    pub(super) jobs: Mutex<BTreeMap<String, JobEntry>>,
    pub(super) ready: AtomicBool,
    pub(super) recovery: Mutex<RecoveryReport>,
    pub(super) round_robin: AtomicU64,
    pub(super) stopping: AtomicBool,
    pub started: Instant,
    /// Per shard: the heartbeat last seen and when it last moved.
    pub(super) heartbeats: Mutex<Vec<(u64, Instant)>>,
    /// Per job: when shards running it panicked lately (within [`PANIC_WINDOW`]).
    pub(super) panics: Mutex<BTreeMap<String, Vec<Instant>>>,
}

pub(super) fn fsync_of(s: &str) -> Result<FsyncPolicy, EngineError> {
    s.parse::<FsyncPolicy>()
        .map_err(|e| EngineError::Conflict(format!("fsync policy `{s}`: {e}")))
}

impl Engine {
    /// Opens the data dir, starts the shards and restores every job that was
    /// running. Readiness follows once replay has caught up ([`Engine::ready`]).
    pub fn start(config: Config) -> Result<Arc<Engine>, EngineError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(data_dir.join("jobs")).map_err(|e| {
            EngineError::Internal(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let log = Log::open(
            &data_dir,
            LogOptions {
                quota_bytes: (config.limits.log_quota_bytes > 0)
                    .then_some(config.limits.log_quota_bytes),
            },
        )?;
        let host = WasmHost::new(HostConfig {
            max_module_bytes: config.wasm.max_module_bytes,
            max_memory_bytes: config.wasm.max_memory_bytes,
            call_deadline: Duration::from_millis(config.wasm.call_deadline_ms),
            cache_dir: Some(data_dir.join("cache")),
            ..HostConfig::default()
        })
        .map_err(|e| EngineError::Internal(e.to_string()))?;
        let plugins = PluginStore::open(&data_dir, host)?;
        for b in crate::bundled::bundled_plugins() {
            plugins.put(b.name, b.version, b.wasm, true)?;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = config.shard_count(cores);
        let (events_tx, events_rx) = crossbeam::channel::unbounded();
        let shard_cfg = ShardConfig {
            ingest_queue: config.limits.ingest_queue_batches,
            max_lag_records: config.limits.max_lag_records,
        };
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let core = config
                .shard_cores
                .get(i)
                .copied()
                .or((i < cores).then_some(i));
            let h = ShardHandle::spawn(
                i as u32,
                core,
                data_dir.clone(),
                shard_cfg.clone(),
                events_tx.clone(),
            )
            .map_err(|e| EngineError::Internal(format!("cannot start shard {i}: {e}")))?;
            shards.push(h);
        }
        let engine = Arc::new(Engine {
            config: RwLock::new(config),
            data_dir,
            log,
            plugins,
            views: Arc::new(Views::default()),
            shards,
            jobs: Mutex::new(BTreeMap::new()),
            ready: AtomicBool::new(false),
            recovery: Mutex::new(RecoveryReport::default()),
            round_robin: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            started: Instant::now(),
            heartbeats: Mutex::new(Vec::new()),
            panics: Mutex::new(BTreeMap::new()),
        });
        super::maintenance::spawn_event_loop(&engine, events_rx);
        engine.recover()?;
        super::maintenance::spawn_sampler(&engine);
        Ok(engine)
    }

    pub fn config(&self) -> Config {
        self.config.read().expect("config lock").clone()
    }

    /// Applies the reloadable keys of a new configuration.
    pub fn reload(&self, new: &Config) -> Vec<&'static str> {
        self.config.write().expect("config lock").reload_from(new)
    }

    pub fn shards(&self) -> &[ShardHandle] {
        &self.shards
    }

    /// True once recovery has replayed what was in the log at start.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn recovery(&self) -> RecoveryReport {
        self.recovery.lock().expect("recovery lock").clone()
    }

    pub(super) fn shard_of(&self, partition: u32) -> &ShardHandle {
        &self.shards[partition as usize % self.shards.len()]
    }

    // ---------------------------------------------------------------- jobs

    fn job_path(&self, name: &str) -> PathBuf {
        self.data_dir.join("jobs").join(format!("{name}.json"))
    }

    pub(super) fn persist(&self, file: &JobFile) -> Result<(), EngineError> {
        let path = self.job_path(&file.spec.name);
        let bytes = serde_json::to_vec_pretty(file).expect("job file encodes");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| EngineError::Internal(format!("cannot save {}: {e}", path.display())))
    }

    /// Creates and starts a job.
    pub fn create_job(&self, spec: JobSpec) -> Result<(), EngineError> {
        spec.validate()?;
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if jobs.contains_key(&spec.name) {
            return Err(EngineError::JobExists(spec.name));
        }
        self.check_ownership(&jobs, &spec)?;
        // A new job never inherits old state under the same name.
        checkpoint::remove_all(&self.data_dir, &spec.name)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let rt = self.launch(&spec)?.runtime;
        let file = JobFile {
            spec: spec.clone(),
            state: JobState::Running,
            created_ms: now_ms(),
        };
        self.persist(&file)?;
        jobs.insert(
            spec.name.clone(),
            JobEntry {
                file,
                runtime: Some(rt),
            },
        );
        Ok(())
    }

    /// Refuses a job that would write a topic or view another job writes.
    pub(super) fn check_ownership(
        &self,
        jobs: &BTreeMap<String, JobEntry>,
        spec: &JobSpec,
    ) -> Result<(), EngineError> {
        let plan = Plan::build(spec, &|t| {
            self.log.topic(t).map(|t| t.partitions().len() as u32)
        })?;
        for (name, other) in jobs.iter().filter(|(n, _)| *n != &spec.name) {
            let theirs = Plan::build(&other.file.spec, &|t| {
                self.log.topic(t).map(|t| t.partitions().len() as u32)
            });
            let Ok(theirs) = theirs else { continue };
            if let Some(t) = plan
                .output_topics
                .keys()
                .find(|t| theirs.output_topics.contains_key(*t))
            {
                return Err(EngineError::Conflict(format!(
                    "topic `{t}` is already written by job `{name}`"
                )));
            }
            if let Some(v) = plan.views.keys().find(|v| theirs.views.contains_key(*v)) {
                return Err(EngineError::Conflict(format!(
                    "view `{v}` is already filled by job `{name}`"
                )));
            }
        }
        Ok(())
    }

    /// Asks every shard to stop `job`'s tasks and waits for them.
    pub(super) fn unload(&self, job: &str, final_checkpoint: bool) -> Result<(), EngineError> {
        let mut replies = Vec::new();
        for s in &self.shards {
            let (tx, rx) = crossbeam::channel::bounded(1);
            s.command(Command::RemoveJob {
                job: job.to_owned(),
                final_checkpoint,
                reply: tx,
            });
            replies.push(rx);
        }
        let mut first_err = None;
        for rx in replies {
            match rx.recv_timeout(SHARD_REPLY_TIMEOUT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert_with(|| "a shard did not answer in time".into());
                }
            }
        }
        match first_err {
            Some(e) => Err(EngineError::Internal(format!("stopping job `{job}`: {e}"))),
            None => Ok(()),
        }
    }

    /// Stops a job after a final checkpoint.
    pub fn stop_job(&self, name: &str) -> Result<(), EngineError> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let entry = jobs
            .get_mut(name)
            .ok_or_else(|| EngineError::NoSuchJob(name.into()))?;
        if entry.runtime.take().is_some() {
            self.unload(name, true)?;
        }
        entry.file.state = JobState::Stopped;
        self.persist(&entry.file)
    }

    /// Resumes a stopped or paused job from its last checkpoint.
    pub fn resume_job(&self, name: &str) -> Result<(), EngineError> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let entry = jobs
            .get_mut(name)
            .ok_or_else(|| EngineError::NoSuchJob(name.into()))?;
        if entry.runtime.is_some() {
            return Ok(());
        }
        let rt = self.launch(&entry.file.spec)?.runtime;
        entry.runtime = Some(rt);
        entry.file.state = JobState::Running;
        self.persist(&entry.file)
    }

    /// Deletes a job, its checkpoints and its internal topics (its output
    /// topics and dead letters stay: they are the user's data).
    pub fn delete_job(&self, name: &str) -> Result<(), EngineError> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let entry = jobs
            .remove(name)
            .ok_or_else(|| EngineError::NoSuchJob(name.into()))?;
        if entry.runtime.is_some() {
            self.unload(name, false)?;
        }
        let plan = Plan::build(&entry.file.spec, &|t| {
            self.log.topic(t).map(|t| t.partitions().len() as u32)
        });
        if let Ok(plan) = plan {
            for s in &plan.stages {
                let _ = self.log.delete_topic(&exchange_topic(name, s.index));
            }
            for v in plan.views.keys() {
                self.views.remove(v);
            }
        }
        checkpoint::remove_all(&self.data_dir, name)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let _ = std::fs::remove_file(self.job_path(name));
        Ok(())
    }

    /// Moves every operator running `plugin` to `version`, at a checkpoint:
    /// the job is stopped with a final checkpoint, every snapshot is restored
    /// into the new version, and only if all succeed does the job continue
    /// on it. Otherwise it continues on the old version and the plugin's
    /// error is returned.
    pub fn upgrade_job(&self, name: &str, plugin: &str, version: &str) -> Result<(), EngineError> {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let entry = jobs
            .get_mut(name)
            .ok_or_else(|| EngineError::NoSuchJob(name.into()))?;
        let new_plugin = self.plugins.load(plugin, version)?;
        let mut new_spec = entry.file.spec.clone();
        let mut touched = false;
        for op in &mut new_spec.operators {
            if parse_plugin_ref(&op.plugin).is_ok_and(|(n, _)| n == plugin) {
                op.plugin = format!("{plugin}@{version}");
                touched = true;
            }
        }
        if !touched {
            return Err(EngineError::Conflict(format!(
                "job `{name}` does not use plugin `{plugin}`"
            )));
        }
        let was_running = entry.runtime.take().is_some();
        if was_running {
            self.unload(name, true)?;
        }
        // Trial: every checkpointed snapshot must restore into the new version.
        let loaded = checkpoint::load(&self.data_dir, name);
        let plan = Plan::build(&new_spec, &|t| {
            self.log.topic(t).map(|t| t.partitions().len() as u32)
        })?;
        let mut trial = Ok(());
        'outer: for t in loaded.tasks() {
            let Some(stage) = plan.stages.get(t.stage as usize) else {
                continue;
            };
            for (k, opp) in stage.operators.iter().enumerate() {
                if opp.plugin_name != plugin {
                    continue;
                }
                let Some(os) = t.operators.get(k) else {
                    continue;
                };
                let r = new_plugin
                    .instantiate(InstanceLabel::new(name, opp.index as u32, 0), &opp.config)
                    .and_then(|mut i| i.restore(&os.snapshot));
                if let Err(e) = r {
                    trial = Err(EngineError::Conflict(format!(
                        "upgrade of job `{name}` to `{plugin}@{version}` refused: the new version cannot read the \
                         state of operator {} (partition {}): {e}. The job continues on its current version",
                        opp.index, t.partition
                    )));
                    break 'outer;
                }
            }
        }
        let spec = if trial.is_ok() {
            new_spec
        } else {
            entry.file.spec.clone()
        };
        if was_running {
            let rt = self.launch(&spec)?.runtime;
            entry.runtime = Some(rt);
        }
        if trial.is_ok() {
            entry.file.spec = spec;
            self.persist(&entry.file)?;
        }
        trial
    }

    /// Checkpoints a running job now.
    pub fn checkpoint_job(&self, name: &str) -> Result<(), EngineError> {
        let jobs = self.jobs.lock().expect("jobs lock");
        let entry = jobs
            .get(name)
            .ok_or_else(|| EngineError::NoSuchJob(name.into()))?;
        if entry.runtime.is_none() {
            return Err(EngineError::Conflict(format!(
                "job `{name}` is not running"
            )));
        }
        let mut replies = Vec::new();
        for s in &self.shards {
            let (tx, rx) = crossbeam::channel::bounded(1);
            s.command(Command::Checkpoint {
                job: name.to_owned(),
                reply: tx,
            });
            replies.push(rx);
        }
        for rx in replies {
            match rx.recv_timeout(SHARD_REPLY_TIMEOUT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(EngineError::Internal(e)),
                Err(_) => {
                    return Err(EngineError::Internal(
                        "a shard did not answer in time".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Pauses a job after a task failure (called from the event loop).
    pub(super) fn pause(&self, name: &str, reason: String) {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let Some(entry) = jobs.get_mut(name) else {
            return;
        };
        if entry.runtime.take().is_some() {
            let _ = self.unload(name, false);
        }
        tracing::error!(job = name, %reason, "job paused");
        entry.file.state = JobState::Paused { reason };
        let _ = self.persist(&entry.file);
    }

    /// Restarts jobs whose shard panicked, from their checkpoints; pauses those caught in
    /// [`MAX_PANICS_PER_JOB`] panics within [`PANIC_WINDOW`] instead.
    pub(super) fn restore_after_panic(&self, shard: u32, names: &[String], message: &str) {
        let now = Instant::now();
        let mut looping = Vec::new();
        {
            let mut panics = self.panics.lock().expect("panics lock");
            for name in names {
                let recent = panics.entry(name.clone()).or_default();
                recent.retain(|t| now.duration_since(*t) < PANIC_WINDOW);
                recent.push(now);
                if recent.len() >= MAX_PANICS_PER_JOB {
                    recent.clear();
                    looping.push(name.clone());
                }
            }
        }
        for name in &looping {
            self.pause(
                name,
                format!(
                    "shards running this job panicked {MAX_PANICS_PER_JOB} times within {} s \
                     (the last, shard {shard}: {message}); the job is paused instead of being \
                     restored again. This is a bug in Sluice: report it with the server's log, \
                     then resume the job (from its last checkpoint)",
                    PANIC_WINDOW.as_secs()
                ),
            );
        }
        let mut jobs = self.jobs.lock().expect("jobs lock");
        for name in names.iter().filter(|n| !looping.contains(n)) {
            let Some(entry) = jobs.get_mut(name) else {
                continue;
            };
            if entry.runtime.take().is_none() {
                continue;
            }
            let _ = self.unload(name, false);
            match self.launch(&entry.file.spec) {
                Ok(l) => entry.runtime = Some(l.runtime),
                Err(e) => {
                    entry.file.state = JobState::Paused {
                        reason: format!("could not restore after a shard panic: {e}"),
                    };
                    let _ = self.persist(&entry.file);
                }
            }
        }
    }

    /// Names, specs, states and runtimes of every job.
    pub fn jobs(&self) -> Vec<(JobSpec, JobState, Option<Arc<JobRuntime>>, i64)> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .values()
            .map(|e| {
                (
                    e.file.spec.clone(),
                    e.file.state.clone(),
                    e.runtime.clone(),
                    e.file.created_ms,
                )
            })
            .collect()
    }

    pub fn job(&self, name: &str) -> Option<(JobSpec, JobState, Option<Arc<JobRuntime>>, i64)> {
        self.jobs.lock().expect("jobs lock").get(name).map(|e| {
            (
                e.file.spec.clone(),
                e.file.state.clone(),
                e.runtime.clone(),
                e.file.created_ms,
            )
        })
    }

    /// Jobs using a plugin version.
    pub fn plugin_users(&self, name: &str, version: &str) -> Vec<String> {
        let r = format!("{name}@{version}");
        self.jobs
            .lock()
            .expect("jobs lock")
            .values()
            .filter(|e| e.file.spec.operators.iter().any(|o| o.plugin == r))
            .map(|e| e.file.spec.name.clone())
            .collect()
    }

    /// The job writing `topic`, if any (such topics take no ingest).
    pub fn topic_writer(&self, topic: &str) -> Option<String> {
        if topic.starts_with('_') {
            return Some("(internal)".into());
        }
        let jobs = self.jobs.lock().expect("jobs lock");
        jobs.values().find_map(|e| {
            let p = Plan::build(&e.file.spec, &|t| {
                self.log.topic(t).map(|t| t.partitions().len() as u32)
            })
            .ok()?;
            (p.output_topics.contains_key(topic) || p.dlq_topic == topic)
                .then(|| e.file.spec.name.clone())
        })
    }

    // ---------------------------------------------------------------- topics

    /// Deletes a topic no job reads or writes.
    pub fn delete_topic(&self, name: &str) -> Result<(), EngineError> {
        let users: Vec<String> = self
            .jobs()
            .into_iter()
            .filter(|(s, _, _, _)| s.sources.iter().any(|x| x.topic == name))
            .map(|(s, _, _, _)| s.name)
            .collect();
        if let Some(w) = self.topic_writer(name) {
            return Err(EngineError::Conflict(format!(
                "topic `{name}` is written by job `{w}`; delete that job first"
            )));
        }
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "topic `{name}` is read by job(s) {}; delete those jobs first",
                users.join(", ")
            )));
        }
        for s in &self.shards {
            let (tx, rx) = crossbeam::channel::bounded(1);
            s.command(Command::DropWriters {
                topic: name.to_owned(),
                reply: tx,
            });
            let _ = rx.recv_timeout(SHARD_REPLY_TIMEOUT);
        }
        Ok(self.log.delete_topic(name)?)
    }

    /// Graceful stop: refuse new ingest, checkpoint every running job, stop
    /// the shards.
    pub fn shutdown(&self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let names: Vec<String> = self
            .jobs
            .lock()
            .expect("jobs lock")
            .iter()
            .filter(|(_, e)| e.runtime.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            if let Err(e) = self.unload(&n, true) {
                tracing::error!(job = %n, error = %e, "final checkpoint failed");
            }
        }
        for s in &self.shards {
            s.shutdown();
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
