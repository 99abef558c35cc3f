//! Ingest: records of a request split by partition, queued to the shards
//! that own the partitions, acknowledged once durable under the topic's
//! fsync policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::engine::{Engine, EngineError, RETRY_AFTER_MS};
use crate::log::{FsyncPolicy, Partition, ProducerSeq};
use crate::shard::route::partition_of;
use crate::shard::{IngestBatch, IngestRecord};

/// How long an ingest request waits for durability before giving up.
const DURABLE_TIMEOUT: Duration = Duration::from_secs(30);

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

impl Engine {
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
}
