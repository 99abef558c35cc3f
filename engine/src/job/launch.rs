//! Building a job's tasks: output topics, restored state from the newest
//! checkpoints, writers truncated back to the checkpointed lengths, Wasm
//! instances restored from their snapshots, and handing the tasks to the
//! shards that own their partitions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::engine::{Engine, EngineError, fsync_of};
use super::plan::{Plan, Route, StageInput, StagePlan};
use super::spec::{JobSpec, SinkSpec, StartPosition, parse_plugin_ref};
use crate::log::{FsyncPolicy, Partition, Topic, TopicConfig};
use crate::shard::Command;
use crate::shard::output::{Framing, OutPartition, ViewOut};
use crate::shard::runtime::{JobRuntime, now_ms};
use crate::shard::task::{ExchangeStream, Op, SourceStream, Task, TaskParts};
use crate::shard::trim::ExchangeTrim;
use crate::state::checkpoint::{self, Checkpoint, TaskState};
use crate::time::{NO_WATERMARK, SourceClock};
use crate::wasm::InstanceLabel;

/// Segment size of exchange topics (at most the configured default): the
/// unit in which checkpoints let go of exchanged records (see `shard::trim`).
pub const EXCHANGE_SEGMENT_BYTES: u64 = 16 << 20;

/// What launching a job yields: its runtime, the checkpoint problems met
/// (corrupt files skipped), and what each stage-0 partition must replay.
pub(super) struct Launched {
    pub runtime: Arc<JobRuntime>,
    pub problems: Vec<String>,
    pub replay: Vec<Replay>,
}

/// What one stage-0 task must read before the job has caught up with the
/// log it found at start.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replay {
    pub partition: u32,
    /// The task's records-read count restored from its checkpoint (its
    /// `TaskInfo::records_in` counts on from there).
    pub restored_records_in: u64,
    /// Records between the checkpoint and the end of the log.
    pub records: u64,
}

impl Engine {
    /// Builds the job's tasks (restoring checkpoints) and hands them to the
    /// shards. Returns the runtime, the checkpoint problems met, and per
    /// stage-0 partition the records to replay.
    pub(super) fn launch(&self, spec: &JobSpec) -> Result<Launched, EngineError> {
        let created = std::cell::RefCell::new(Vec::new());
        let result = self.launch_inner(spec, &created);
        if result.is_err() {
            // A job that did not start leaves no topics behind.
            for t in created.into_inner() {
                let _ = self.log.delete_topic(&t);
            }
        }
        result
    }

    fn launch_inner(
        &self,
        spec: &JobSpec,
        created: &std::cell::RefCell<Vec<String>>,
    ) -> Result<Launched, EngineError> {
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
                      fsync: FsyncPolicy,
                      segment_bytes: u64|
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
            cfg.segment_bytes = segment_bytes;
            let t = self.log.create_topic(cfg)?;
            created.borrow_mut().push(name.to_owned());
            Ok(t)
        };
        let default_fsync = fsync_of(&defaults.fsync)?;
        let mut outputs: BTreeMap<String, Arc<Topic>> = BTreeMap::new();
        for (name, &parts) in &plan.output_topics {
            outputs.insert(
                name.clone(),
                ensure(name, parts, default_fsync, defaults.segment_bytes)?,
            );
        }
        let dlq = ensure(
            &plan.dlq_topic,
            plan.dlq_partitions,
            default_fsync,
            defaults.segment_bytes,
        )?;
        let mut exchanges = Vec::new();
        for stage in &plan.stages {
            if let Some((topic, q)) = &stage.exchange_out {
                // Checkpoints make exchange topics durable; no fsync between.
                // Smaller segments, so that trimming keeps them small.
                exchanges.push(Some(ensure(
                    topic,
                    stage.partitions * q,
                    FsyncPolicy::Never,
                    defaults.segment_bytes.min(EXCHANGE_SEGMENT_BYTES),
                )?));
            } else {
                exchanges.push(None);
            }
        }

        let trim = ExchangeTrim::new(&plan, &exchanges, |stage, p| states.get(&(stage, p)));
        let rt = Arc::new(JobRuntime::new(
            spec.clone(),
            plan.clone(),
            loaded.last_id() + 1,
            trim,
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
                    replay.push(Replay {
                        partition: p,
                        restored_records_in: task.records_in,
                        records: task.lag(),
                    });
                }
                if let Some(st) = state
                    && let Some(last) = st.operators.last()
                {
                    rt.progress[stage.index][p as usize].store(last.watermark, Ordering::Release);
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
        Ok(Launched {
            runtime: rt,
            problems,
            replay,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn build_task(
        &self,
        rt: &Arc<JobRuntime>,
        stage: &Arc<StagePlan>,
        p: u32,
        shard: u32,
        state: Option<&TaskState>,
        outputs: &BTreeMap<String, Arc<Topic>>,
        dlq: &Arc<Topic>,
        exchanges: &[Option<Arc<Topic>>],
    ) -> Result<Task, EngineError> {
        let job = rt.name();
        let ended =
            |topic: &str, partition: u32| state.and_then(|s| s.output_end(topic, partition));
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
                    if next < part.start_offset() {
                        return Err(EngineError::Internal(format!(
                            "job `{job}`: exchange `{}` partition {} starts at offset {} but the \
                             checkpoint reads on from {next}; records it counts on are gone \
                             (removed or damaged segment). Restore the data dir from a backup, or \
                             delete and recreate the job",
                            topic.name(),
                            part.id(),
                            part.start_offset()
                        )));
                    }
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
                plugin,
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
                    Route::Sink(SinkSpec::Topic { topic })
                        if !topics.iter().any(|t: &OutPartition| &t.topic == topic) =>
                    {
                        topics.push(open(&outputs[topic], p, Framing::Plain)?);
                    }
                    Route::Sink(SinkSpec::View { view, max_entries })
                        if !views.iter().any(|v: &ViewOut| &v.view.name == view) =>
                    {
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
}

fn start_offset(part: &Arc<Partition>, start: StartPosition) -> Result<u64, EngineError> {
    Ok(match start {
        StartPosition::Earliest => part.start_offset(),
        StartPosition::Latest => part.end_offset(),
        StartPosition::Offset(o) => o.clamp(part.start_offset(), part.end_offset()),
        StartPosition::Timestamp(ts) => part.offset_for_timestamp(ts)?,
    })
}
