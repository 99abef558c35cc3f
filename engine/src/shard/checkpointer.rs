//! The second half of a checkpoint, off the shard thread: make the records the
//! checkpoint counts on durable (outputs, exchange and dead-letter partitions,
//! and the shard's ingested source partitions), then write the checkpoint
//! file. The shard only pays for the snapshot. Once the file is written,
//! the exchange segments no checkpoint in force needs are removed
//! (`trim`).
//!
//! One checkpointer thread per shard takes checkpoints in the order the shard
//! took them, so a job's checkpoint files appear in order, and a checkpoint
//! whose file is written has everything before it durable too. A crash while
//! one is pending leaves the previous checkpoint in force: recovery truncates
//! the outputs back to it and replays, as it would have a moment earlier.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam::channel::{Receiver, Sender};

use super::Event;
use super::runtime::JobRuntime;
use crate::log::Partition;
use crate::state::checkpoint::{self, Checkpoint};

/// What the checkpointer is asked to do.
pub enum Work {
    Checkpoint(Pending),
    /// Answer once everything queued before is done (a job being removed must
    /// not have a checkpoint written after its files are deleted).
    Barrier(Sender<()>),
}

/// A checkpoint whose snapshot is taken, to be made durable.
pub struct Pending {
    pub job: Arc<JobRuntime>,
    pub checkpoint: Checkpoint,
    /// Partitions whose appended records the checkpoint counts on.
    pub sync: Vec<Arc<Partition>>,
    /// When the shard started the checkpoint.
    pub started: Instant,
    /// Where to say how it went; `None`: a failure pauses the job instead.
    pub done: Option<Sender<Result<(), String>>>,
}

/// Starts the checkpointer of shard `shard`; it stops once every sender of
/// the returned channel is gone and the queue is drained.
pub fn spawn(
    shard: u32,
    data_dir: PathBuf,
    events: Sender<Event>,
) -> std::io::Result<Sender<Work>> {
    let (tx, rx) = crossbeam::channel::unbounded::<Work>();
    std::thread::Builder::new()
        .name(format!("sluice-ckpt-{shard}"))
        .spawn(move || run(&rx, &data_dir, &events))?;
    Ok(tx)
}

fn run(rx: &Receiver<Work>, data_dir: &std::path::Path, events: &Sender<Event>) {
    while let Ok(work) = rx.recv() {
        let p = match work {
            Work::Checkpoint(p) => p,
            Work::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let result = persist(data_dir, &p);
        match p.done {
            Some(done) => {
                let _ = done.send(result);
            }
            None => {
                if let Err(error) = result {
                    tracing::error!(job = p.job.name(), %error, "checkpoint failed; pausing the job");
                    let _ = events.send(Event::TaskFailed {
                        job: p.job.name().to_owned(),
                        error,
                    });
                }
            }
        }
    }
}

fn persist(data_dir: &std::path::Path, p: &Pending) -> Result<(), String> {
    for part in &p.sync {
        part.flush().map_err(|e| format!("checkpoint: {e}"))?;
    }
    let (_, bytes) = checkpoint::write(data_dir, &p.checkpoint).map_err(|e| e.to_string())?;
    let s = &p.job.stats;
    s.checkpoints.fetch_add(1, Ordering::Relaxed);
    s.last_checkpoint_ms
        .store(p.checkpoint.created_ms, Ordering::Relaxed);
    s.last_checkpoint_us
        .store(p.started.elapsed().as_micros() as u64, Ordering::Relaxed);
    s.last_checkpoint_bytes.store(bytes, Ordering::Relaxed);
    // Space only: a failure leaves the records in place and the job running.
    if let Err(error) = p.job.trim.checkpointed(&p.checkpoint) {
        tracing::warn!(job = p.job.name(), %error, "consumed exchange records kept");
    }
    Ok(())
}
