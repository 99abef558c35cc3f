//! `PartitionWriter`: the single writer of a partition (owned by its shard thread). Encodes a
//! batch into one buffer, writes it with one `pwrite` into preallocated space, then
//! publishes it (indexes, written length, end offset) for readers; rolls segments and
//! truncates.
//!
//! Invariant: nothing of a batch is visible to readers until all of it is in the file; a
//! failed write is rolled back (its bytes zeroed, quota released) before the error returns.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::codec::{self, ProducerTag, Record};
use super::config::FsyncPolicy;
use super::error::LogError;
use super::fsio;
use super::limits::{
    MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_HEADER_NAME_BYTES, MAX_HEADERS_PER_RECORD,
    MAX_RECORD_BYTES, PREALLOC_CHUNK_BYTES,
};
use super::partition::{Partition, WriteState, lock};
use super::producer::{ProducerSeq, Refusal, Verdict};
use super::segment::{self, Segment};

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendAck {
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Records in the batch.
    pub count: u32,
    /// The topic's fsync policy, which says what this ack promises: `Always` from
    /// `append_durable` = fdatasynced; `Interval` = will be fdatasynced within that many
    /// ms; `Never` = in the OS page cache only.
    pub durability: FsyncPolicy,
    /// The batch was a retry of one already appended; the offsets are the original ones.
    pub duplicate: bool,
}

/// The exclusive writer of one partition. `Send`; dropping it frees the partition for a
/// new writer.
pub struct PartitionWriter {
    part: Arc<Partition>,
}

impl Drop for PartitionWriter {
    fn drop(&mut self) {
        self.part.writer_alive.store(false, Ordering::Release);
    }
}

impl PartitionWriter {
    pub(crate) fn new(part: Arc<Partition>) -> Self {
        PartitionWriter { part }
    }

