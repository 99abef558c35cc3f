//! Shards: one OS thread per core, pinned, sharing nothing.
//!
//! Partition `p` of every topic belongs to shard `p mod N`. A shard appends
//! the ingest batches of its partitions (they arrive through a bounded
//! lock-free queue, one entry per batch), runs the tasks of its partitions,
//! and checkpoints them. The control plane (`job/`) talks to a shard through
//! a command channel; the shard reports failures back through an event
//! channel. A panic inside the loop is caught: the shard reports which jobs
//! it was running (the control plane restores them from their checkpoints)
//! and carries on.
//!
//! Uses `log/`, `wasm/` (through tasks), `time/`, `state/`.

mod arena;
mod checkpointer;
pub mod output;
pub mod route;
pub mod runtime;
pub mod task;
pub mod trim;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::log::{AppendAck, LogError, PartitionWriter, ProducerSeq, Record, Topic};
use crate::state::checkpoint::Checkpoint;
use runtime::{JobRuntime, now_ms};
use task::Task;

/// Why a checkpoint cannot be taken once the shard's checkpointer thread died.
const CHECKPOINTER_GONE: &str = "checkpoint: this shard's checkpointer thread has stopped (its \
    panic is in the log); restart sluice, and the job resumes from its last checkpoint";

/// How long [`ShardHandle::shutdown`] waits for the thread.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// How long an idle shard sleeps before looking for work again.
const IDLE_PARK: Duration = Duration::from_millis(1);
/// Ingest batches appended per loop turn, so tasks get their turn too.
const INGEST_PER_TURN: usize = 64;

