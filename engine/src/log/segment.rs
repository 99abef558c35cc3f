//! One segment file `<base>.log` of a partition: its shared state (bytes written, next
//! offset, sparse indexes, read-only maps) and the scanner that validates its bytes on
//! recovery and truncation.
//!
//! Invariants: bytes `[0, written)` hold consecutive valid frames with offsets
//! `base..next_offset`; `written` only grows except under truncation by the partition's
//! writer; a map never covers bytes past `written` at the time it was made; nobody writes
//! through a map.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use memmap2::{Mmap, MmapOptions};

use super::codec::{self, Frame, ProducerTag};
use super::error::LogError;
use super::index::SegmentIndex;
use super::limits::{MAX_RECORD_BYTES, MIN_MAP_BYTES};

/// File name stem of the segment starting at `base` (zero-padded so names sort by offset).
pub fn stem(base: u64) -> String {
    format!("{base:020}")
}

/// `<dir>/<base>.log`
pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{}.log", stem(base)))
}
/// `<dir>/<base>.index`
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{}.index", stem(base)))
}
/// `<dir>/<base>.timeindex`
pub fn time_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{}.timeindex", stem(base)))
}
/// `<dir>/<base>.producers`: idempotent-producer state as of offset `base`.
pub fn producers_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{}.producers", stem(base)))
}

/// Removes a segment's file and its index and snapshot files (missing ones are fine).
pub fn remove_files(dir: &Path, base: u64) -> Result<(), LogError> {
    for path in [
        log_path(dir, base),
        index_path(dir, base),
        time_path(dir, base),
        producers_path(dir, base),
    ] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io("remove", &path, e)),
        }
    }
    Ok(())
}

/// Where recovery found a sealed segment's bytes unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte position of the first bad frame.
    pub position: u64,
    /// The offset that should have started there.
    pub offset: u64,
    /// What check failed.
    pub reason: String,
}

/// A segment shared by the partition's writer and its readers.
#[derive(Debug)]
pub struct Segment {
    /// Offset of its first record.
    pub base: u64,
    /// Its file.
    pub path: PathBuf,
    pub(crate) file: File,
    written: AtomicU64,
    next_offset: AtomicU64,
    sealed: AtomicBool,
    pub(crate) index: RwLock<SegmentIndex>,
    shared_map: Mutex<Option<Arc<Mmap>>>,
    /// Damage found in this segment when the log was opened (sealed segments only).
    pub damage: Option<Damage>,
    /// Bytes from here on were written by this process: reads trust their
    /// checksums (they were computed from the bytes just written). Bytes
    /// before it were on disk at open and are verified on every read.
    trusted_from: u64,
}

impl Segment {
    /// Creates an empty segment file. Only called for a base at the partition's end
    /// offset, so an existing file there can only be the empty leftover of a roll that
    /// failed midway; it is reset.
    pub fn create(dir: &Path, base: u64) -> Result<Segment, LogError> {
        let path = log_path(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| LogError::io("create segment", &path, e))?;
        Ok(Segment::from_parts(
            base,
            path,
            file,
            0,
            base,
            SegmentIndex::default(),
            None,
            false,
        ))
    }

