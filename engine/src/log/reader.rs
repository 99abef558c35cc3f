//! `PartitionReader`: zero-copy reads of a partition through read-only maps of its segments,
//! and lookups by timestamp.
//!
//! The hot loop decodes frames straight from the map (no allocation, no lock, no syscall
//! per record). Checksums are checked for every byte that was on disk when the log was
//! opened; bytes this process wrote are trusted (their checksum was just computed from
//! them). A reader keeps a cursor (segment, map, byte position, next offset), so
//! sequential reads never consult the index; it re-maps only when the segment has grown
//! past its map (which reaches ahead of the writer), and never reads bytes not yet written.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use memmap2::Mmap;

use super::codec::{self, Frame, RecordView};
use super::error::LogError;
use super::partition::Partition;
use super::segment::Segment;

/// What one `read` call delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The offset to read from next.
    pub next_offset: u64,
    /// Records passed to the callback.
    pub records: usize,
    /// Their encoded bytes.
    pub bytes: usize,
}

struct Cursor {
    seg: Arc<Segment>,
    map: Option<Arc<Mmap>>,
    mapped: usize,
    pos: usize,
    next: u64,
    generation: u64,
}

/// A reader of one partition. Cheap to create; not shared between threads (make one each).
pub struct PartitionReader {
    part: Arc<Partition>,
    cur: Option<Cursor>,
}

fn corrupt(seg: &Segment, position: usize, offset: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        file: seg.path.clone(),
        position: position as u64,
        offset,
        reason: reason.into(),
    }
}

impl PartitionReader {
    pub(crate) fn new(part: Arc<Partition>) -> Self {
        PartitionReader { part, cur: None }
    }

