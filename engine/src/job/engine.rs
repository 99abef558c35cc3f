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

use super::plan::{Plan, StageInput, exchange_topic};
use super::plugins::{PluginStore, StoreError};
use super::spec::{JobSpec, SinkSpec, SpecError, StartPosition, parse_plugin_ref};
use crate::config::Config;
use crate::log::{
    FsyncPolicy, Log, LogError, LogOptions, Partition, ProducerSeq, Topic, TopicConfig,
};
use crate::shard::output::{Framing, OutPartition, ViewOut};
use crate::shard::route::partition_of;
use crate::shard::runtime::{JobRuntime, now_ms};
use crate::shard::task::{ExchangeStream, Op, SourceStream, Task, TaskParts};
use crate::shard::{Command, Event, IngestBatch, IngestRecord, ShardConfig, ShardHandle};
use crate::state::checkpoint::{self, Checkpoint, TaskState};
use crate::state::view::Views;
use crate::time::{NO_WATERMARK, SourceClock};
use crate::wasm::{HostConfig, InstanceLabel, WasmHost};

/// How long a job operation waits for the shards to answer.
const SHARD_REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an ingest request waits for durability before giving up.
const DURABLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Hint given to clients told to retry.
pub const RETRY_AFTER_MS: u64 = 200;

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
struct JobFile {
    spec: JobSpec,
    state: JobState,
    created_ms: i64,
}

struct JobEntry {
    file: JobFile,
    runtime: Option<Arc<JobRuntime>>,
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

/// Records to ingest: values and keys as ranges of one buffer.
#[derive(Debug, Default, Clone)]
pub struct NewRecords {
    pub data: Vec<u8>,
    pub records: Vec<IngestRecord>,
}

/// The outcome of an ingest for one partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionAck {
    pub partition: u32,
    pub base_offset: u64,
    pub count: u32,
    pub duplicate: bool,
}

/// The outcome of an ingest request.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    pub topic: String,
    pub partitions: Vec<PartitionAck>,
    /// The fsync policy that applied: the acks mean durable under it.
    pub durability: String,
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
    shards: Vec<ShardHandle>,
    jobs: Mutex<BTreeMap<String, JobEntry>>,
    ready: AtomicBool,
    recovery: Mutex<RecoveryReport>,
    round_robin: AtomicU64,
    stopping: AtomicBool,
    pub started: Instant,
    /// Per shard: the heartbeat last seen and when it last moved.
    heartbeats: Mutex<Vec<(u64, Instant)>>,
}