/// One record of an ingest batch, as ranges of the batch's data.
#[derive(Debug, Clone)]
pub struct IngestRecord {
    pub timestamp: i64,
    pub key: std::ops::Range<usize>,
    pub value: std::ops::Range<usize>,
    /// Header names and values, as ranges of the data (usually none).
    pub headers: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

/// The reply to an ingest batch.
pub type IngestReply = tokio::sync::oneshot::Sender<Result<AppendAck, LogError>>;

/// Records for one partition, to be appended by its shard.
pub struct IngestBatch {
    pub topic: Arc<Topic>,
    pub partition: u32,
    /// Shared by the batches of one request, one per partition.
    pub data: Arc<Vec<u8>>,
    pub records: Vec<IngestRecord>,
    pub producer: Option<ProducerSeq>,
    pub reply: IngestReply,
}

/// Commands from the control plane.
pub enum Command {
    /// Start running these tasks of `job`.
    AddTasks {
        job: Arc<JobRuntime>,
        tasks: Vec<Task>,
    },
    /// Stop running `job`'s tasks, after a final checkpoint if asked.
    RemoveJob {
        job: String,
        final_checkpoint: bool,
        reply: Sender<Result<(), String>>,
    },
    /// Checkpoint `job` now.
    Checkpoint {
        job: String,
        reply: Sender<Result<(), String>>,
    },
    /// Release ingest writers of a topic about to be deleted.
    DropWriters { topic: String, reply: Sender<()> },
    /// Stop the loop for this long (tests of the watchdog: a wedged shard).
    Hang(Duration),
    /// Panic inside the loop (tests of shard restarts).
    Panic,
}

/// What a shard tells the control plane.
#[derive(Debug)]
pub enum Event {
    /// A task failed and its job must pause (error policy `pause`, or its
    /// results could not be written).
    TaskFailed { job: String, error: String },
    /// The shard panicked while running these jobs; they must be restored.
    Panicked {
        shard: u32,
        jobs: Vec<String>,
        message: String,
    },
}

/// Live figures of a shard.
pub struct ShardStats {
    /// Bumped every loop turn; the watchdog checks it moves.
    pub heartbeat: AtomicU64,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub ingested: AtomicU64,
    pub busy_ns: AtomicU64,
    pub panics: AtomicU64,
    pub last_panic: Mutex<String>,
    /// Set while ingest is held back because a task lags too far.
    pub backpressured: AtomicBool,
    /// Time to run one poll of a task that had work (read, plugins, append).
    pub batch_seconds: Histogram,
    /// Time of one plugin call.
    pub wasm_call_seconds: Histogram,
}

impl Default for ShardStats {
    fn default() -> Self {
        // 1 µs to ~1 s in factor-2 steps.
        let buckets = || Histogram::new(exponential_buckets(1e-6, 2.0, 21));
        ShardStats {
            heartbeat: AtomicU64::new(0),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            ingested: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            last_panic: Mutex::new(String::new()),
            backpressured: AtomicBool::new(false),
            batch_seconds: buckets(),
            wasm_call_seconds: buckets(),
        }
    }
}

/// The control plane's handle on a shard.
pub struct ShardHandle {
    pub id: u32,
    pub core: Option<usize>,
    ingest: Arc<ArrayQueue<IngestBatch>>,
    commands: Sender<Command>,
    thread: thread::Thread,
    pub stats: Arc<ShardStats>,
    join: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

/// Settings a shard runs with.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub ingest_queue: usize,
    pub max_lag_records: u64,
}

impl ShardHandle {
    /// Starts shard `id`, pinned to `core` if given.
    pub fn spawn(
        id: u32,
        core: Option<usize>,
        data_dir: std::path::PathBuf,
        cfg: ShardConfig,
        events: Sender<Event>,
    ) -> std::io::Result<ShardHandle> {
        let ingest = Arc::new(ArrayQueue::new(cfg.ingest_queue.max(1)));
        let (tx, rx) = crossbeam::channel::unbounded();
        let stats = Arc::new(ShardStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let checkpoints = checkpointer::spawn(id, data_dir, events.clone())?;
        let mut shard = Shard {
            id,
            checkpoints,
            cfg,
            ingest: ingest.clone(),
            commands: rx,
            events,
            jobs: Vec::new(),
            writers: HashMap::new(),
            stats: stats.clone(),
            stop: stop.clone(),
        };
        let join = thread::Builder::new()
            .name(format!("sluice-shard-{id}"))
            .spawn(move || {
                if let Some(c) = core
                    && !core_affinity::set_for_current(core_affinity::CoreId { id: c })
                {
                    tracing::warn!(
                        shard = id,
                        core = c,
                        "could not pin shard thread to its core"
                    );
                }
                shard.run();
            })?;
        Ok(ShardHandle {
            id,
            core,
            ingest,
            commands: tx,
            thread: join.thread().clone(),
            stats,
            join: Mutex::new(Some(join)),
            stop,
        })
    }

    /// Queues an ingest batch; gives it back if the queue is full.
    pub fn ingest(&self, batch: IngestBatch) -> Result<(), IngestBatch> {
        let r = self.ingest.push(batch);
        self.thread.unpark();
        r
    }

    /// Ingest batches waiting.
    pub fn queued(&self) -> usize {
        self.ingest.len()
    }

    pub fn command(&self, c: Command) {
        // The shard outlives every handle user; a closed channel means the
        // process is shutting down, when commands no longer matter.
        let _ = self.commands.send(c);
        self.thread.unpark();
    }

    /// Stops the thread after its current turn and waits for it, at most
    /// [`STOP_LIMIT`]: a shard wedged in a call (it should not be: every Wasm
    /// call has a deadline) is reported and left behind, so the process
    /// still exits in bounded time.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
        let Some(j) = self.join.lock().expect("join lock").take() else {
            return;
        };
        let deadline = Instant::now() + STOP_LIMIT;
        while !j.is_finished() {
            if Instant::now() >= deadline {
                tracing::error!(
                    shard = self.id,
                    "shard did not stop within {STOP_LIMIT:?}; leaving it behind"
                );
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let _ = j.join();
    }
}

struct JobOnShard {
    job: Arc<JobRuntime>,
    tasks: Vec<Task>,
    next_checkpoint: Instant,
}

struct Shard {
    id: u32,
    /// Where checkpoints go to be made durable, off this thread.
    checkpoints: Sender<checkpointer::Work>,
    cfg: ShardConfig,
    ingest: Arc<ArrayQueue<IngestBatch>>,
    commands: Receiver<Command>,
    events: Sender<Event>,
    jobs: Vec<JobOnShard>,
    /// Ingest writers of this shard's source partitions.
    writers: HashMap<(String, u32), PartitionWriter>,
    stats: Arc<ShardStats>,
    stop: Arc<AtomicBool>,
}

impl Shard {
    fn run(&mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let turn = std::panic::catch_unwind(AssertUnwindSafe(|| self.turn()));
            match turn {
                Ok(true) => {}
                Ok(false) => thread::park_timeout(IDLE_PARK),
                Err(payload) => self.recover_from_panic(payload),
            }
        }
    }

    fn recover_from_panic(&mut self, payload: Box<dyn std::any::Any + Send>) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        let jobs: Vec<String> = self
            .jobs
            .drain(..)
            .map(|j| j.job.name().to_owned())
            .collect();
        self.writers.clear();
        self.stats.panics.fetch_add(1, Ordering::Relaxed);
        *self.stats.last_panic.lock().expect("panic lock") = message.clone();
        tracing::error!(shard = self.id, %message, ?jobs, "shard panicked; its jobs will be restored from their checkpoints");
        let _ = self.events.send(Event::Panicked {
            shard: self.id,
            jobs,
            message,
        });
    }

