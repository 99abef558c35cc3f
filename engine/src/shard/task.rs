//! A task: one partition of one stage of a job, run by the shard that owns
//! the partition.
//!
//! A task reads its input streams (source partitions, or its column of the
//! exchange topic), hands batches to its chain of Wasm operator instances,
//! routes what they emit (next operator, exchange, topics, views, dead
//! letters), and appends the results once per batch. Time follows the rules
//! of `time/`: every record carries the watermark before it, operators are
//! brought to the input watermark after each batch, and the last operator's
//! promise is published for the stage downstream.
//!
//! Invariant: a task's outputs are a function of its input streams' contents
//! only, so replaying from a checkpoint rewrites them byte for byte.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::arena::Arena;
use super::output::{OutPartition, ViewOut};
use super::route::partition_of;
use super::runtime::JobRuntime;
use crate::job::plan::{OperatorPlan, Route, StageInput, StagePlan};
use crate::job::spec::{ErrorPolicy, SinkSpec};
use crate::log::{LogError, Partition, PartitionReader, RecordView};
use crate::mpack::FieldPath;
use crate::state::checkpoint::{OperatorState, StreamPosition, TaskState};
use crate::time::{Merge, NO_WATERMARK, SourceClock};
use crate::wasm::{Batch, Emitted, ErrorKind, Instance, Plugin, PluginError};

/// Largest batch handed to an operator, bytes.
pub const MAX_BATCH_BYTES: usize = 8 << 20;
/// Bytes of input read from one stream per poll when merging.
const MERGE_READ_BYTES: usize = 1 << 20;

/// One source partition the task reads.
pub struct SourceStream {
    pub partition: Arc<Partition>,
    pub reader: PartitionReader,
    pub next: u64,
    pub clock: SourceClock,
    pub source: u16,
    last_data: Instant,
}

/// One upstream partition's column of the exchange topic.
pub struct ExchangeStream {
    pub partition: Arc<Partition>,
    pub reader: PartitionReader,
    /// Next offset to read into the merge.
    pub read: u64,
    /// Next offset not yet released to the operators (what checkpoints keep).
    pub next: u64,
    pub low: i64,
}

/// Where a record read into a merge comes from.
pub struct Origin {
    offset: u64,
    ts: i64,
    /// The partition it was read from (for an exchange input: offsets are in
    /// order within it, and errors name it).
    partition: u32,
    source: u16,
}

/// A record waiting in a merge; its key and value wait in its stream's arena.
pub struct Pending {
    origin: Origin,
    key_len: u32,
    value_len: u32,
}

/// Records read ahead of a merge of several streams: their order, and their
/// bytes per stream.
pub struct Merged {
    order: Merge<Pending>,
    bytes: Vec<Arena>,
}

impl Merged {
    fn new(streams: usize) -> Merged {
        Merged {
            order: Merge::new(streams),
            bytes: (0..streams).map(|_| Arena::default()).collect(),
        }
    }

    /// Adds a record of `stream` (see [`Merge::push`]).
    fn push(&mut self, stream: usize, tag: i64, origin: Origin, key: &[u8], value: &[u8]) {
        self.bytes[stream].push(key, value);
        let pending = Pending {
            origin,
            key_len: key.len() as u32,
            value_len: value.len() as u32,
        };
        self.order.push(stream, tag, pending);
    }

    fn advance(&mut self, stream: usize, progress: i64) {
        self.order.advance(stream, progress);
    }

    fn buffered(&self, stream: usize) -> usize {
        self.order.buffered(stream)
    }

    fn watermark(&self) -> i64 {
        self.order.watermark()
    }

    /// Moves released records into the batch, up to `max` records or until the
    /// next one would not fit (it stays); `mark(stream, offset)` for each.
    fn release(&mut self, batch: &mut Batch, max: usize, mut mark: impl FnMut(usize, u64)) {
        while batch.len() < max {
            let room = batch.max_bytes() - batch.as_bytes().len();
            let Some((stream, tag, p)) = self.order.pop_if(|p| {
                Batch::record_bytes_of(p.key_len as usize, p.value_len as usize) <= room
            }) else {
                break;
            };
            let (key, value) = self.bytes[stream].pop(p.key_len as usize, p.value_len as usize);
            let o = &p.origin;
            batch
                .push(o.offset, o.ts, tag, o.partition, o.source, key, value)
                .expect("room was checked");
            mark(stream, o.offset);
        }
    }
}