fn fsync_of(s: &str) -> Result<FsyncPolicy, EngineError> {
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
                ..LogOptions::default()
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
        });
        spawn_event_loop(&engine, events_rx);
        engine.recover()?;
        spawn_sampler(&engine);
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

    fn shard_of(&self, partition: u32) -> &ShardHandle {
        &self.shards[partition as usize % self.shards.len()]
    }

    // ---------------------------------------------------------------- jobs

    fn job_path(&self, name: &str) -> PathBuf {
        self.data_dir.join("jobs").join(format!("{name}.json"))
    }

    fn persist(&self, file: &JobFile) -> Result<(), EngineError> {
        let path = self.job_path(&file.spec.name);
        let bytes = serde_json::to_vec_pretty(file).expect("job file encodes");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bytes)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| EngineError::Internal(format!("cannot save {}: {e}", path.display())))
    }

    fn recover(self: &Arc<Self>) -> Result<(), EngineError> {
        let started = Instant::now();
        let mut files = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.data_dir.join("jobs")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    match std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                        serde_json::from_slice::<JobFile>(&b).map_err(|e| e.to_string())
                    }) {
                        Ok(f) => files.push(f),
                        Err(e) => {
                            tracing::error!(file = %p.display(), error = %e, "unreadable job file skipped")
                        }
                    }
                }
            }
        }
        let mut report = RecoveryReport::default();
        let mut targets = Vec::new();
        for f in files {
            let name = f.spec.name.clone();
            let mut runtime = None;
            if f.state == JobState::Running {
                match self.launch(&f.spec) {
                    Ok((rt, problems, t)) => {
                        report.problems.extend(problems);
                        report.jobs.push(name.clone());
                        targets.push((rt.clone(), t));
                        runtime = Some(rt);
                    }
                    Err(e) => {
                        report
                            .problems
                            .push(format!("job `{name}` could not be restored: {e}"));
                        tracing::error!(job = %name, error = %e, "job could not be restored; it is paused");
                    }
                }
            }
            let mut file = f;
            if runtime.is_none() && file.state == JobState::Running {
                file.state = JobState::Paused {
                    reason: report.problems.last().cloned().unwrap_or_default(),
                };
            }
            self.jobs
                .lock()
                .expect("jobs lock")
                .insert(name, JobEntry { file, runtime });
        }
        report.replay_records = targets
            .iter()
            .map(|(_, t)| t.iter().map(|x| x.1).sum::<u64>())
            .sum();
        *self.recovery.lock().expect("recovery lock") = report;
        // Ready once every restored stage-0 task has reached the log end it
        // had at start.
        let me = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sluice-recovery".into())
            .spawn(move || loop {
                let Some(engine) = me.upgrade() else { return };
                let done = targets.iter().all(|(rt, t)| {
                    t.iter().all(|(p, replay)| {
                        let info = &rt.tasks[0][*p as usize];
                        info.records_in.load(Ordering::Relaxed) >= *replay
                            || info.lag.load(Ordering::Relaxed) == 0 && info.records_in.load(Ordering::Relaxed) > 0
                    })
                });
                if done {
                    let mut r = engine.recovery.lock().expect("recovery lock");
                    r.took_ms = started.elapsed().as_millis() as u64;
                    r.done = true;
                    engine.ready.store(true, Ordering::Release);
                    tracing::info!(replayed = r.replay_records, took_ms = r.took_ms, jobs = ?r.jobs, "recovery complete; ready");
                    return;
                }
                drop(engine);
                std::thread::sleep(Duration::from_millis(5));
            })
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(())
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
        let (rt, _, _) = self.launch(&spec)?;
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
    fn check_ownership(
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

    /// Builds the job's tasks (restoring checkpoints) and hands them to the
    /// shards. Returns the runtime, the checkpoint problems met, and per
    /// stage-0 partition the records to replay.
    fn launch(
        &self,
        spec: &JobSpec,
    ) -> Result<(Arc<JobRuntime>, Vec<String>, Vec<(u32, u64)>), EngineError> {
        let plan = Plan::build(spec, &|t| {
            self.log.topic(t).map(|t| t.partitions().len() as u32)
        })?;
        let mut problems = Vec::new();
        let loaded = checkpoint::load(&self.data_dir, &spec.name);
        for p in &loaded.problems {
            tracing::warn!(job = %spec.name, problem = %p, "checkpoint skipped");
            problems.push(p.to_string());
        }
        let states: BTreeMap<(u32, u32), TaskState> = loaded
            .tasks()
            .into_iter()
            .map(|t| ((t.stage, t.partition), t.clone()))
            .collect();
        let fresh = states.is_empty();

        // Topics the job writes.
        let defaults = self.config().topic_defaults;
        let ensure = |name: &str,
                      partitions: u32,
                      fsync: FsyncPolicy|
         -> Result<Arc<Topic>, EngineError> {
            if let Some(t) = self.log.topic(name) {
                if t.partitions().len() as u32 != partitions {
                    return Err(EngineError::Conflict(format!(
                        "topic `{name}` has {} partitions but job `{}` writes {partitions}; delete the topic or use another",
                        t.partitions().len(),
                        spec.name
                    )));
                }
                return Ok(t);
            }
            let mut cfg = TopicConfig::new(name, partitions);
            cfg.fsync = fsync;
            cfg.segment_bytes = defaults.segment_bytes;
            Ok(self.log.create_topic(cfg)?)
        };
        let default_fsync = fsync_of(&defaults.fsync)?;
        let mut outputs: BTreeMap<String, Arc<Topic>> = BTreeMap::new();
        for (name, &parts) in &plan.output_topics {
            outputs.insert(name.clone(), ensure(name, parts, default_fsync.clone())?);
        }
        let dlq = ensure(&plan.dlq_topic, plan.dlq_partitions, default_fsync.clone())?;
        let mut exchanges = Vec::new();
        for stage in &plan.stages {
            if let Some((topic, q)) = &stage.exchange_out {
                // Checkpoints make exchange topics durable; no fsync between.
                exchanges.push(Some(ensure(
                    topic,
                    stage.partitions * q,
                    FsyncPolicy::Never,
                )?));
            } else {
                exchanges.push(None);
            }
        }

        let rt = Arc::new(JobRuntime::new(
            spec.clone(),
            plan.clone(),
            loaded.last_id() + 1,
        ));
        let mut per_shard: Vec<Vec<Task>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        let mut replay = Vec::new();
        for stage in &plan.stages {
            let stage_arc = Arc::new(stage.clone());
            for p in 0..stage.partitions {
                let state = states.get(&(stage.index as u32, p));
                let shard = p as usize % self.shards.len();
                let task = self.build_task(
                    &rt,
                    &stage_arc,
                    p,
                    shard as u32,
                    state,
                    &outputs,
                    &dlq,
                    &exchanges,
                )?;
                if stage.index == 0 {
                    replay.push((p, task.lag()));
                }
                if let Some(st) = state {
                    if let Some(last) = st.operators.last() {
                        rt.progress[stage.index][p as usize]
                            .store(last.watermark, Ordering::Release);
                    }
                }
                per_shard[shard].push(task);
            }
        }
        if fresh {
            // The starting point is durable before anything is written, so a
            // crash before the first periodic checkpoint cannot double outputs.
            for (shard, tasks) in per_shard.iter_mut().enumerate() {
                if tasks.is_empty() {
                    continue;
                }
                let mut states = Vec::new();
                for t in tasks.iter_mut() {
                    states.push(
                        t.checkpoint_state()
                            .map_err(|e| EngineError::Internal(e.to_string()))?,
                    );
                }
                checkpoint::write(
                    &self.data_dir,
                    &Checkpoint {
                        job: spec.name.clone(),
                        shard: shard as u32,
                        id: rt.take_checkpoint_id(),
                        created_ms: now_ms(),
                        tasks: states,
                    },
                )
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            }
        }
        for (shard, tasks) in per_shard.into_iter().enumerate() {
            if !tasks.is_empty() {
                self.shards[shard].command(Command::AddTasks {
                    job: rt.clone(),
                    tasks,
                });
            }
        }
        Ok((rt, problems, replay))
    }

    #[allow(clippy::too_many_arguments)]
    fn build_task(
        &self,
        rt: &Arc<JobRuntime>,
        stage: &Arc<super::plan::StagePlan>,
        p: u32,
        shard: u32,
        state: Option<&TaskState>,
        outputs: &BTreeMap<String, Arc<Topic>>,
        dlq: &Arc<Topic>,
        exchanges: &[Option<Arc<Topic>>],
    ) -> Result<Task, EngineError> {
        let job = rt.name();
        let ended = |topic: &str, partition: u32| -> Option<u64> {
            state.and_then(|s| {
                s.outputs
                    .iter()
                    .find(|(t, q, _)| t == topic && *q == partition)
                    .map(|(_, _, e)| *e)
            })
        };
        // Writers, truncated back to the checkpoint so replay rewrites them.
        let open = |topic: &Arc<Topic>,
                    partition: u32,
                    framing: Framing|
         -> Result<OutPartition, EngineError> {
            let part = topic.partition(partition);
            let mut w = part.writer()?;
            if let Some(end) = ended(topic.name(), partition) {
                if end > part.end_offset() {
                    return Err(EngineError::Internal(format!(
                        "job `{job}`: output `{}` partition {partition} ends at offset {} but the checkpoint says {end}; \
                         the output lost data the checkpoint counts on (missing or damaged segment). \
                         Restore the data dir from a backup, or delete and recreate the job",
                        topic.name(),
                        part.end_offset()
                    )));
                }
                w.truncate(end)?;
            }
            Ok(OutPartition::new(topic.name(), partition, w, framing))
        };
        let mut sources = Vec::new();
        let mut exchange_in = Vec::new();
        match &stage.input {
            StageInput::Sources {
                topics,
                max_out_of_orderness_ms,
                ..
            } => {
                for (i, (name, start)) in topics.iter().enumerate() {
                    let topic = self
                        .log
                        .topic(name)
                        .ok_or_else(|| EngineError::NoSuchTopic(name.clone()))?;
                    let part = topic.partition(p).clone();
                    let (next, clock) = match state.and_then(|s| s.inputs.get(i)) {
                        Some(pos) => (
                            pos.offset.max(part.start_offset()),
                            pos.clock
                                .unwrap_or_else(|| SourceClock::new(*max_out_of_orderness_ms)),
                        ),
                        None => (
                            start_offset(&part, *start)?,
                            SourceClock::new(*max_out_of_orderness_ms),
                        ),
                    };
                    sources.push(SourceStream::new(part, next, clock, i as u16));
                }
            }
            StageInput::Exchange {
                upstream_partitions,
                ..
            } => {
                let topic = exchanges[stage.index - 1]
                    .as_ref()
                    .expect("upstream stage has an exchange");
                for u in 0..*upstream_partitions {
                    let part = topic.partition(u * stage.partitions + p).clone();
                    let (next, low) = state
                        .and_then(|s| s.inputs.get(u as usize))
                        .map_or((0, NO_WATERMARK), |pos| (pos.offset, pos.low));
                    exchange_in.push(ExchangeStream::new(part, next, low));
                }
            }
        }
        let mut ops = Vec::new();
        for (k, opp) in stage.operators.iter().enumerate() {
            let plugin = self.plugins.load(&opp.plugin_name, &opp.plugin_version)?;
            let label = InstanceLabel::new(job, opp.index as u32, shard);
            let mut instance = plugin
                .instantiate(label, &opp.config)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            let (promise, next_seq) = match state.and_then(|s| s.operators.get(k)) {
                Some(os) => {
                    let (name, _) = parse_plugin_ref(&os.plugin).map_err(EngineError::Internal)?;
                    if name != opp.plugin_name {
                        return Err(EngineError::Conflict(format!(
                            "job `{job}` operator {} was `{}` at its last checkpoint and is now `{}@{}`; \
                             a job's operators cannot change plugin, only version",
                            opp.index, os.plugin, opp.plugin_name, opp.plugin_version
                        )));
                    }
                    instance
                        .restore(&os.snapshot)
                        .map_err(|e| EngineError::Internal(e.to_string()))?;
                    (os.watermark, os.next_seq)
                }
                None => (NO_WATERMARK, 0),
            };
            ops.push(Op {
                plan: opp.clone(),
                instance,
                promise,
                next_seq,
            });
        }
        let mut topics = Vec::new();
        let mut views = Vec::new();
        for opp in &stage.operators {
            for (_, route) in opp.routes() {
                match route {
                    super::plan::Route::Sink(SinkSpec::Topic { topic }) => {
                        if !topics.iter().any(|t: &OutPartition| &t.topic == topic) {
                            topics.push(open(&outputs[topic], p, Framing::Plain)?);
                        }
                    }
                    super::plan::Route::Sink(SinkSpec::View { view, max_entries }) => {
                        if !views.iter().any(|v: &ViewOut| &v.view.name == view) {
                            let v = self
                                .views
                                .get_or_create(view, *max_entries, stage.partitions);
                            if let Some(part) =
                                state.and_then(|s| s.views.iter().find(|(n, _)| n == view))
                            {
                                v.restore_part(p, part.1.clone());
                            }
                            views.push(ViewOut {
                                view: v,
                                buf: Default::default(),
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut exchange_out = Vec::new();
        if let (Some((_, q)), Some(topic)) = (&stage.exchange_out, &exchanges[stage.index]) {
            for d in 0..*q {
                exchange_out.push(open(topic, p * q + d, Framing::Tagged)?);
            }
        }
        let dlq_out = open(dlq, stage.dlq_base + p, Framing::DeadLetter)?;
        let mut task = Task::new(TaskParts {
            job: rt.clone(),
            stage: stage.clone(),
            partition: p,
            sources,
            exchange_in,
            ops,
            topics,
            views,
            exchange_out,
            dlq: dlq_out,
        });
        if let Some(st) = state {
            task.records_in = st.records_in;
            task.records_out = st.records_out;
        }
        Ok(task)
    }

    /// Asks every shard to stop `job`'s tasks and waits for them.
    fn unload(&self, job: &str, final_checkpoint: bool) -> Result<(), EngineError> {
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
        let (rt, _, _) = self.launch(&entry.file.spec)?;
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
            let (rt, _, _) = self.launch(&spec)?;
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
    fn pause(&self, name: &str, reason: String) {
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

    /// Restarts jobs whose shard panicked, from their checkpoints.
    fn restore_after_panic(&self, names: &[String]) {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        for name in names {
            let Some(entry) = jobs.get_mut(name) else {
                continue;
            };
            if entry.runtime.take().is_none() {
                continue;
            }
            let _ = self.unload(name, false);
            match self.launch(&entry.file.spec) {
                Ok((rt, _, _)) => entry.runtime = Some(rt),
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

    // ---------------------------------------------------------------- ingest

    /// Appends records to a topic through the shards owning its partitions,
    /// and waits until they are durable under the topic's policy.
    pub async fn ingest(
        &self,
        topic_name: &str,
        batch: NewRecords,
        producer: Option<(u64, u64)>,
    ) -> Result<IngestResult, EngineError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(EngineError::Busy {
                retry_after_ms: 1_000,
            });
        }
        let topic = self
            .log
            .topic(topic_name)
            .ok_or_else(|| EngineError::NoSuchTopic(topic_name.into()))?;
        if let Some(job) = self.topic_writer(topic_name) {
            return Err(EngineError::Conflict(format!(
                "topic `{topic_name}` holds the results of job `{job}` and takes no ingest; send events to a source topic"
            )));
        }
        let n = topic.partitions().len() as u32;
        let mut per: BTreeMap<u32, Vec<IngestRecord>> = BTreeMap::new();
        let rr = self
            .round_robin
            .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        for (i, r) in batch.records.iter().enumerate() {
            let p = if r.key.is_empty() {
                ((rr + i as u64) % u64::from(n)) as u32
            } else {
                partition_of(&batch.data[r.key.clone()], n)
            };
            per.entry(p).or_default().push(r.clone());
        }
        // Refuse up front rather than half-way: a shard whose queue is full
        // or which holds ingest back for lag answers "retry later".
        for &p in per.keys() {
            let s = self.shard_of(p);
            if s.queued() + 1 >= self.config().limits.ingest_queue_batches
                || s.stats.backpressured.load(Ordering::Relaxed)
            {
                return Err(EngineError::Busy {
                    retry_after_ms: RETRY_AFTER_MS,
                });
            }
        }
        let data = Arc::new(batch.data);
        let mut waiting = Vec::new();
        for (p, records) in per {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut b = IngestBatch {
                topic: topic.clone(),
                partition: p,
                data: data.clone(),
                records,
                producer: producer.map(|(id, seq)| ProducerSeq {
                    producer_id: id,
                    sequence: seq,
                }),
                reply: tx,
            };
            // Committed to this request: wait for room instead of failing.
            loop {
                match self.shard_of(p).ingest(b) {
                    Ok(()) => break,
                    Err(back) => {
                        b = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            waiting.push((p, rx));
        }
        let mut partitions = Vec::new();
        for (p, rx) in waiting {
            let ack = rx.await.map_err(|_| {
                EngineError::Internal("the shard dropped an ingest batch (shutting down?)".into())
            })??;
            let part: Arc<Partition> = topic.partition(p).clone();
            let end = ack.base_offset + u64::from(ack.count);
            if !matches!(ack.durability, FsyncPolicy::Never) && part.durable_offset() < end {
                let mut watch = part.durable_watch();
                let wait =
                    tokio::time::timeout(DURABLE_TIMEOUT, watch.wait_for(|d| *d >= end)).await;
                if !matches!(wait, Ok(Ok(_))) {
                    return Err(EngineError::Internal(format!(
                        "partition {p} of `{topic_name}` was not made durable within {DURABLE_TIMEOUT:?}; check the disk"
                    )));
                }
            }
            partitions.push(PartitionAck {
                partition: p,
                base_offset: ack.base_offset,
                count: ack.count,
                duplicate: ack.duplicate,
            });
        }
        Ok(IngestResult {
            topic: topic_name.into(),
            durability: topic.config().fsync.to_string(),
            partitions,
        })
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

fn start_offset(part: &Arc<Partition>, start: StartPosition) -> Result<u64, EngineError> {
    Ok(match start {
        StartPosition::Earliest => part.start_offset(),
        StartPosition::Latest => part.end_offset(),
        StartPosition::Offset(o) => o.clamp(part.start_offset(), part.end_offset()),
        StartPosition::Timestamp(ts) => part.offset_for_timestamp(ts)?,
    })
}

fn spawn_event_loop(engine: &Arc<Engine>, rx: crossbeam::channel::Receiver<Event>) {
    let me = Arc::downgrade(engine);
    let _ = std::thread::Builder::new()
        .name("sluice-events".into())
        .spawn(move || {
            while let Ok(ev) = rx.recv() {
                let Some(engine) = me.upgrade() else { return };
                match ev {
                    Event::TaskFailed { job, error } => engine.pause(&job, error),
                    Event::Panicked { jobs, .. } => engine.restore_after_panic(&jobs),
                }
            }
        });
}

/// Once a second: job rates and shard heartbeats; every 10 s: retention.
fn spawn_sampler(engine: &Arc<Engine>) {
    let me = Arc::downgrade(engine);
    let _ = std::thread::Builder::new()
        .name("sluice-maintenance".into())
        .spawn(move || {
            let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut tick = 0u64;
            loop {
                std::thread::sleep(Duration::from_secs(1));
                tick += 1;
                let Some(engine) = me.upgrade() else { return };
                if engine.is_stopping() {
                    return;
                }
                engine.sample_heartbeats();
                for (spec, _, rt, _) in engine.jobs() {
                    let Some(rt) = rt else { continue };
                    let now = (
                        rt.stats.records_in.load(Ordering::Relaxed),
                        rt.stats.records_out.load(Ordering::Relaxed),
                    );
                    let before = last.insert(spec.name.clone(), now).unwrap_or(now);
                    rt.stats.rate_in.store(
                        (now.0.saturating_sub(before.0) as f64).to_bits(),
                        Ordering::Relaxed,
                    );
                    rt.stats.rate_out.store(
                        (now.1.saturating_sub(before.1) as f64).to_bits(),
                        Ordering::Relaxed,
                    );
                }
                if tick % 10 == 0 {
                    if let Err(e) = engine.log.enforce_retention(now_ms()) {
                        tracing::warn!(error = %e, "retention");
                    }
                }
            }
        });
}

impl Engine {
    fn sample_heartbeats(&self) {
        let mut hb = self.heartbeats.lock().expect("heartbeat lock");
        let now = Instant::now();
        if hb.len() != self.shards.len() {
            *hb = self
                .shards
                .iter()
                .map(|s| (s.stats.heartbeat.load(Ordering::Relaxed), now))
                .collect();
            return;
        }
        for (s, slot) in self.shards.iter().zip(hb.iter_mut()) {
            let v = s.stats.heartbeat.load(Ordering::Relaxed);
            if v != slot.0 {
                *slot = (v, now);
            }
        }
    }

    /// Per shard: whether its loop has turned within `stall` (a shard inside
    /// a long plugin call does not turn; the call deadline bounds that).
    pub fn shards_alive(&self, stall: Duration) -> Vec<bool> {
        let hb = self.heartbeats.lock().expect("heartbeat lock");
        if hb.len() != self.shards.len() {
            return vec![true; self.shards.len()];
        }
        hb.iter().map(|(_, t)| t.elapsed() < stall).collect()
    }

    /// The stall after which a shard counts as wedged.
    pub fn stall_limit(&self) -> Duration {
        Duration::from_millis(self.config().wasm.call_deadline_ms.saturating_mul(2))
            .max(Duration::from_secs(5))
    }
}
