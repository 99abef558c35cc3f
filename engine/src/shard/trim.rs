//! Trimming a job's exchange topics. Every exchange partition has one writer
//! (an upstream task) and one reader (a downstream task), and both record in
//! their checkpoints where they stand in it: the writer the end it had
//! written, the reader the next offset it would process. Recovery from a
//! checkpoint truncates the partition back to the writer's end and reads on
//! from the reader's offset, so records below both are never needed again.
//!
//! A shard recovers from its newest checkpoint file, or from the one before
//! if the newest is damaged (`checkpoint::KEEP` files are kept). So the
//! bound is taken over the two newest checkpoints of each side: the
//! partition keeps everything from the smaller of the two sides' older
//! marks. Whole segments below it are removed, which keeps an exchange topic
//! (and the log quota it uses) bounded by a few checkpoint intervals of
//! traffic instead of growing with everything the job ever read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::job::plan::Plan;
use crate::log::{Partition, Topic};
use crate::state::checkpoint::{Checkpoint, TaskState};

/// One side's marks in one exchange partition: from the older and the newer
/// of its two newest checkpoints. Only the checkpointer thread of the side's
/// shard writes them, in checkpoint order; both only grow.
struct Marks {
    older: AtomicU64,
    newer: AtomicU64,
}

impl Marks {
    fn new(at: u64) -> Marks {
        Marks {
            older: AtomicU64::new(at),
            newer: AtomicU64::new(at),
        }
    }

    fn advance(&self, to: u64) {
        self.older
            .store(self.newer.load(Ordering::Acquire), Ordering::Release);
        self.newer.fetch_max(to, Ordering::AcqRel);
    }

    fn kept_from(&self) -> u64 {
        self.older.load(Ordering::Acquire)
    }
}

struct Lane {
    partition: Arc<Partition>,
    written: Marks,
    read: Marks,
}

/// The exchange written by one stage: partition `u * downstream + p` goes
/// from upstream task `u` to downstream task `p`.
struct Exchange {
    topic: String,
    downstream: u32,
    lanes: Vec<Lane>,
}

/// A job's exchange topics and what its checkpoints let go of.
pub struct ExchangeTrim {
    /// Indexed by the writing stage; `None` for the last stage.
    exchanges: Vec<Option<Exchange>>,
}

impl ExchangeTrim {
    /// The job's exchanges (`topics[s]` is stage `s`'s), with the marks of
    /// the checkpoints it is launched from (`state_of(stage, partition)`).
    pub fn new<'a>(
        plan: &Plan,
        topics: &[Option<Arc<Topic>>],
        state_of: impl Fn(u32, u32) -> Option<&'a TaskState>,
    ) -> ExchangeTrim {
        let exchanges = plan
            .stages
            .iter()
            .zip(topics)
            .map(|(stage, topic)| {
                let topic = topic.as_ref()?;
                let (_, downstream) = stage.exchange_out.as_ref()?;
                let lanes = topic
                    .partitions()
                    .iter()
                    .enumerate()
                    .map(|(e, partition)| {
                        let (u, p) = (e as u32 / downstream, e as u32 % downstream);
                        let written = state_of(stage.index as u32, u)
                            .and_then(|s| s.output_end(topic.name(), e as u32))
                            .unwrap_or(0);
                        let read = state_of(stage.index as u32 + 1, p)
                            .and_then(|s| s.inputs.get(u as usize))
                            .map_or(0, |pos| pos.offset);
                        Lane {
                            partition: partition.clone(),
                            written: Marks::new(written),
                            read: Marks::new(read),
                        }
                    })
                    .collect();
                Some(Exchange {
                    topic: topic.name().to_owned(),
                    downstream: *downstream,
                    lanes,
                })
            })
            .collect();
        ExchangeTrim { exchanges }
    }

    /// Takes note of a durable checkpoint and removes the exchange segments
    /// no checkpoint in force needs any more.
    pub fn checkpointed(&self, checkpoint: &Checkpoint) -> Result<(), String> {
        let mut touched = Vec::new();
        for task in &checkpoint.tasks {
            let stage = task.stage as usize;
            if let Some(Some(x)) = self.exchanges.get(stage) {
                for (topic, e, end) in &task.outputs {
                    if *topic == x.topic
                        && let Some(lane) = x.lanes.get(*e as usize)
                    {
                        lane.written.advance(*end);
                        touched.push((stage, *e as usize));
                    }
                }
            }
            if let Some(Some(x)) = stage.checked_sub(1).and_then(|s| self.exchanges.get(s)) {
                for (u, pos) in task.inputs.iter().enumerate() {
                    let e = u * x.downstream as usize + task.partition as usize;
                    if let Some(lane) = x.lanes.get(e) {
                        lane.read.advance(pos.offset);
                        touched.push((stage - 1, e));
                    }
                }
            }
        }
        for (stage, e) in touched {
            let Some(Some(x)) = self.exchanges.get(stage) else {
                continue;
            };
            let lane = &x.lanes[e];
            let keep = lane.written.kept_from().min(lane.read.kept_from());
            lane.partition.remove_before(keep).map_err(|err| {
                format!(
                    "cannot remove consumed segments of exchange `{}` partition {e}: {err}. \
                     They stay on disk and count against the log quota; the next checkpoint \
                     tries again. Check the data dir's permissions and free space",
                    x.topic
                )
            })?;
        }
        Ok(())
    }
}