enum Inputs {
    Sources {
        streams: Vec<SourceStream>,
        key: Option<FieldPath>,
        time: Option<FieldPath>,
        idle: Option<Duration>,
        merge: Option<Merged>,
    },
    Exchange {
        streams: Vec<ExchangeStream>,
        merge: Merged,
    },
}

/// An operator instance and where it stands.
pub struct Op {
    pub plan: OperatorPlan,
    /// The compiled plugin, to renew the instance after a trap.
    pub plugin: Arc<Plugin>,
    pub instance: Instance,
    /// Largest watermark the operator has been brought to (its promise).
    pub promise: i64,
    /// Offsets of records this operator hands to the next one.
    pub next_seq: u64,
}

/// What a poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub records_in: usize,
    pub records_out: usize,
}

/// Why a task stopped.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    Plugin(#[from] PluginError),
    #[error("writing results failed: {0}")]
    Log(#[from] LogError),
}

/// A destination resolved from a route.
enum Dest {
    Next,
    Exchange,
    Topic(usize),
    View(usize),
    DeadLetter,
    Drop,
}

pub struct Task {
    pub job: Arc<JobRuntime>,
    pub stage: usize,
    pub partition: u32,
    inputs: Inputs,
    ops: Vec<Op>,
    /// `batches[i]` is the input of `ops[i]`.
    batches: Vec<Batch>,
    emitted: Vec<Emitted>,
    topics: Vec<OutPartition>,
    views: Vec<ViewOut>,
    /// The stage's exchange output: one partition per downstream partition.
    exchange: Vec<OutPartition>,
    dlq: OutPartition,
    /// Per operator: output name → destination, cached from the plan.
    dests: Vec<Vec<(String, Dest)>>,
    key_scratch: Vec<u8>,
    /// Durations of plugin calls since the last `take_call_times`, seconds.
    call_times: Vec<f64>,
    pub records_in: u64,
    pub records_out: u64,
    batch_max: usize,
}

/// Everything needed to build a task (gathered by the control plane).
pub struct TaskParts {
    pub job: Arc<JobRuntime>,
    pub stage: Arc<StagePlan>,
    pub partition: u32,
    pub sources: Vec<SourceStream>,
    pub exchange_in: Vec<ExchangeStream>,
    pub ops: Vec<Op>,
    pub topics: Vec<OutPartition>,
    pub views: Vec<ViewOut>,
    pub exchange_out: Vec<OutPartition>,
    pub dlq: OutPartition,
}

impl SourceStream {
    pub fn new(partition: Arc<Partition>, next: u64, clock: SourceClock, source: u16) -> Self {
        SourceStream {
            reader: partition.reader(),
            partition,
            next,
            clock,
            source,
            last_data: Instant::now(),
        }
    }

    /// Records not yet processed.
    pub fn lag(&self) -> u64 {
        self.partition.end_offset().saturating_sub(self.next)
    }
}

impl ExchangeStream {
    pub fn new(partition: Arc<Partition>, next: u64, low: i64) -> Self {
        ExchangeStream {
            reader: partition.reader(),
            partition,
            read: next,
            next,
            low,
        }
    }
}

