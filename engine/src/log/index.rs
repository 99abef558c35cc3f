//! The sparse offset index and time index of one segment: kept in memory for every
//! segment, written beside a segment when it is sealed (`<base>.index`,
//! `<base>.timeindex`), and rebuilt by scanning when a file is missing or fails its checks.
//!
//! Invariant: entries are in file order; `rel_offset`, `position` and `max_ts_before`
//! never decrease, so lookups are binary searches. The time index stores, for an indexed
//! record, the largest timestamp of all records *before* it in the segment, which makes it
//! monotone even when event timestamps are not.

use std::fs;
use std::path::Path;

use super::error::LogError;
use super::fsio;
use super::limits::INDEX_INTERVAL_BYTES;

/// One offset-index entry: the record `base + rel_offset` starts at byte `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset relative to the segment's base.
    pub rel_offset: u32,
    /// Byte position of its frame.
    pub position: u32,
}

/// One time-index entry: every record before `rel_offset` has a timestamp
/// `<= max_ts_before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp of the records before this one (`i64::MIN` if none).
    pub max_ts_before: i64,
    /// Offset relative to the segment's base.
    pub rel_offset: u32,
    /// Byte position of its frame.
    pub position: u32,
}

/// Both sparse indexes of a segment plus what was learned while building them.
#[derive(Clone, Debug)]
pub struct SegmentIndex {
    /// Offset index.
    pub offsets: Vec<IndexEntry>,
    /// Time index.
    pub times: Vec<TimeEntry>,
    /// Largest timestamp in the segment (`i64::MIN` if empty).
    pub max_ts: i64,
    last_indexed: u64,
}

impl Default for SegmentIndex {
    fn default() -> Self {
        SegmentIndex {
            offsets: Vec::new(),
            times: Vec::new(),
            max_ts: i64::MIN,
            last_indexed: 0,
        }
    }
}

impl SegmentIndex {
    /// Accounts for the record `rel_offset` at byte `position` with timestamp `ts`, adding
    /// entries once `INDEX_INTERVAL_BYTES` were written since the last one.
    #[inline]
    pub fn observe(&mut self, rel_offset: u32, position: u64, ts: i64) {
        if position >= self.last_indexed + INDEX_INTERVAL_BYTES {
            debug_assert!(position <= u32::MAX as u64);
            let position = position as u32;
            self.offsets.push(IndexEntry {
                rel_offset,
                position,
            });
            self.times.push(TimeEntry {
                max_ts_before: self.max_ts,
                rel_offset,
                position,
            });
            self.last_indexed = position as u64;
        }
        self.max_ts = self.max_ts.max(ts);
    }

    /// Drops entries for records at or past `rel_offset` (truncation).
    pub fn truncate(&mut self, rel_offset: u32) {
        self.offsets.retain(|e| e.rel_offset < rel_offset);
        self.times.retain(|e| e.rel_offset < rel_offset);
        self.last_indexed = self.offsets.last().map_or(0, |e| e.position as u64);
    }

    /// Where to start scanning for `rel_offset`: the last indexed `(rel_offset, position)`
    /// at or before it, or the segment start.
    pub fn seek_offset(&self, rel_offset: u32) -> (u32, u64) {
        let i = self.offsets.partition_point(|e| e.rel_offset <= rel_offset);
        match i {
            0 => (0, 0),
            _ => {
                let e = self.offsets[i - 1];
                (e.rel_offset, e.position as u64)
            }
        }
    }

    /// Where to start scanning for the first record with timestamp `>= ts`: every record
    /// before the returned one has a smaller timestamp.
    pub fn seek_time(&self, ts: i64) -> (u32, u64) {
        let i = self.times.partition_point(|e| e.max_ts_before < ts);
        match i {
            0 => (0, 0),
            _ => {
                let e = self.times[i - 1];
                (e.rel_offset, e.position as u64)
            }
        }
    }
}

const MAGIC: &[u8; 4] = b"SLXI";
const KIND_OFFSETS: u32 = 1;
const KIND_TIMES: u32 = 2;
const FILE_HEADER: usize = 48;