    /// The partition written to.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.part
    }

    /// Appends a batch; when this returns the records are readable. Does not wait for
    /// fsync: the syncer is told per the topic's policy. A batch carrying `producer` that
    /// was already appended is acknowledged with its original offsets (`duplicate`).
    pub fn append(
        &mut self,
        records: &[Record<'_>],
        producer: Option<ProducerSeq>,
    ) -> Result<AppendAck, LogError> {
        let p = &self.part;
        let policy = p.config.fsync;
        check_batch(p, records)?;
        let count = records.len() as u32;
        let mut st = lock(&p.write);
        // Checked under the write lock, which `delete_topic` takes to set the flag.
        if p.deleted.load(Ordering::Acquire) {
            return Err(LogError::TopicDeleted(p.topic.clone()));
        }
        if let Some(ps) = producer {
            match p.producers_verdict(&st, ps, count)? {
                Verdict::Duplicate { base, count } => {
                    return Ok(AppendAck {
                        base_offset: base,
                        count,
                        durability: policy,
                        duplicate: true,
                    });
                }
                Verdict::Append => {}
            }
        }
        let tag = producer.map(|ps| ProducerTag {
            producer_id: ps.producer_id,
            sequence: ps.sequence,
            count,
        });
        let base = p.end_offset();
        let st = &mut *st;
        st.buf.clear();
        for (i, r) in records.iter().enumerate() {
            codec::encode(
                &mut st.buf,
                base + i as u64,
                r,
                if i == 0 { tag } else { None },
            );
        }
        let total = st.buf.len() as u64;
        p.shared.reserve(total)?;
        if let Err(e) = self.write_batch(st, base, count) {
            p.shared.release(total);
            return Err(e);
        }
        if let Some(t) = tag {
            st.producers.record(t, base);
        }
        match policy {
            FsyncPolicy::Always => self.schedule_sync(None)?,
            FsyncPolicy::Interval { ms } => {
                self.schedule_sync(Some(Instant::now() + Duration::from_millis(ms)))?
            }
            FsyncPolicy::Never => {}
        }
        Ok(AppendAck {
            base_offset: base,
            count,
            durability: policy,
            duplicate: false,
        })
    }

    /// Appends a batch and returns once it is durable under the topic's policy: for
    /// `always`, after an fdatasync covering it (shared with other partitions' batches by
    /// the syncer); for `interval` and `never`, as soon as it is written.
    pub fn append_durable(
        &mut self,
        records: &[Record<'_>],
        producer: Option<ProducerSeq>,
    ) -> Result<AppendAck, LogError> {
        let ack = self.append(records, producer)?;
        if ack.durability == FsyncPolicy::Always {
            self.wait_synced(ack.base_offset + ack.count as u64)?;
        }
        Ok(ack)
    }

    /// fdatasyncs now and publishes the durable offset (checkpoints call this).
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.part.flush()
    }

    fn wait_synced(&self, end: u64) -> Result<(), LogError> {
        let p = &self.part;
        loop {
            if p.wait_durable(end, Duration::from_secs(1)) {
                return Ok(());
            }
            if let Some(reason) = p.sync_failure() {
                return Err(LogError::SyncFailed {
                    topic: p.topic.clone(),
                    partition: p.id,
                    reason,
                });
            }
            // Still pending: make sure it is queued (the syncer may have stopped).
            self.schedule_sync(None)?;
        }
    }

    fn schedule_sync(&self, deadline: Option<Instant>) -> Result<(), LogError> {
        if !self.part.shared.syncer.schedule(&self.part, deadline) {
            self.part.flush()?;
        }
        Ok(())
    }

    /// Writes the encoded batch in `st.buf` at the end of the active segment (rolling first
    /// if it would overflow), then publishes it.
    fn write_batch(&self, st: &mut WriteState, base: u64, count: u32) -> Result<(), LogError> {
        let p = &self.part;
        let len = st.buf.len() as u64;
        let mut seg = p.active();
        if seg.written() > 0 && seg.written() + len > p.config.segment_bytes {
            seg = self.roll(st, &seg)?;
        }
        let pos = seg.written();
        let need = pos + len;
        if need > st.allocated {
            let target = need
                .max(st.allocated + PREALLOC_CHUNK_BYTES)
                .min(need.max(p.config.segment_bytes));
            let grown =
                fsio::preallocate(&seg.file, &seg.path, st.allocated, target - st.allocated)
                    .map(|()| target)
                    .or_else(|e| match e {
                        // Not room for a whole chunk: reserve just what this batch needs.
                        LogError::DiskFull { .. } if target > need => fsio::preallocate(
                            &seg.file,
                            &seg.path,
                            st.allocated,
                            need - st.allocated,
                        )
                        .map(|()| need),
                        e => Err(e),
                    })?;
            st.allocated = grown;
        }
        if let Err(e) = seg.file.write_all_at(&st.buf, pos) {
            // Roll back whatever part of the batch reached the file.
            let _ = fsio::zero_range(&seg.file, &seg.path, pos, need);
            return Err(LogError::io_needing("pwrite", &seg.path, e, len));
        }
        {
            let mut idx = seg.index.write().unwrap_or_else(|e| e.into_inner());
            let mut at = 0usize;
            for i in 0..count as u64 {
                let frame = &st.buf[at..];
                let flen =
                    u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize + 8;
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&frame[16..24]);
                idx.observe(
                    (base + i - seg.base) as u32,
                    pos + at as u64,
                    i64::from_le_bytes(ts),
                );
                at += flen;
            }
            debug_assert_eq!(at, st.buf.len());
        }
        seg.publish(need, base + count as u64);
        p.add_size(len);
        p.set_end(base + count as u64);
        Ok(())
    }

    /// Seals the active segment and starts a new one at the end offset, with a producer
    /// snapshot as of that offset. Making the sealed segment durable (fdatasync, index
    /// files), writing the snapshot and fsyncing the directory (which makes the new
    /// segment's entry durable) are left to the next flush (queued here), so the writer
    /// never waits for the disk.
    fn roll(&self, st: &mut WriteState, old: &Arc<Segment>) -> Result<Arc<Segment>, LogError> {
        let p = &self.part;
        let next = old.next_offset();
        // Drop the unused preallocation; no map covers it (maps stop at `written`).
        old.file
            .set_len(old.written())
            .map_err(|e| LogError::io("truncate segment", &old.path, e))?;
        st.allocated = old.written();
        let seg = Arc::new(Segment::create(&p.dir, next)?);
        old.set_sealed(true);
        st.allocated = 0;
        p.add_pending_seal(old.clone(), (next, st.producers.encode(next)));
        p.segments
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(seg.clone());
        self.schedule_sync(None)?;
        Ok(seg)
    }

    /// Removes every record with offset `>= new_end`, durably: later segments are deleted,
    /// the segment holding `new_end` has its tail zeroed in place and becomes the active
    /// one, producer state is rebuilt. Reads past `new_end` then fail with
    /// `OffsetOutOfRange`; a read racing the truncation may end early instead.
    pub fn truncate(&mut self, new_end: u64) -> Result<(), LogError> {
        let p = &self.part;
        let (start, end) = (p.start_offset(), p.end_offset());
        if new_end == end {
            return Ok(());
        }
        if new_end > end || new_end < start {
            return Err(p.out_of_range(new_end));
        }
        let mut st = lock(&p.write);
        let _g = p.sync_guard();
        let keep = {
            let segs = p.segments.read().unwrap_or_else(|e| e.into_inner());
            segs[segs.partition_point(|s| s.base <= new_end) - 1].clone()
        };
        let scan = segment::scan(&keep.file, &keep.path, keep.base, new_end, |_, _| {})?;
        if scan.next_offset != new_end {
            return Err(LogError::Corrupt {
                file: keep.path.clone(),
                position: scan.valid_len,
                offset: scan.next_offset,
                reason: format!("cannot truncate to {new_end}: {:?}", scan.stop),
            });
        }
        // `keep` becomes the active segment again; it and later ones are not sealed.
        p.drop_pending_seals_from(keep.base);
        // Readers first: lower the end, then bump the generation, before any byte goes.
        // A reader loads the generation before the end, so it either sees the new end or
        // sees the generation change when it meets a zeroed frame (and stops quietly).
        p.set_end(new_end);
        p.generation.fetch_add(1, Ordering::SeqCst);
        let removed: Vec<_> = {
            let mut segs = p.segments.write().unwrap_or_else(|e| e.into_inner());
            let i = segs.partition_point(|s| s.base <= keep.base);
            segs.drain(i..).collect()
        };
        let mut freed = 0;
        // Newest first, so that a crash midway never leaves a hole between segments.
        for s in removed.iter().rev() {
            freed += s.written();
            segment::remove_files(&p.dir, s.base)?;
        }
        let cut = scan.valid_len;
        freed += keep.written() - cut;
        fsio::zero_range(&keep.file, &keep.path, cut, keep.written())?;
        keep.file
            .sync_all()
            .map_err(|e| LogError::io("fsync", &keep.path, e))?;
        let _ = std::fs::remove_file(segment::index_path(&p.dir, keep.base));
        let _ = std::fs::remove_file(segment::time_path(&p.dir, keep.base));
        fsio::fsync_dir(&p.dir)?;
        keep.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .truncate((new_end - keep.base) as u32);
        keep.set_sealed(false);
        keep.publish(cut, new_end);
        st.allocated = cut;
        let older: Vec<_> = {
            let segs = p.segments.read().unwrap_or_else(|e| e.into_inner());
            segs[..segs.len() - 1].to_vec()
        };
        let mut producers = super::recovery::rebuild_producers(&p.dir, &older, keep.base)?;
        segment::scan(&keep.file, &keep.path, keep.base, new_end, |t, o| {
            producers.record(t, o)
        })?;
        st.producers = producers;
        p.sub_size(freed);
        p.shared.release(freed);
        p.generation.fetch_add(1, Ordering::SeqCst);
        p.reset_durable(new_end);
        Ok(())
    }
}