impl Task {
    pub fn new(parts: TaskParts) -> Task {
        let stage = &parts.stage;
        let inputs = match &stage.input {
            StageInput::Sources {
                key,
                time,
                idle_timeout_ms,
                ..
            } => Inputs::Sources {
                merge: (parts.sources.len() > 1).then(|| Merged::new(parts.sources.len())),
                streams: parts.sources,
                key: key.clone(),
                time: time.clone(),
                idle: idle_timeout_ms.map(Duration::from_millis),
            },
            StageInput::Exchange { .. } => {
                let mut merge = Merged::new(parts.exchange_in.len());
                for (i, s) in parts.exchange_in.iter().enumerate() {
                    merge.advance(i, s.low);
                }
                Inputs::Exchange {
                    streams: parts.exchange_in,
                    merge,
                }
            }
        };
        let n_ops = parts.ops.len();
        let topic_names: Vec<String> = parts.topics.iter().map(|t| t.topic.clone()).collect();
        let view_names: Vec<String> = parts.views.iter().map(|v| v.view.name.clone()).collect();
        let dests = parts
            .ops
            .iter()
            .map(|op| {
                op.plan
                    .routes()
                    .map(|(name, route)| {
                        let d = match route {
                            Route::Next => Dest::Next,
                            Route::Exchange => Dest::Exchange,
                            Route::Sink(SinkSpec::Topic { topic }) => Dest::Topic(
                                topic_names
                                    .iter()
                                    .position(|t| t == topic)
                                    .expect("task has a writer for each topic sink"),
                            ),
                            Route::Sink(SinkSpec::View { view, .. }) => Dest::View(
                                view_names
                                    .iter()
                                    .position(|v| v == view)
                                    .expect("task has each view sink"),
                            ),
                            Route::Sink(SinkSpec::DeadLetter) => Dest::DeadLetter,
                            Route::Sink(SinkSpec::Discard) | Route::Unmapped => Dest::Drop,
                        };
                        (name.to_owned(), d)
                    })
                    .collect()
            })
            .collect();
        let batch_max = parts.job.spec.batch_max_records as usize;
        Task {
            stage: stage.index,
            partition: parts.partition,
            inputs,
            batches: (0..n_ops.max(1))
                .map(|_| Batch::new(MAX_BATCH_BYTES))
                .collect(),
            emitted: (0..n_ops).map(|_| Emitted::new()).collect(),
            ops: parts.ops,
            topics: parts.topics,
            views: parts.views,
            exchange: parts.exchange_out,
            dlq: parts.dlq,
            dests,
            key_scratch: Vec::new(),
            call_times: Vec::new(),
            records_in: 0,
            records_out: 0,
            batch_max,
            job: parts.job,
        }
    }

