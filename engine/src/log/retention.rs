//! Retention: removes a partition's oldest whole sealed segments by age and by size
//! (`Log::enforce_retention`, run periodically by the engine), or below an offset that
//! nobody reads any more (`Partition::remove_before`). Never removes the
//! active segment, and removes only from the front, so offsets stay contiguous.

use std::sync::Arc;

use super::error::LogError;
use super::fsio;
use super::partition::{Partition, lock};
use super::segment::{self, Segment};

/// What a retention pass removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments removed.
    pub segments_removed: usize,
    /// Bytes of records removed.
    pub bytes_removed: u64,
}

impl Partition {
    /// Applies the topic's retention at wall-clock time `now_ms`.
    pub(crate) fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, LogError> {
        let r = self.config.retention;
        if r.max_age_ms.is_none() && r.max_bytes.is_none() {
            return Ok(RetentionReport::default());
        }
        let mut size = self.size_bytes();
        self.remove_front(|s| {
            let expired = r
                .max_age_ms
                .is_some_and(|age| s.max_ts() < now_ms.saturating_sub(age as i64));
            let oversize = r.max_bytes.is_some_and(|max| size > max);
            size -= s.written();
            expired || oversize
        })
    }

    /// Removes the sealed segments that hold only offsets below `offset`: records nobody
    /// will read again (the engine calls it on its internal exchange topics once
    /// checkpoints have moved past them). The segment holding `offset` stays.
    pub fn remove_before(&self, offset: u64) -> Result<RetentionReport, LogError> {
        if offset <= self.start_offset() {
            return Ok(RetentionReport::default());
        }
        self.remove_front(|s| s.next_offset() <= offset)
    }

    /// Removes the oldest sealed segments while `remove` says so, in order, stopping at the
    /// first it refuses and never touching the active segment.
    fn remove_front(
        &self,
        mut remove: impl FnMut(&Segment) -> bool,
    ) -> Result<RetentionReport, LogError> {
        // The writer's lock orders this against rolls and truncation.
        let _w = lock(&self.write);
        let removed: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write().unwrap_or_else(|e| e.into_inner());
            let n = segs[..segs.len() - 1]
                .iter()
                .take_while(|s| remove(s))
                .count();
            if n == 0 {
                return Ok(RetentionReport::default());
            }
            let removed: Vec<_> = segs.drain(..n).collect();
            self.set_start(segs[0].base);
            removed
        };
        let mut report = RetentionReport::default();
        for s in &removed {
            segment::remove_files(&self.dir, s.base)?;
            report.segments_removed += 1;
            report.bytes_removed += s.written();
        }
        self.sub_size(report.bytes_removed);
        self.shared.release(report.bytes_removed);
        fsio::fsync_dir(&self.dir)?;
        Ok(report)
    }
}