/// What a sealed segment's index files record about it.
#[derive(Clone, Debug)]
pub struct SealedIndex {
    /// Both indexes.
    pub index: SegmentIndex,
    /// The offset after the segment's last record.
    pub next_offset: u64,
}

fn header(kind: u32, base: u64, next: u64, seg_len: u64, max_ts: i64, count: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(FILE_HEADER);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&kind.to_le_bytes());
    h.extend_from_slice(&base.to_le_bytes());
    h.extend_from_slice(&next.to_le_bytes());
    h.extend_from_slice(&seg_len.to_le_bytes());
    h.extend_from_slice(&max_ts.to_le_bytes());
    h.extend_from_slice(&(count as u32).to_le_bytes());
    h
}

fn finish(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&bytes);
    bytes.splice(FILE_HEADER - 4..FILE_HEADER - 4, crc.to_le_bytes());
    bytes
}

/// Writes both index files of a sealed segment durably (temp, fsync, rename).
pub fn write_sealed(
    index_path: &Path,
    time_path: &Path,
    base: u64,
    next_offset: u64,
    segment_len: u64,
    idx: &SegmentIndex,
) -> Result<(), LogError> {
    let mut b = header(
        KIND_OFFSETS,
        base,
        next_offset,
        segment_len,
        idx.max_ts,
        idx.offsets.len(),
    );
    for e in &idx.offsets {
        b.extend_from_slice(&e.rel_offset.to_le_bytes());
        b.extend_from_slice(&e.position.to_le_bytes());
    }
    fsio::write_file_atomic(index_path, &finish(b))?;
    let mut b = header(
        KIND_TIMES,
        base,
        next_offset,
        segment_len,
        idx.max_ts,
        idx.times.len(),
    );
    for e in &idx.times {
        b.extend_from_slice(&e.max_ts_before.to_le_bytes());
        b.extend_from_slice(&e.rel_offset.to_le_bytes());
        b.extend_from_slice(&e.position.to_le_bytes());
    }
    fsio::write_file_atomic(time_path, &finish(b))
}

struct Parsed<'a> {
    next: u64,
    max_ts: i64,
    entries: &'a [u8],
}

fn parse<'a>(
    bytes: &'a [u8],
    kind: u32,
    base: u64,
    seg_len: u64,
    entry: usize,
) -> Result<Parsed<'a>, String> {
    if bytes.len() < FILE_HEADER {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    if &bytes[0..4] != MAGIC || u32_at(4) != kind {
        return Err("wrong magic or kind".into());
    }
    let stored_crc = u32_at(FILE_HEADER - 4);
    let mut crc = crc32c::crc32c(&bytes[..FILE_HEADER - 4]);
    crc = crc32c::crc32c_append(crc, &bytes[FILE_HEADER..]);
    if crc != stored_crc {
        return Err("checksum mismatch".into());
    }
    if u64_at(8) != base {
        return Err(format!(
            "base offset {} does not match the file name",
            u64_at(8)
        ));
    }
    if u64_at(24) != seg_len {
        return Err(format!(
            "covers {} segment bytes but the segment has {seg_len}",
            u64_at(24)
        ));
    }
    let count = u32_at(40) as usize;
    let entries = &bytes[FILE_HEADER..];
    if entries.len() != count * entry {
        return Err("entry count does not match the file length".into());
    }
    Ok(Parsed {
        next: u64_at(16),
        max_ts: u64_at(32) as i64,
        entries,
    })
}

