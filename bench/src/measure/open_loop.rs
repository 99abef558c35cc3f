//! An open-loop load driver: sends batches at a fixed rate on a schedule fixed in advance,
//! and measures each batch's latency from its *intended* send time, so that a stall in the
//! system under test is charged to every batch scheduled during it (no coordinated
//! omission). The system is called synchronously; if it falls behind, the driver sends the
//! late batches back to back until it has caught up with the schedule.
//!
//! Used by systems that measure latency (the engine, in process or over HTTP). The clock is
//! a parameter so tests can drive it with simulated time.

use std::time::{Duration, Instant};

use super::latency::LatencyRecorder;
use crate::BenchError;

/// Time as the driver sees it: a monotonic offset from the start of the run.
pub trait Clock {
    /// Time since the start.
    fn now(&mut self) -> Duration;
    /// Returns at `deadline` or at once if it has passed.
    fn sleep_until(&mut self, deadline: Duration);
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    /// A clock starting now.
    pub fn start() -> Self {
        MonotonicClock {
            start: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now(&mut self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&mut self, deadline: Duration) {
        let now = self.now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

/// One batch the driver hands to the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Send {
    /// Batch number, from 0.
    pub index: u64,
    /// Number of the batch's first event, from 0.
    pub first_event: u64,
    /// Events in the batch.
    pub events: u64,
    /// When the schedule wanted it sent (offset from the start).
    pub intended: Duration,
}

/// A fixed-rate schedule of `total` events in batches of `batch`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    rate: f64,
    batch: u64,
    total: u64,
}

/// What an open-loop run measured.
#[derive(Debug, Clone)]
pub struct OpenLoopReport {
    /// Latency of each batch from its intended send time: the figure to publish.
    pub latency: LatencyRecorder,
    /// Latency of each batch from its actual send time. It hides stalls (coordinated
    /// omission) and is kept only to show how much the correction matters.
    pub service: LatencyRecorder,
    /// Events sent.
    pub events: u64,
    /// From the start to the last completion.
    pub elapsed: Duration,
    /// Most a send started behind its intended time.
    pub max_behind: Duration,
}

impl OpenLoop {
    /// `total` events at `rate` events per second, `batch` events per send.
    pub fn new(rate: f64, batch: u64, total: u64) -> Result<Self, BenchError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(BenchError::usage(
                "--open-loop-rate",
                format!("is {rate}"),
                "give a positive number of events per second for an open-loop run",
            ));
        }
        if batch == 0 {
            return Err(BenchError::usage(
                "--send-batch",
                "is 0",
                "send at least one event per batch",
            ));
        }
        Ok(OpenLoop { rate, batch, total })
    }

    /// Number of batches.
    pub fn sends(&self) -> u64 {
        self.total.div_ceil(self.batch)
    }

    /// Intended send time of batch `index`: when its first event is due at the rate.
    pub fn intended(&self, index: u64) -> Duration {
        Duration::from_secs_f64((index * self.batch) as f64 / self.rate)
    }

    /// Intended time of event `n` (for systems that measure latency per output record
    /// against the input that caused it).
    pub fn intended_event(&self, n: u64) -> Duration {
        self.intended(n / self.batch)
    }

    /// Runs the schedule: waits for each batch's intended time (unless late), calls `send`,
    /// and records its latency. Stops at the first error `send` returns.
    pub fn run<C: Clock, E>(
        &self,
        clock: &mut C,
        mut send: impl FnMut(Send) -> Result<(), E>,
    ) -> Result<OpenLoopReport, E> {
        let mut latency = LatencyRecorder::new();
        let mut service = LatencyRecorder::new();
        let mut max_behind = Duration::ZERO;
        for index in 0..self.sends() {
            let first_event = index * self.batch;
            let intended = self.intended(index);
            clock.sleep_until(intended);
            let started = clock.now();
            max_behind = max_behind.max(started.saturating_sub(intended));
            send(Send {
                index,
                first_event,
                events: self.batch.min(self.total - first_event),
                intended,
            })?;
            let done = clock.now();
            latency.record_from_intended(intended, done);
            service.record(done.saturating_sub(started));
        }
        Ok(OpenLoopReport {
            latency,
            service,
            events: self.total,
            elapsed: clock.now(),
            max_behind,
        })
    }
}