    /// Plugin call durations since the last call, for the latency histogram.
    pub fn take_call_times(&mut self) -> std::vec::Drain<'_, f64> {
        self.call_times.drain(..)
    }

    /// Linear memory of the task's plugin instances.
    pub fn memory_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|o| o.instance.memory_bytes() as u64)
            .sum()
    }

    /// The operators (for snapshots and upgrades).
    pub fn ops_mut(&mut self) -> &mut [Op] {
        &mut self.ops
    }

    /// Records behind the end of the input, summed over input streams.
    pub fn lag(&self) -> u64 {
        match &self.inputs {
            Inputs::Sources { streams, .. } => streams.iter().map(SourceStream::lag).sum(),
            Inputs::Exchange { streams, .. } => streams
                .iter()
                .map(|s| s.partition.end_offset().saturating_sub(s.next))
                .sum(),
        }
    }

    /// The watermark of the task's input.
    pub fn input_watermark(&self) -> i64 {
        match &self.inputs {
            Inputs::Sources { streams, merge, .. } => match merge {
                Some(m) => m.watermark(),
                None => streams[0].clock.watermark(),
            },
            Inputs::Exchange { merge, .. } => merge.watermark(),
        }
    }

    /// The watermark the task's output has been promised up to.
    pub fn output_promise(&self) -> i64 {
        self.ops
            .last()
            .map_or_else(|| self.input_watermark(), |o| o.promise)
    }

    /// Reads one batch, runs it through the chain, brings the operators to
    /// the input watermark and appends the results.
    pub fn poll(&mut self) -> Result<Polled, TaskError> {
        let n = self.fill()?;
        if n > 0 {
            if self.ops.is_empty() {
                self.route_input_to_exchange();
            } else {
                self.run_from(0)?;
            }
        }
        let w = self.input_watermark();
        self.advance(w)?;
        let out = self.flush()?;
        self.records_in += n as u64;
        self.records_out += out as u64;
        Ok(Polled {
            records_in: n,
            records_out: out,
        })
    }

    /// Fills `batches[0]` with released input records; returns how many.
    fn fill(&mut self) -> Result<usize, TaskError> {
        let batch = &mut self.batches[0];
        batch.clear();
        let max = self.batch_max;
        match &mut self.inputs {
            Inputs::Sources {
                streams,
                key,
                time,
                idle,
                merge: None,
            } => {
                let s = &mut streams[0];
                let scratch = &mut self.key_scratch;
                let dlq = &mut self.dlq;
                let mut resume_at = None;
                let outcome = s.reader.read(s.next, max, MAX_BATCH_BYTES, |rv| {
                    if resume_at.is_some() {
                        return;
                    }
                    match extract(rv, key.as_ref(), time.as_ref(), scratch) {
                        Ok((ts, k)) => {
                            let tag = s.clock.watermark();
                            if batch
                                .push(rv.offset, ts, tag, s.partition.id(), s.source, k, rv.value)
                                .is_err()
                            {
                                resume_at = Some(rv.offset);
                                return;
                            }
                            s.clock.observe(ts);
                        }
                        Err(reason) => dead_letter_raw(dlq, rv, &reason, &self.job.stats),
                    }
                })?;
                let read_any = outcome.records > 0;
                s.next = resume_at.unwrap_or(outcome.next_offset);
                idle_check(s, *idle, read_any);
                Ok(batch.len())
            }
            Inputs::Sources {
                streams,
                key,
                time,
                idle,
                merge: Some(merge),
            } => {
                for (i, s) in streams.iter_mut().enumerate() {
                    if merge.buffered(i) >= crate::time::merge::MAX_BUFFERED_PER_STREAM {
                        continue;
                    }
                    let scratch = &mut self.key_scratch;
                    let dlq = &mut self.dlq;
                    let read_from = s.next + merge.buffered(i) as u64;
                    let outcome = s.reader.read(read_from, max, MERGE_READ_BYTES, |rv| {
                        match extract(rv, key.as_ref(), time.as_ref(), scratch) {
                            Ok((ts, k)) => {
                                let tag = s.clock.observe(ts);
                                let origin = Origin {
                                    offset: rv.offset,
                                    ts,
                                    partition: s.partition.id(),
                                    source: s.source,
                                };
                                merge.push(i, tag, origin, k, rv.value);
                            }
                            Err(reason) => dead_letter_raw(dlq, rv, &reason, &self.job.stats),
                        }
                    })?;
                    idle_check(s, *idle, outcome.records > 0);
                    merge.advance(i, s.clock.watermark());
                }
                merge.release(batch, max, |stream, offset| {
                    streams[stream].next = offset + 1
                });
                Ok(batch.len())
            }
            Inputs::Exchange { streams, merge } => {
                let progress = &self.job.progress[self.stage - 1];
                for (u, s) in streams.iter_mut().enumerate() {
                    // Load the promise before reading: everything written
                    // before it was published is then visible to the read.
                    let promise = progress[u].load(Ordering::Acquire);
                    // After a restart the upstream task may have truncated its
                    // partition back to an older checkpoint than ours; it
                    // rewrites the same records, so wait for them.
                    if s.read > s.partition.end_offset() {
                        continue;
                    }
                    if merge.buffered(u) < crate::time::merge::MAX_BUFFERED_PER_STREAM {
                        let outcome = s.reader.read(s.read, max, MERGE_READ_BYTES, |rv| {
                            let tag = rv
                                .headers()
                                .find(|(n, _)| *n == super::output::TAG_HEADER)
                                .and_then(|(_, v)| v.try_into().ok())
                                .map(i64::from_le_bytes)
                                .unwrap_or(NO_WATERMARK);
                            let origin = Origin {
                                offset: rv.offset,
                                ts: rv.timestamp,
                                partition: s.partition.id(),
                                source: 0,
                            };
                            merge.push(u, tag.max(s.low), origin, rv.key, rv.value);
                            s.low = s.low.max(tag);
                        })?;
                        s.read = outcome.next_offset;
                        if s.read >= s.partition.end_offset() {
                            merge.advance(u, promise);
                        }
                    }
                }
                merge.release(batch, max, |stream, offset| {
                    streams[stream].next = offset + 1
                });
                Ok(batch.len())
            }
        }
    }

    /// Stage with no operators: input records go straight to the exchange.
    fn route_input_to_exchange(&mut self) {
        let q = self.exchange.len() as u32;
        for r in self.batches[0].iter() {
            let dest = partition_of(r.key, q) as usize;
            self.exchange[dest]
                .buf
                .push(r.timestamp, r.watermark, r.key, r.value);
        }
    }

    /// Runs `batches[i]` through `ops[i]` and everything downstream of it.
    fn run_from(&mut self, i: usize) -> Result<(), TaskError> {
        if self.batches[i].is_empty() {
            return Ok(());
        }
        let last_tag = self.batches[i]
            .iter()
            .last()
            .map_or(NO_WATERMARK, |r| r.watermark);
        self.emitted[i].clear();
        let t0 = Instant::now();
        let result = self.ops[i]
            .instance
            .process(&self.batches[i], &mut self.emitted[i]);
        self.note_call(t0);
        match result {
            Ok(()) => {
                self.ops[i].promise = self.ops[i].promise.max(last_tag);
                self.route(i);
            }
            Err(e) => self.failed(i, e)?,
        }
        if i + 1 < self.ops.len() {
            self.run_from(i + 1)?;
        }
        Ok(())
    }

    /// Brings every operator to `w` (the first) or to its upstream's promise.
    fn advance(&mut self, w: i64) -> Result<(), TaskError> {
        let mut target = w;
        for i in 0..self.ops.len() {
            if target > self.ops[i].promise {
                self.emitted[i].clear();
                let t0 = Instant::now();
                let result = self.ops[i]
                    .instance
                    .on_watermark(target, &mut self.emitted[i]);
                self.note_call(t0);
                match result {
                    Ok(()) => {
                        self.ops[i].promise = target;
                        self.route(i);
                    }
                    Err(e) => self.failed(i, e)?,
                }
                if i + 1 < self.ops.len() {
                    self.run_from(i + 1)?;
                }
            }
            target = self.ops[i].promise;
        }
        Ok(())
    }

    fn note_call(&mut self, t0: Instant) {
        // Bounded: drained after every poll by the shard.
        if self.call_times.len() < 4096 {
            self.call_times.push(t0.elapsed().as_secs_f64());
        }
    }

    /// Sends what `ops[i]` emitted where the plan says.
    fn route(&mut self, i: usize) {
        let partition = self.partition;
        let mut next_batch = self.batches.get_mut(i + 1);
        if let Some(b) = next_batch.as_deref_mut() {
            b.clear();
        }
        let op = &mut self.ops[i];
        let stats = &self.job.stats;
        // Shared with the other shards' tasks: added once per call, not per record.
        let mut dead_letters = 0u64;
        for name in self.emitted[i].outputs() {
            let dest = self.dests[i]
                .iter()
                .find(|(n, _)| n == name)
                .map_or(&Dest::Drop, |(_, d)| d);
            if let Dest::Drop = dest {
                let dropped = self.emitted[i].iter_output(name).count() as u64;
                stats.dropped.fetch_add(dropped, Ordering::Relaxed);
                continue;
            }
            for r in self.emitted[i].iter_output(name) {
                match dest {
                    Dest::Next => {
                        let b = next_batch
                            .as_deref_mut()
                            .expect("Next route has a next operator");
                        let seq = op.next_seq;
                        op.next_seq += 1;
                        if b.push(seq, r.timestamp, r.watermark, partition, 0, r.key, r.value)
                            .is_err()
                        {
                            // Bounded by MAX_BATCH_BYTES; an operator emitting more
                            // than that from one batch loses the excess to the DLQ.
                            self.dlq.buf.push_with(
                                r.timestamp,
                                r.watermark,
                                r.key,
                                r.value,
                                [b"batch to the next operator is full", name.as_bytes()],
                            );
                            dead_letters += 1;
                        }
                    }
                    Dest::Exchange => {
                        let q = partition_of(r.key, self.exchange.len() as u32) as usize;
                        self.exchange[q]
                            .buf
                            .push(r.timestamp, r.watermark, r.key, r.value);
                    }
                    Dest::Topic(t) => {
                        self.topics[*t]
                            .buf
                            .push(r.timestamp, r.watermark, r.key, r.value)
                    }
                    Dest::View(v) => {
                        self.views[*v]
                            .buf
                            .push(r.timestamp, r.watermark, r.key, r.value)
                    }
                    Dest::DeadLetter => {
                        self.dlq.buf.push_with(
                            r.timestamp,
                            r.watermark,
                            r.key,
                            r.value,
                            [b"", name.as_bytes()],
                        );
                        dead_letters += 1;
                    }
                    Dest::Drop => unreachable!("dropped outputs are counted above"),
                }
            }
        }
        if dead_letters > 0 {
            stats
                .dead_letters
                .fetch_add(dead_letters, Ordering::Relaxed);
        }
        let mut late = 0;
        op.instance.drain_metrics(|_, name, v| {
            if name == "late_events" {
                late += v;
            }
        });
        if late > 0 {
            stats.late_events.fetch_add(late as u64, Ordering::Relaxed);
        }
    }

    /// A plugin call failed: apply the operator's error policy.
    fn failed(&mut self, i: usize, e: PluginError) -> Result<(), TaskError> {
        self.job.stats.errors.fetch_add(1, Ordering::Relaxed);
        self.job.note_error(self.ops[i].plan.index, &e.to_string());
        if matches!(
            e.kind(),
            ErrorKind::Trap | ErrorKind::Deadline | ErrorKind::MemoryLimit
        ) {
            // The call stopped somewhere inside the guest: its stack and
            // allocator may be mid-operation. Continue in a new instance
            // holding the same state.
            if let Err(renew) = self.renew(i) {
                tracing::error!(error = %renew, "could not renew the instance after a failed call");
                return Err(TaskError::Plugin(renew));
            }
        }
        let stats = &self.job.stats;
        match self.ops[i].plan.on_error {
            ErrorPolicy::Pause => Err(TaskError::Plugin(e)),
            ErrorPolicy::DeadLetter => {
                let msg = e.to_string();
                let origin = format!(
                    "operator {} ({}@{})",
                    self.ops[i].plan.index,
                    self.ops[i].plan.plugin_name,
                    self.ops[i].plan.plugin_version
                );
                let mut n = 0u64;
                for r in self.batches[i].iter() {
                    self.dlq.buf.push_with(
                        r.timestamp,
                        r.watermark,
                        r.key,
                        r.value,
                        [msg.as_bytes(), origin.as_bytes()],
                    );
                    n += 1;
                }
                stats.dead_letters.fetch_add(n, Ordering::Relaxed);
                self.emitted[i].clear();
                if let Some(next) = self.batches.get_mut(i + 1) {
                    next.clear();
                }
                Ok(())
            }
        }
    }

    /// Replaces operator `i`'s instance by a new one restored from its
    /// snapshot.
    fn renew(&mut self, i: usize) -> Result<(), PluginError> {
        let op = &mut self.ops[i];
        let snapshot = op.instance.snapshot()?;
        let mut fresh = op
            .plugin
            .instantiate(op.instance.label().clone(), &op.plan.config)?;
        fresh.restore(&snapshot)?;
        op.instance = fresh;
        self.job.stats.renewals.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Appends everything gathered; publishes the exchange promise.
    fn flush(&mut self) -> Result<usize, TaskError> {
        let mut out = 0;
        for t in &mut self.topics {
            out += t.flush()?;
        }
        for v in &mut self.views {
            out += v.flush(self.partition);
        }
        for x in &mut self.exchange {
            x.flush()?;
        }
        self.dlq.flush()?;
        if !self.exchange.is_empty() {
            let promise = self.output_promise();
            self.job.progress[self.stage][self.partition as usize]
                .fetch_max(promise, Ordering::Release);
        }
        Ok(out)
    }

    /// The task's state for a checkpoint. Snapshots every operator.
    pub fn checkpoint_state(&mut self) -> Result<TaskState, PluginError> {
        let inputs = match &self.inputs {
            Inputs::Sources { streams, .. } => streams
                .iter()
                .map(|s| StreamPosition {
                    offset: s.next,
                    clock: Some(s.clock),
                    low: s.clock.watermark(),
                })
                .collect(),
            Inputs::Exchange { streams, .. } => streams
                .iter()
                .map(|s| StreamPosition {
                    offset: s.next,
                    clock: None,
                    low: NO_WATERMARK,
                })
                .collect(),
        };
        let mut operators = Vec::with_capacity(self.ops.len());
        for op in &mut self.ops {
            operators.push(OperatorState {
                plugin: format!("{}@{}", op.plan.plugin_name, op.plan.plugin_version),
                snapshot: op.instance.snapshot()?,
                watermark: op.promise,
                next_seq: op.next_seq,
            });
        }
        let mut outputs: Vec<(String, u32, u64)> = Vec::new();
        for o in self
            .topics
            .iter()
            .chain(&self.exchange)
            .chain(std::iter::once(&self.dlq))
        {
            outputs.push((o.topic.clone(), o.partition, o.end()));
        }
        Ok(TaskState {
            stage: self.stage as u32,
            partition: self.partition,
            inputs,
            operators,
            outputs,
            views: self
                .views
                .iter()
                .map(|v| (v.view.name.clone(), v.view.part(self.partition)))
                .collect(),
            records_in: self.records_in,
            records_out: self.records_out,
        })
    }

    /// Makes every partition the task wrote durable (before a checkpoint
    /// naming their lengths is written).
    /// Every partition this task appends to (outputs, exchange, dead letters).
    pub fn output_partitions(&self) -> impl Iterator<Item = &Arc<Partition>> {
        self.topics
            .iter()
            .chain(self.exchange.iter())
            .chain(std::iter::once(&self.dlq))
            .map(|o| o.writer.partition())
    }
}