    /// Opens an existing segment file for reading and writing.
    pub fn open_file(path: &Path) -> Result<File, LogError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| LogError::io("open segment", path, e))
    }

    /// Assembles a segment from recovered state.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        base: u64,
        path: PathBuf,
        file: File,
        written: u64,
        next_offset: u64,
        index: SegmentIndex,
        damage: Option<Damage>,
        sealed: bool,
    ) -> Segment {
        Segment {
            base,
            path,
            file,
            written: AtomicU64::new(written),
            next_offset: AtomicU64::new(next_offset),
            sealed: AtomicBool::new(sealed),
            index: RwLock::new(index),
            shared_map: Mutex::new(None),
            damage,
            trusted_from: written,
        }
    }

    /// The byte position from which reads need not verify checksums.
    #[inline]
    pub fn trusted_from(&self) -> u64 {
        self.trusted_from
    }

    /// Bytes of valid records.
    #[inline]
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// The offset after its last record.
    #[inline]
    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// Whether the segment was sealed (a later segment exists).
    pub fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// Largest record timestamp (an upper bound after truncation).
    pub fn max_ts(&self) -> i64 {
        self.index.read().map_or(i64::MIN, |i| i.max_ts)
    }

    /// Publishes newly written bytes (writer only, after the bytes are in the file).
    pub(crate) fn publish(&self, written: u64, next_offset: u64) {
        self.written.store(written, Ordering::Release);
        self.next_offset.store(next_offset, Ordering::Release);
    }

    pub(crate) fn set_sealed(&self, sealed: bool) {
        self.sealed.store(sealed, Ordering::Release);
    }

    /// A read-only map covering at least the first `min(len, written())` bytes (`None` if
    /// that is 0), shared by the segment's readers. An active segment's map reaches ahead
    /// of what is written, to the next power of two (at least `MIN_MAP_BYTES`), so a
    /// reader following the writer maps a segment a handful of times instead of once per
    /// batch: each unmap interrupts every core that runs a thread of this process (TLB
    /// shootdown). The map may therefore reach past the end of the file; callers read
    /// only below a `written()` they loaded, never past `written()` as it was before any
    /// truncation, and so never past the end of the file.
    pub fn map(&self, len: u64) -> Result<Option<Arc<Mmap>>, LogError> {
        let written = self.written();
        let len = len.min(written);
        if len == 0 {
            return Ok(None);
        }
        let mut shared = self.shared_map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = shared.as_ref().filter(|m| m.len() as u64 >= len) {
            return Ok(Some(m.clone()));
        }
        let reach = if self.is_sealed() {
            written
        } else {
            len.next_power_of_two().max(MIN_MAP_BYTES)
        };
        let m = Arc::new(self.map_raw(reach)?);
        *shared = Some(m.clone());
        Ok(Some(m))
    }

    fn map_raw(&self, len: u64) -> Result<Mmap, LogError> {
        // SAFETY: the map is read-only, and every access through it is below a `written`
        // its reader loaded (see `map`), which the file's size never falls below while the
        // segment is live: truncation zeroes bytes in place, and sealing cuts only unwritten
        // preallocation. So no access can fault past the end of the file, even where the
        // map itself reaches further.
        unsafe { MmapOptions::new().len(len as usize).map(&self.file) }
            .map_err(|e| LogError::io("mmap", &self.path, e))
    }
}

/// Why a scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Reached zeros (unwritten space), the end of the file, or the requested offset.
    Clean,
    /// A frame whose length runs past the end of the file.
    Torn,
    /// A frame that failed its checks.
    Bad(&'static str),
}

/// What a scan of a segment file found.
#[derive(Debug)]
pub struct Scan {
    /// End of the last valid frame (or the position of the stop offset).
    pub valid_len: u64,
    /// Offset after the last valid frame.
    pub next_offset: u64,
    /// Indexes built over the valid frames.
    pub index: SegmentIndex,
    /// Why it stopped.
    pub stop: Stop,
    /// The file's length.
    pub file_len: u64,
}