    /// The partition read from.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.part
    }

    /// Calls `f` for records from offset `from` on, at most `max_records` of them and at
    /// most `max_bytes` encoded bytes (but at least one record if any is available).
    /// `from == end_offset()` yields nothing; offsets outside `[start, end]` fail with
    /// `OffsetOutOfRange`; a record that fails its checks fails with `Corrupt` (naming the
    /// file and byte position) once the records before it were delivered.
    pub fn read(
        &mut self,
        from: u64,
        max_records: usize,
        max_bytes: usize,
        mut f: impl FnMut(&RecordView<'_>),
    ) -> Result<ReadOutcome, LogError> {
        let p = self.part.clone();
        // Generation before end: see `PartitionWriter::truncate`.
        let generation = p.generation.load(Ordering::SeqCst);
        let end = p.end_offset();
        if from > end || from < p.start_offset() {
            return Err(p.out_of_range(from));
        }
        let mut out = ReadOutcome {
            next_offset: from,
            records: 0,
            bytes: 0,
        };
        if from == end || max_records == 0 {
            return Ok(out);
        }
        let mut cur = match self.cur.take() {
            Some(c) if c.next == from && c.generation == generation => c,
            _ => seek(&p, from, generation)?,
        };
        let result = loop {
            if let Some(map) = &cur.map {
                let buf = &map[..cur.mapped];
                let trusted_from = cur.seg.trusted_from();
                while cur.pos < buf.len() && cur.next < end && out.records < max_records {
                    let verify = (cur.pos as u64) < trusted_from;
                    match codec::decode_with(&buf[cur.pos..], verify) {
                        Frame::Record { view, len } => {
                            if out.records > 0 && out.bytes + len > max_bytes {
                                break;
                            }
                            if view.offset != cur.next {
                                break;
                            }
                            f(&view);
                            out.records += 1;
                            out.bytes += len;
                            cur.pos += len;
                            cur.next += 1;
                        }
                        _ => break,
                    }
                }
            }
            if cur.next >= end || out.records >= max_records {
                break Ok(());
            }
            if cur.pos < cur.mapped {
                let rest = cur
                    .map
                    .as_ref()
                    .map_or(&[][..], |m| m.get(cur.pos..cur.mapped).unwrap_or(&[]));
                let over_budget =
                    matches!(codec::peek(rest), Some((len, _)) if out.bytes + len > max_bytes);
                if out.records > 0 && over_budget {
                    break Ok(());
                }
                if p.generation.load(Ordering::Acquire) != generation {
                    break Ok(());
                }
                break Err(bad_frame(&cur));
            }
            match advance(&p, &mut cur) {
                Ok(true) => continue,
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        out.next_offset = cur.next;
        self.cur = Some(cur);
        match result {
            // A truncation ran during this read: what looked bad was being removed.
            Err(_) if p.generation.load(Ordering::SeqCst) != generation => Ok(out),
            Err(e) if out.records == 0 => Err(e),
            _ => Ok(out),
        }
    }
}

fn bad_frame(cur: &Cursor) -> LogError {
    let Some(map) = &cur.map else {
        return corrupt(
            &cur.seg,
            cur.pos,
            cur.next,
            "no bytes where a record should be",
        );
    };
    let reason = match codec::decode(map.get(cur.pos..cur.mapped).unwrap_or(&[])) {
        Frame::Record { view, .. } => format!("holds offset {} out of sequence", view.offset),
        Frame::End => "zero length where a record should start".to_string(),
        Frame::Torn => "frame runs past the written bytes".to_string(),
        Frame::Bad(why) => why.to_string(),
    };
    corrupt(&cur.seg, cur.pos, cur.next, reason)
}

/// Positions a cursor at `from` (which is inside `[start, end)`).
fn seek(p: &Partition, from: u64, generation: u64) -> Result<Cursor, LogError> {
    let seg = {
        let segs = p.segments.read().unwrap_or_else(|e| e.into_inner());
        let i = segs.partition_point(|s| s.base <= from);
        match i {
            0 => return Err(p.out_of_range(from)),
            _ => segs[i - 1].clone(),
        }
    };
    let (rel, pos) = seg
        .index
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .seek_offset((from - seg.base) as u32);
    let mut cur = Cursor {
        map: None,
        mapped: 0,
        pos: pos as usize,
        next: seg.base + rel as u64,
        generation,
        seg,
    };
    remap(&mut cur)?;
    while cur.next < from {
        let rest = cur
            .map
            .as_ref()
            .map_or(&[][..], |m| m.get(cur.pos..cur.mapped).unwrap_or(&[]));
        match codec::peek(rest) {
            Some((len, off)) if off == cur.next => {
                cur.pos += len;
                cur.next += 1;
            }
            _ => return Err(damaged(&cur, from)),
        }
    }
    Ok(cur)
}

fn damaged(cur: &Cursor, wanted: u64) -> LogError {
    match &cur.seg.damage {
        Some(d) if wanted >= d.offset => corrupt(
            &cur.seg,
            d.position as usize,
            wanted,
            format!(
                "the segment is damaged from offset {} ({}), found when the log was opened",
                d.offset, d.reason
            ),
        ),
        _ => bad_frame(cur),
    }
}

/// Extends the cursor's readable bytes to what the segment has written now, re-mapping
/// only if that is past the end of its map (see [`Segment::map`]).
fn remap(cur: &mut Cursor) -> Result<bool, LogError> {
    let w = cur.seg.written() as usize;
    let before = cur.mapped;
    if w <= before {
        return Ok(false);
    }
    if cur.map.as_ref().is_none_or(|m| m.len() < w) {
        cur.map = cur.seg.map(w as u64)?;
    }
    cur.mapped = cur.map.as_ref().map_or(0, |m| m.len().min(w));
    Ok(cur.mapped > before)
}

/// Moves the cursor on when its map is exhausted: re-maps a grown segment or steps to the
/// next one. `false` when there is nothing more to read now.
fn advance(p: &Partition, cur: &mut Cursor) -> Result<bool, LogError> {
    if remap(cur)? {
        return Ok(true);
    }
    let next = {
        let segs = p.segments.read().unwrap_or_else(|e| e.into_inner());
        let i = segs.partition_point(|s| s.base <= cur.seg.base);
        segs.get(i).cloned()
    };
    let Some(next) = next else {
        return Ok(false);
    };
    if next.base != cur.next {
        if cur.next < next.base {
            return Err(damaged(cur, cur.next));
        }
        // The segment list changed under us (truncation); start over from the index.
        *cur = seek(p, cur.next, cur.generation)?;
        return Ok(true);
    }
    *cur = Cursor {
        seg: next,
        map: None,
        mapped: 0,
        pos: 0,
        next: cur.next,
        generation: cur.generation,
    };
    remap(cur)?;
    Ok(true)
}

impl Partition {
    /// The first offset whose record has timestamp `>= ts_ms`, or `end_offset()` if none.
    ///
    /// Timestamps need not be monotonic: the answer is exact (the earliest such offset),
    /// found by skipping segments whose largest timestamp is smaller, then scanning from the
    /// last time-index entry before which every timestamp is smaller.
    pub fn offset_for_timestamp(&self, ts_ms: i64) -> Result<u64, LogError> {
        let end = self.end_offset();
        let segs: Vec<Arc<Segment>> = self
            .segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for seg in segs {
            let w = seg.written();
            if seg.max_ts() < ts_ms || w == 0 {
                continue;
            }
            let (rel, pos) = seg
                .index
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .seek_time(ts_ms);
            let Some(map) = seg.map(w)? else { continue };
            let w = w.min(map.len() as u64);
            let (mut pos, mut off) = (pos as usize, seg.base + rel as u64);
            while pos < w as usize && off < end {
                match codec::decode(&map[pos..]) {
                    Frame::Record { view, len } if view.offset == off => {
                        if view.timestamp >= ts_ms {
                            return Ok(off);
                        }
                        pos += len;
                        off += 1;
                    }
                    _ => {
                        return Err(corrupt(
                            &seg,
                            pos,
                            off,
                            "record failed its checks during a timestamp lookup",
                        ));
                    }
                }
            }
        }
        Ok(end)
    }
}
