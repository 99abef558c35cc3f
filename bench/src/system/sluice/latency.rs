//! Append→sink latency of the engine in process, open loop (issue 4).
//!
//! The job (q0 or q1: every bid in, one record out) runs first; then the open-loop driver
//! ([`OpenLoop`]) hands each batch to `Engine::ingest` at its intended time without waiting
//! for the ack (the ingest runs on the instance's runtime), and a watcher thread polls the
//! output topic's end offsets: batch `i` has arrived once the output holds as many records
//! as the bids in batches `0..=i`. Its latency runs from its *intended* send time, so a
//! stall is charged to every batch scheduled during it (no coordinated omission).
//!
//! Output partitions fill in parallel, so a later batch's records may be counted before an
//! earlier one's: the watcher's figure is the time until *that many* records are visible,
//! within one batch interval of the exact per-batch figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice::log::{FsyncPolicy, Topic};
use sluice_gen::nexmark::Event;
use sluice_gen::reference::Query;

use super::Sluice;
use super::fixture::{Instance, failed};
use super::input::{OUTPUT_TOPIC, encode, job_spec};
use crate::BenchError;
use crate::check::Output;
use crate::measure::{Clock, LatencyRecorder, OpenLoop, Span};
use crate::system::{Job, Sample, repeat};
use crate::workload::Workload;

/// Poll period of the output watcher.
const WATCH_POLL: Duration = Duration::from_micros(200);
/// Longest the watcher waits for the last batch after the driver has sent it.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// The source topic's durability in latency runs: the appliance's default.
pub const SOURCE_FSYNC: &str = "interval(5ms)";

/// The driver's and the watcher's shared clock.
#[derive(Debug, Clone, Copy)]
struct SharedClock {
    base: Instant,
}

impl Clock for SharedClock {
    fn now(&mut self) -> Duration {
        self.base.elapsed()
    }

    fn sleep_until(&mut self, deadline: Duration) {
        let now = self.now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }
}

fn output_records(topic: &Topic) -> u64 {
    topic
        .partitions()
        .iter()
        .map(|p| p.end_offset() - p.start_offset())
        .sum()
}

/// Runs `job` open loop at `rate` events/s in sends of `batch` events.
pub fn run(sys: &Sluice, job: &Job<'_>, rate: f64, batch: u64) -> Result<Vec<Sample>, BenchError> {
    let Workload::Nexmark(query @ (Query::Q0 | Query::Q1)) = job.workload else {
        return Err(BenchError::usage(
            "--open-loop-rate",
            format!(
                "{} is not measured open loop: the watcher needs one output per bid",
                job.workload
            ),
            "use --workload q0 or q1",
        ));
    };
    let events = job.data.nexmark_events()?;
    let schedule = OpenLoop::new(rate, batch, events.len() as u64)?;
    let chunks = encode(&events, batch as usize)?;
    // Output records expected once batch i has gone through: the bids up to it.
    let mut due = Vec::with_capacity(chunks.len());
    let mut bids = 0u64;
    for part in events.chunks(batch as usize) {
        bids += part
            .iter()
            .filter(|e| matches!(e.event, Event::Bid(_)))
            .count() as u64;
        due.push(bids);
    }
    let partitions = sys.partitions(job.shards);
    let fsync: FsyncPolicy = SOURCE_FSYNC
        .parse()
        .map_err(|e| failed("latency", format!("fsync policy {SOURCE_FSYNC}: {e}")))?;
    repeat(job, |_, _| {
        job.progress
            .set_message(format!("{query}: open loop at {rate:.0} events/s"));
        let instance = Instance::start(job.shards, |_| {})?;
        instance.create_topic("nexmark", partitions, fsync)?;
        instance.create_job(job_spec(
            "bench",
            job.workload,
            job.data,
            sys.checkpoint_interval_ms,
        )?)?;
        let out = instance
            .engine
            .log
            .topic(OUTPUT_TOPIC)
            .ok_or_else(|| failed("latency", "the job created no output topic"))?;
        let clock = SharedClock {
            base: Instant::now(),
        };
        let span = Span::start();
        let sent_all = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (due, sent_all) = (due.clone(), Arc::clone(&sent_all));
            let intended: Vec<Duration> = (0..due.len() as u64)
                .map(|i| schedule.intended(i))
                .collect();
            std::thread::spawn(move || watch(&out, &due, &intended, clock, &sent_all))
        };
        let mut acks = Vec::with_capacity(chunks.len());
        let driven = schedule.run(&mut { clock }, |send| {
            let records = chunks[send.index as usize].clone();
            acks.push(instance.spawn_ingest("nexmark", records));
            Ok::<(), BenchError>(())
        });
        sent_all.store(true, Ordering::Release);
        let watched = watcher
            .join()
            .map_err(|_| failed("latency", "the output watcher panicked"))?;
        let usage = span.finish();
        driven?;
        for ack in acks {
            instance
                .block_on(ack)
                .map_err(|e| failed("latency", e.to_string()))??;
        }
        let (latency, finished) = watched?;
        let output = Output::Records(instance.read_topic(OUTPUT_TOPIC)?);
        Ok(Sample {
            wall_s: finished.as_secs_f64(),
            events: events.len() as u64,
            cpu_s: Some(usage.cpu_s),
            peak_rss_mb: usage.peak_rss_mb,
            latency: latency.summary(),
            timeline: Vec::new(),
            startup_s: None,
            overhead_s: None,
            verdict: job.verify(output)?,
        })
    })
}

/// Records each batch's latency as the output reaches its due count; returns the histogram
/// and the time the last batch arrived.
fn watch(
    out: &Topic,
    due: &[u64],
    intended: &[Duration],
    mut clock: SharedClock,
    sent_all: &AtomicBool,
) -> Result<(LatencyRecorder, Duration), BenchError> {
    let mut latency = LatencyRecorder::new();
    let mut next = 0;
    let mut drain_started: Option<Instant> = None;
    while next < due.len() {
        let have = output_records(out);
        let now = clock.now();
        while next < due.len() && have >= due[next] {
            latency.record_from_intended(intended[next], now);
            next += 1;
        }
        if sent_all.load(Ordering::Acquire) {
            let since = *drain_started.get_or_insert_with(Instant::now);
            if since.elapsed() > DRAIN_LIMIT {
                return Err(failed(
                    "latency",
                    format!(
                        "the output holds {have} records {DRAIN_LIMIT:?} (DRAIN_LIMIT) after the last send; {} were due",
                        due.last().copied().unwrap_or(0)
                    ),
                ));
            }
        }
        std::thread::sleep(WATCH_POLL);
    }
    Ok((latency, clock.now()))
}