/// Loads and checks a sealed segment's index files. `Err` carries why they cannot be
/// trusted (missing, damaged, or not matching the segment); the caller rebuilds them.
pub fn load_sealed(
    index_path: &Path,
    time_path: &Path,
    base: u64,
    segment_len: u64,
) -> Result<SealedIndex, String> {
    let read = |p: &Path| fs::read(p).map_err(|e| format!("`{}`: {e}", p.display()));
    let ob = read(index_path)?;
    let tb = read(time_path)?;
    let o = parse(&ob, KIND_OFFSETS, base, segment_len, 8)?;
    let t = parse(&tb, KIND_TIMES, base, segment_len, 16)?;
    if o.next != t.next || o.max_ts != t.max_ts || o.next < base {
        return Err("offset and time index disagree".into());
    }
    let mut idx = SegmentIndex {
        max_ts: o.max_ts,
        ..SegmentIndex::default()
    };
    let span = o.next - base;
    for c in o.entries.chunks_exact(8) {
        let rel_offset = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let position = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        idx.offsets.push(IndexEntry {
            rel_offset,
            position,
        });
    }
    for c in t.entries.chunks_exact(16) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&c[0..8]);
        idx.times.push(TimeEntry {
            max_ts_before: i64::from_le_bytes(ts),
            rel_offset: u32::from_le_bytes([c[8], c[9], c[10], c[11]]),
            position: u32::from_le_bytes([c[12], c[13], c[14], c[15]]),
        });
    }
    let ordered = idx
        .offsets
        .windows(2)
        .all(|w| w[0].rel_offset < w[1].rel_offset && w[0].position < w[1].position)
        && idx
            .times
            .windows(2)
            .all(|w| w[0].max_ts_before <= w[1].max_ts_before && w[0].position < w[1].position);
    let inside = idx
        .offsets
        .iter()
        .all(|e| (e.rel_offset as u64) < span && (e.position as u64) < segment_len)
        && idx
            .times
            .iter()
            .all(|e| (e.rel_offset as u64) < span && (e.position as u64) < segment_len);
    if !ordered || !inside {
        return Err("entries out of order or outside the segment".into());
    }
    idx.last_indexed = idx.offsets.last().map_or(0, |e| e.position as u64);
    Ok(SealedIndex {
        index: idx,
        next_offset: o.next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_seek_skips_only_records_known_to_be_older() {
        let mut idx = SegmentIndex::default();
        // Records of 5000 bytes (each one indexed) with timestamps 0, 10, 5, 30, 20, ...
        let ts = [0, 10, 5, 30, 20, 40, 35, 50, 60, 55];
        for (i, t) in ts.iter().enumerate() {
            idx.observe(i as u32, i as u64 * 5000, *t);
        }
        assert_eq!(idx.max_ts, 60);
        // Every record before the seek point must be < the target.
        for target in [-1, 0, 6, 21, 36, 56, 61] {
            let (rel, pos) = idx.seek_time(target);
            assert_eq!(pos, rel as u64 * 5000);
            assert!(
                ts[..rel as usize].iter().all(|t| *t < target),
                "target {target}"
            );
        }
        assert_eq!(idx.seek_offset(9), (9, 45_000));
        assert_eq!(idx.seek_offset(3), (3, 15_000));
        assert_eq!(idx.seek_offset(0), (0, 0));
        // Timestamp 21: records 0..=2 are all < 21 (max before 3 is 10), record 3 has 30.
        assert_eq!(idx.seek_time(21), (3, 15_000));
    }

    #[test]
    fn sealed_index_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (ip, tp) = (dir.path().join("0.index"), dir.path().join("0.timeindex"));
        let mut idx = SegmentIndex::default();
        for i in 0..100u32 {
            idx.observe(i, i as u64 * 500, i as i64);
        }
        write_sealed(&ip, &tp, 0, 100, 50_000, &idx).unwrap();
        let s = load_sealed(&ip, &tp, 0, 50_000).unwrap();
        assert_eq!(s.next_offset, 100);
        assert_eq!(s.index.offsets, idx.offsets);
        assert_eq!(s.index.times, idx.times);
        assert!(
            load_sealed(&ip, &tp, 0, 49_999)
                .unwrap_err()
                .contains("covers")
        );
        let mut b = fs::read(&tp).unwrap();
        b[60] ^= 1;
        fs::write(&tp, b).unwrap();
        assert!(
            load_sealed(&ip, &tp, 0, 50_000)
                .unwrap_err()
                .contains("checksum")
        );
    }
}
