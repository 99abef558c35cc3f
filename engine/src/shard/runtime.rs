//! What shards and the control plane share about a running job: its spec and
//! plan, its counters, the exchange promises between its stages, and its
//! recent errors. Counters are atomics updated once per batch.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::trim::ExchangeTrim;
use crate::job::plan::Plan;
use crate::job::spec::JobSpec;
use crate::time::NO_WATERMARK;

/// Most recent operator errors kept per job.
pub const MAX_KEPT_ERRORS: usize = 32;

/// Job counters (monotonic).
#[derive(Default)]
pub struct JobStats {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub errors: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Instances replaced by a new one holding the same state, after a
    /// trap, a timeout or a memory-limit failure.
    pub renewals: AtomicU64,
    pub late_events: AtomicU64,
    /// Outputs with no sink, or sent to `discard`.
    pub dropped: AtomicU64,
    pub checkpoints: AtomicU64,
    pub last_checkpoint_ms: AtomicI64,
    pub last_checkpoint_us: AtomicU64,
    pub last_checkpoint_bytes: AtomicU64,
    /// Records per second in and out over the last sampling second (f64 bits).
    pub rate_in: AtomicU64,
    pub rate_out: AtomicU64,
}

/// Live figures of one task, for the API and metrics.
pub struct TaskInfo {
    pub lag: AtomicU64,
    /// Linear memory of the task's plugin instances, bytes.
    pub memory_bytes: AtomicU64,
    pub watermark: AtomicI64,
    pub records_in: AtomicU64,
    /// When the task last read or wrote records: microseconds after
    /// [`JobRuntime::started`], plus one; 0 until it first does.
    pub active_us: AtomicU64,
}

impl TaskInfo {
    /// Notes that the task read or wrote records at `at`.
    pub fn note_active(&self, started: Instant, at: Instant) {
        let us = at.saturating_duration_since(started).as_micros() as u64;
        self.active_us.store(us + 1, Ordering::Relaxed);
    }

    /// When the task last read or wrote records, if it has.
    pub fn last_active(&self, started: Instant) -> Option<Instant> {
        match self.active_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(started + Duration::from_micros(us - 1)),
        }
    }
}

/// One remembered operator error.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorError {
    pub operator: usize,
    pub message: String,
    pub at_ms: i64,
}

/// A running job as the shards see it.
pub struct JobRuntime {
    pub spec: JobSpec,
    pub plan: Plan,
    pub stats: JobStats,
    /// `progress[s][p]`: stage `s` partition `p` promises that its later
    /// exchange records have tags >= this.
    pub progress: Vec<Vec<AtomicI64>>,
    /// `tasks[s][p]`.
    pub tasks: Vec<Vec<TaskInfo>>,
    pub started: Instant,
    /// The job's exchange topics, trimmed as checkpoints move on.
    pub trim: ExchangeTrim,
    next_checkpoint_id: AtomicU64,
    errors: Mutex<VecDeque<OperatorError>>,
}

impl JobRuntime {
    /// `first_checkpoint_id` continues after the newest checkpoint on disk.
    pub fn new(
        spec: JobSpec,
        plan: Plan,
        first_checkpoint_id: u64,
        trim: ExchangeTrim,
    ) -> JobRuntime {
        let per_stage = |f: &dyn Fn() -> AtomicI64| -> Vec<Vec<AtomicI64>> {
            plan.stages
                .iter()
                .map(|s| (0..s.partitions).map(|_| f()).collect())
                .collect()
        };
        let progress = per_stage(&|| AtomicI64::new(NO_WATERMARK));
        let tasks = plan
            .stages
            .iter()
            .map(|s| {
                (0..s.partitions)
                    .map(|_| TaskInfo {
                        lag: AtomicU64::new(0),
                        memory_bytes: AtomicU64::new(0),
                        watermark: AtomicI64::new(NO_WATERMARK),
                        records_in: AtomicU64::new(0),
                        active_us: AtomicU64::new(0),
                    })
                    .collect()
            })
            .collect();
        JobRuntime {
            spec,
            plan,
            stats: JobStats::default(),
            progress,
            tasks,
            started: Instant::now(),
            trim,
            next_checkpoint_id: AtomicU64::new(first_checkpoint_id),
            errors: Mutex::new(VecDeque::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// A fresh checkpoint id (unique across the job's shards).
    pub fn take_checkpoint_id(&self) -> u64 {
        self.next_checkpoint_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Remembers an operator error (bounded).
    pub fn note_error(&self, operator: usize, message: &str) {
        let mut q = self.errors.lock().expect("errors lock");
        if q.len() == MAX_KEPT_ERRORS {
            q.pop_front();
        }
        q.push_back(OperatorError {
            operator,
            message: message.to_owned(),
            at_ms: now_ms(),
        });
    }

    pub fn recent_errors(&self) -> Vec<OperatorError> {
        self.errors
            .lock()
            .expect("errors lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Total lag over all tasks.
    pub fn lag(&self) -> u64 {
        self.tasks
            .iter()
            .flatten()
            .map(|t| t.lag.load(Ordering::Relaxed))
            .sum()
    }

    /// When any task last read or wrote records, if one has.
    pub fn last_active(&self) -> Option<Instant> {
        self.tasks
            .iter()
            .flatten()
            .filter_map(|t| t.last_active(self.started))
            .max()
    }

    /// The smallest input watermark over the first stage's tasks.
    pub fn watermark(&self) -> i64 {
        self.tasks
            .first()
            .into_iter()
            .flatten()
            .map(|t| t.watermark.load(Ordering::Relaxed))
            .min()
            .unwrap_or(NO_WATERMARK)
    }
}

/// Wall-clock milliseconds since the Unix epoch (for display only; results
/// never depend on it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