impl Partition {
    fn producers_verdict(
        &self,
        st: &WriteState,
        ps: ProducerSeq,
        count: u32,
    ) -> Result<Verdict, LogError> {
        st.producers.check(ps, count).map_err(|r| match r {
            Refusal::TooOld { oldest, expected } => LogError::SequenceTooOld {
                topic: self.topic.clone(),
                partition: self.id,
                producer: ps.producer_id,
                got: ps.sequence,
                oldest,
                expected,
                window: super::limits::PRODUCER_WINDOW,
            },
            Refusal::Mismatch { original } => LogError::RetryMismatch {
                topic: self.topic.clone(),
                partition: self.id,
                producer: ps.producer_id,
                sequence: ps.sequence,
                original,
                retried: count,
            },
        })
    }

    pub(crate) fn out_of_range(&self, requested: u64) -> LogError {
        LogError::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.id,
            requested,
            start: self.start_offset(),
            end: self.end_offset(),
        }
    }
}

/// Checks a batch against the limits before anything is encoded.
fn check_batch(p: &Partition, records: &[Record<'_>]) -> Result<(), LogError> {
    if records.is_empty() {
        return Err(LogError::EmptyBatch {
            topic: p.topic.clone(),
            partition: p.id,
        });
    }
    let too = |what: String, actual: usize, limit_name, limit: usize| LogError::TooLarge {
        what,
        actual: actual as u64,
        limit_name,
        limit: limit as u64,
    };
    if records.len() > MAX_BATCH_RECORDS {
        return Err(too(
            "batch record count".into(),
            records.len(),
            "MAX_BATCH_RECORDS",
            MAX_BATCH_RECORDS,
        ));
    }
    let mut total = 0usize;
    for (i, r) in records.iter().enumerate() {
        if r.headers.len() > MAX_HEADERS_PER_RECORD {
            return Err(too(
                format!("record {i} header count"),
                r.headers.len(),
                "MAX_HEADERS_PER_RECORD",
                MAX_HEADERS_PER_RECORD,
            ));
        }
        if let Some((n, _)) = r
            .headers
            .iter()
            .find(|(n, _)| n.len() > MAX_HEADER_NAME_BYTES)
        {
            return Err(too(
                format!("record {i} header name length"),
                n.len(),
                "MAX_HEADER_NAME_BYTES",
                MAX_HEADER_NAME_BYTES,
            ));
        }
        let n = codec::encoded_len(r, i == 0);
        if n > MAX_RECORD_BYTES {
            return Err(too(
                format!("record {i} encoded size"),
                n,
                "MAX_RECORD_BYTES",
                MAX_RECORD_BYTES,
            ));
        }
        total += n;
    }
    if total > MAX_BATCH_BYTES {
        return Err(too(
            "batch encoded size".into(),
            total,
            "MAX_BATCH_BYTES",
            MAX_BATCH_BYTES,
        ));
    }
    Ok(())
}