/// Reads `file` from the start, validating frames (checksums, layout, consecutive offsets
/// from `base`) until the first invalid one, or until the record with offset `stop_at`.
/// Calls `on_tag` for each producer-tagged record with its offset.
pub fn scan(
    file: &File,
    path: &Path,
    base: u64,
    stop_at: u64,
    mut on_tag: impl FnMut(ProducerTag, u64),
) -> Result<Scan, LogError> {
    let file_len = file
        .metadata()
        .map_err(|e| LogError::io("stat segment", path, e))?
        .len();
    let mut buf = vec![0u8; 2 * MAX_RECORD_BYTES];
    let (mut buf_start, mut filled) = (0u64, 0usize);
    let mut pos = 0u64;
    let mut next = base;
    let mut index = SegmentIndex::default();
    // The producer batch being read: its tag, first offset and first byte. A tag is
    // reported only once all `count` records of its batch are read.
    let mut open_batch: Option<(ProducerTag, u64, u64)> = None;
    let mut stop = loop {
        if next >= stop_at {
            break Stop::Clean;
        }
        let mut rel = (pos - buf_start) as usize;
        if filled - rel < MAX_RECORD_BYTES && buf_start + (filled as u64) < file_len {
            buf.copy_within(rel..filled, 0);
            filled -= rel;
            buf_start = pos;
            rel = 0;
            while filled < buf.len() && buf_start + (filled as u64) < file_len {
                let n = file
                    .read_at(&mut buf[filled..], buf_start + filled as u64)
                    .map_err(|e| LogError::io("read segment", path, e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
        }
        match codec::decode(&buf[rel..filled]) {
            Frame::Record { view, len } => {
                if view.offset != next {
                    break Stop::Bad("offset out of sequence");
                }
                let rel_offset = next - base;
                if rel_offset > u32::MAX as u64 || pos + len as u64 > u32::MAX as u64 {
                    break Stop::Bad("segment exceeds 4 GiB or 2^32 records");
                }
                index.observe(rel_offset as u32, pos, view.timestamp);
                if let Some(t) = view.producer() {
                    if let Some((t0, b0, _)) = open_batch.take() {
                        on_tag(t0, b0);
                    }
                    open_batch = Some((t, next, pos));
                }
                pos += len as u64;
                next += 1;
                if let Some((t, b, _)) = open_batch
                    && next >= b + u64::from(t.count)
                {
                    on_tag(t, b);
                    open_batch = None;
                }
            }
            Frame::End => break Stop::Clean,
            Frame::Torn => break Stop::Torn,
            Frame::Bad(why) => break Stop::Bad(why),
        }
    };
    // A producer batch is written whole and acknowledged only once it all is: one whose
    // first records survived a crash but not its last was never acknowledged. It goes
    // entirely, so that its retry is appended anew instead of being taken for a duplicate
    // of records that are not all there.
    if let Some((_, b, at)) = open_batch {
        index.truncate((b - base) as u32);
        pos = at;
        next = b;
        if stop == Stop::Clean {
            stop = Stop::Torn;
        }
    }
    Ok(Scan {
        valid_len: pos,
        next_offset: next,
        index,
        stop,
        file_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::codec::Record;
    use proptest::prelude::*;

    fn write_records(n: u64) -> Vec<u8> {
        let mut b = Vec::new();
        for i in 0..n {
            let v = vec![i as u8; (i % 50) as usize];
            codec::encode(
                &mut b,
                100 + i,
                &Record {
                    timestamp: i as i64,
                    key: b"key",
                    value: &v,
                    headers: &[],
                },
                None,
            );
        }
        b
    }

    #[test]
    fn scan_stops_at_zeros_and_at_requested_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.log");
        let mut bytes = write_records(500);
        let data_len = bytes.len() as u64;
        bytes.extend_from_slice(&[0; 4096]);
        std::fs::write(&p, &bytes).unwrap();
        let f = File::open(&p).unwrap();
        let s = scan(&f, &p, 100, u64::MAX, |_, _| {}).unwrap();
        assert_eq!(
            (s.valid_len, s.next_offset, s.stop),
            (data_len, 600, Stop::Clean)
        );
        assert!(!s.index.offsets.is_empty());
        let s = scan(&f, &p, 100, 350, |_, _| {}).unwrap();
        assert_eq!(s.next_offset, 350);
        assert!(matches!(
            codec::decode(&bytes[s.valid_len as usize..]),
            Frame::Record { view, .. } if view.offset == 350
        ));
    }

    #[test]
    fn an_active_segments_map_reaches_ahead_and_is_shared_until_outgrown() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0).unwrap();
        let grow = |to: u64| {
            seg.file.set_len(to).unwrap();
            seg.publish(to, 0);
        };
        assert!(
            seg.map(10).unwrap().is_none(),
            "nothing written, nothing mapped"
        );
        grow(4096);
        let first = seg.map(4096).unwrap().unwrap();
        assert_eq!(
            first.len() as u64,
            MIN_MAP_BYTES,
            "reaches past the end of the file"
        );
        grow(MIN_MAP_BYTES);
        let same = seg.map(MIN_MAP_BYTES).unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&first, &same),
            "no new map while the old one covers it"
        );
        grow(MIN_MAP_BYTES + 1);
        let next = seg.map(MIN_MAP_BYTES + 1).unwrap().unwrap();
        assert_eq!(
            next.len() as u64,
            2 * MIN_MAP_BYTES,
            "doubles when outgrown"
        );
        seg.set_sealed(true);
        let sealed = seg.map(10).unwrap().unwrap();
        assert!(Arc::ptr_eq(&next, &sealed), "sealing keeps the shared map");
        assert_eq!(&first[..16], &[0u8; 16], "reads below what is written work");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        // Fuzz: any file contents as a segment: no panic, the result stays inside the file,
        // and everything it accepts re-decodes as consecutive records.
        #[test]
        fn scan_of_arbitrary_bytes_is_safe(
            prefix in 0u64..20,
            garbage in proptest::collection::vec(any::<u8>(), 0..3000),
            cut in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("s.log");
            let mut bytes = write_records(prefix);
            let at = cut.index(bytes.len() + 1);
            bytes.truncate(at);
            bytes.extend_from_slice(&garbage);
            std::fs::write(&p, &bytes).unwrap();
            let f = File::open(&p).unwrap();
            let s = scan(&f, &p, 100, u64::MAX, |_, _| {}).unwrap();
            prop_assert!(s.valid_len <= s.file_len);
            let mut pos = 0usize;
            for off in 100..s.next_offset {
                match codec::decode(&bytes[pos..]) {
                    Frame::Record { view, len } => { prop_assert_eq!(view.offset, off); pos += len; }
                    other => prop_assert!(false, "offset {} not decodable: {:?}", off, other),
                }
            }
            prop_assert_eq!(pos as u64, s.valid_len);
        }
    }
}