    /// One turn of the loop; true if there was work.
    fn turn(&mut self) -> bool {
        self.stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut work = self.handle_commands();
        work |= self.append_ingest();
        let mut i = 0;
        while i < self.jobs.len() {
            match self.run_job(i) {
                Ok(w) => {
                    work |= w;
                    i += 1;
                }
                Err(error) => {
                    let j = self.jobs.remove(i);
                    tracing::error!(shard = self.id, job = j.job.name(), %error, "job stopped on this shard");
                    let _ = self.events.send(Event::TaskFailed {
                        job: j.job.name().to_owned(),
                        error,
                    });
                }
            }
        }
        if work {
            self.stats
                .busy_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        work
    }

    fn handle_commands(&mut self) -> bool {
        let mut any = false;
        while let Ok(c) = self.commands.try_recv() {
            any = true;
            match c {
                Command::AddTasks { job, tasks } => {
                    let slot = self.jobs.iter_mut().find(|j| j.job.name() == job.name());
                    match slot {
                        Some(j) => j.tasks.extend(tasks),
                        None => self.jobs.push(JobOnShard {
                            // Check point at once: a fresh job's start is durable
                            // before it writes anything.
                            next_checkpoint: Instant::now(),
                            job,
                            tasks,
                        }),
                    }
                }
                Command::RemoveJob {
                    job,
                    final_checkpoint,
                    reply,
                } => {
                    let r = match self.jobs.iter().position(|j| j.job.name() == job) {
                        None => Ok(()),
                        Some(i) => {
                            // Either way, every checkpoint of the job is
                            // written before its removal is confirmed (the
                            // checkpointer works in order).
                            let r = if final_checkpoint {
                                self.checkpoint(i, true)
                            } else {
                                self.drain_checkpointer();
                                Ok(())
                            };
                            self.jobs.remove(i);
                            r
                        }
                    };
                    let _ = reply.send(r);
                }
                Command::Checkpoint { job, reply } => {
                    let r = match self.jobs.iter().position(|j| j.job.name() == job) {
                        None => Ok(()),
                        Some(i) => self.checkpoint(i, true),
                    };
                    let _ = reply.send(r);
                }
                Command::DropWriters { topic, reply } => {
                    self.writers.retain(|(t, _), _| *t != topic);
                    let _ = reply.send(());
                }
                Command::Hang(d) => thread::sleep(d),
                Command::Panic => panic!("panic requested by command (shard {})", self.id),
            }
        }
        any
    }

    /// Appends queued ingest batches while no task lags more than `max_lag_records`
    /// behind, counting what this turn appends: a producer acknowledged early in the
    /// turn can send again before it ends, so without the count one turn could take
    /// `INGEST_PER_TURN` batches past the limit.
    fn append_ingest(&mut self) -> bool {
        let limit = self.cfg.max_lag_records;
        let lag = self
            .jobs
            .iter()
            .flat_map(|j| &j.tasks)
            .map(|t| t.lag())
            .max()
            .unwrap_or(0);
        let lagging = lag > limit;
        self.stats.backpressured.store(lagging, Ordering::Relaxed);
        if lagging {
            return false;
        }
        // At least one batch, so that a limit of 0 still lets a caught-up job's input in.
        let mut room = (limit - lag).max(1);
        let mut n = 0;
        while n < INGEST_PER_TURN && room > 0 {
            let Some(b) = self.ingest.pop() else { break };
            n += 1;
            let result = self.append_one(&b);
            if let Ok(ack) = &result {
                self.stats
                    .ingested
                    .fetch_add(u64::from(ack.count), Ordering::Relaxed);
                room = room.saturating_sub(u64::from(ack.count));
            }
            let _ = b.reply.send(result);
        }
        n > 0
    }

    fn append_one(&mut self, b: &IngestBatch) -> Result<AppendAck, LogError> {
        let key = (b.topic.name().to_owned(), b.partition);
        let writer = match self.writers.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(b.topic.partition(b.partition).writer()?)
            }
        };
        let headers: Vec<Vec<(&[u8], &[u8])>> = b
            .records
            .iter()
            .map(|r| {
                r.headers
                    .iter()
                    .map(|(n, v)| (&b.data[n.clone()], &b.data[v.clone()]))
                    .collect()
            })
            .collect();
        let records: Vec<Record<'_>> = b
            .records
            .iter()
            .zip(&headers)
            .map(|(r, h)| Record {
                timestamp: r.timestamp,
                key: &b.data[r.key.clone()],
                value: &b.data[r.value.clone()],
                headers: h,
            })
            .collect();
        writer.append(&records, b.producer)
    }