/// Takes the key and event time of a source record, as the job says.
fn extract<'a>(
    rv: &RecordView<'a>,
    key: Option<&FieldPath>,
    time: Option<&FieldPath>,
    scratch: &'a mut Vec<u8>,
) -> Result<(i64, &'a [u8]), String> {
    let ts = match time {
        None => rv.timestamp,
        Some(path) => path
            .get(rv.value)
            .and_then(|s| s.as_i64())
            .ok_or_else(|| format!("event time field `{path}` is missing or not an integer"))?,
    };
    let k: &'a [u8] = match key {
        None => rv.key,
        Some(path) => {
            scratch.clear();
            let ok = path.get(rv.value).is_some_and(|s| s.write_key(scratch));
            if !ok {
                return Err(format!(
                    "key field `{path}` is missing or not a string or integer"
                ));
            }
            &scratch[..]
        }
    };
    Ok((ts, k))
}

fn dead_letter_raw(
    dlq: &mut OutPartition,
    rv: &RecordView<'_>,
    reason: &str,
    stats: &super::runtime::JobStats,
) {
    stats.dead_letters.fetch_add(1, Ordering::Relaxed);
    dlq.buf.push_with(
        rv.timestamp,
        NO_WATERMARK,
        rv.key,
        rv.value,
        [reason.as_bytes(), b"source"],
    );
}

fn idle_check(s: &mut SourceStream, idle: Option<Duration>, read_any: bool) {
    if read_any {
        s.last_data = Instant::now();
    } else if let Some(limit) = idle
        && s.last_data.elapsed() >= limit
    {
        s.clock.mark_idle();
    }
}