    /// Polls every task of job `i`; checkpoints it when due.
    fn run_job(&mut self, i: usize) -> Result<bool, String> {
        let j = &mut self.jobs[i];
        let mut work = false;
        for t in &mut j.tasks {
            let started = Instant::now();
            let polled = t.poll().map_err(|e| e.to_string())?;
            let info = &j.job.tasks[t.stage][t.partition as usize];
            if polled.records_in > 0 || polled.records_out > 0 {
                work = true;
                let ended = Instant::now();
                info.note_active(j.job.started, ended);
                self.stats
                    .batch_seconds
                    .observe((ended - started).as_secs_f64());
                for d in t.take_call_times() {
                    self.stats.wasm_call_seconds.observe(d);
                }
                let s = &j.job.stats;
                s.records_in
                    .fetch_add(polled.records_in as u64, Ordering::Relaxed);
                s.records_out
                    .fetch_add(polled.records_out as u64, Ordering::Relaxed);
                self.stats
                    .records_in
                    .fetch_add(polled.records_in as u64, Ordering::Relaxed);
                self.stats
                    .records_out
                    .fetch_add(polled.records_out as u64, Ordering::Relaxed);
            }
            info.lag.store(t.lag(), Ordering::Relaxed);
            info.watermark.store(t.input_watermark(), Ordering::Relaxed);
            info.records_in.store(t.records_in, Ordering::Relaxed);
            info.memory_bytes.store(t.memory_bytes(), Ordering::Relaxed);
        }
        if Instant::now() >= j.next_checkpoint {
            self.checkpoint(i, false)?;
        }
        Ok(work)
    }

    /// Waits until the checkpointer has done everything queued so far.
    fn drain_checkpointer(&self) {
        let (tx, rx) = crossbeam::channel::bounded(1);
        if self
            .checkpoints
            .send(checkpointer::Work::Barrier(tx))
            .is_ok()
        {
            let _ = rx.recv();
        }
    }

    /// Snapshots job `i`'s tasks and hands the checkpoint to the
    /// checkpointer, which makes what it counts on durable and writes the
    /// file. With `wait`, returns once the file is written.
    fn checkpoint(&mut self, i: usize, wait: bool) -> Result<(), String> {
        let started = Instant::now();
        let j = &mut self.jobs[i];
        let interval = Duration::from_millis(j.job.spec.checkpoint_interval_ms);
        j.next_checkpoint = started + interval;
        let mut tasks = Vec::with_capacity(j.tasks.len());
        let mut sync = Vec::new();
        for t in &mut j.tasks {
            tasks.push(
                t.checkpoint_state()
                    .map_err(|e| format!("checkpoint: {e}"))?,
            );
            sync.extend(t.output_partitions().cloned());
        }
        // The inputs the checkpoint has consumed must survive a power cut too.
        for ((topic, _), w) in &self.writers {
            if j.job.spec.sources.iter().any(|s| &s.topic == topic) {
                sync.push(w.partition().clone());
            }
        }
        let checkpoint = Checkpoint {
            job: j.job.name().to_owned(),
            shard: self.id,
            id: j.job.take_checkpoint_id(),
            created_ms: now_ms(),
            tasks,
        };
        let (done, answer) = if wait {
            let (tx, rx) = crossbeam::channel::bounded(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let pending = checkpointer::Pending {
            job: j.job.clone(),
            checkpoint,
            sync,
            started,
            done,
        };
        if self
            .checkpoints
            .send(checkpointer::Work::Checkpoint(pending))
            .is_err()
        {
            return Err(CHECKPOINTER_GONE.into());
        }
        match answer {
            None => Ok(()),
            Some(rx) => rx.recv().unwrap_or_else(|_| Err(CHECKPOINTER_GONE.into())),
        }
    }
}
