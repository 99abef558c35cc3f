//! A partition: its ordered segments, its published offsets (start, end, durable) and its
//! recovery on open. Shared by one [`PartitionWriter`](super::PartitionWriter) and any
//! number of [`PartitionReader`](super::PartitionReader)s on any threads.
//!
//! Invariants: `segments` is never empty and ordered by base; the last one is the active
//! segment, the only one written to; every offset in `[start_offset, end_offset)` is in a
//! segment and readable (or reported as damaged); `durable_offset <= end_offset`, and every
//! record below it has been fdatasynced.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Shared;
use super::config::TopicConfig;
use super::error::LogError;
use super::fsio;
use super::index;
use super::producer::Producers;
use super::segment::{self, Damage, Segment};

/// Writer-only state, behind a mutex that only the partition's single writer (and
/// truncation, which is a writer operation) takes, once per batch.
#[derive(Default)]
pub(crate) struct WriteState {
    pub buf: Vec<u8>,
    pub producers: Producers,
    /// Bytes of the active segment file reserved with `fallocate`.
    pub allocated: u64,
}

#[derive(Default)]
struct DurableState {
    offset: u64,
    failed: Option<String>,
}

/// Damage found in a sealed segment when the log was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamageReport {
    /// The segment file.
    pub file: PathBuf,
    /// Where, and what failed.
    pub damage: Damage,
}

/// One partition of a topic.
pub struct Partition {
    pub(crate) topic: String,
    pub(crate) id: u32,
    pub(crate) dir: PathBuf,
    pub(crate) config: TopicConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    start: AtomicU64,
    end: AtomicU64,
    size: AtomicU64,
    durable: Mutex<DurableState>,
    durable_cv: Condvar,
    durable_tx: watch::Sender<u64>,
    pub(crate) writer_alive: AtomicBool,
    pub(crate) write: Mutex<WriteState>,
    sync_lock: Mutex<()>,
    /// Sealed segments whose bytes and index files are not yet durable (see `flush`).
    pending_seal: Mutex<Vec<Arc<Segment>>>,
    /// Producer snapshots taken at rolls, `(as of offset, bytes)`, not yet written.
    pending_snapshots: Mutex<Vec<(u64, Vec<u8>)>>,
    pub(crate) sync_queued: AtomicBool,
    pub(crate) deleted: AtomicBool,
    /// Bumped by truncation; readers drop cached positions when it changes.
    pub(crate) generation: AtomicU64,
    damage: Vec<DamageReport>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a log lock leaves no half-updated invariant that matters more
    // than staying available: state is re-validated from disk on the next open.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Partition {
    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition index.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The oldest offset still held (older ones were removed by retention).
    pub fn start_offset(&self) -> u64 {
        self.start.load(Ordering::Acquire)
    }

    /// The next offset to be written; every offset below it (and at or past
    /// `start_offset`) is readable.
    #[inline]
    pub fn end_offset(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// Every offset below this has been fdatasynced.
    pub fn durable_offset(&self) -> u64 {
        lock(&self.durable).offset
    }

    /// Bytes of records held.
    pub fn size_bytes(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Damage found in sealed segments when the log was opened; reads of those offsets
    /// fail with `LogError::Corrupt`.
    pub fn damage(&self) -> &[DamageReport] {
        &self.damage
    }

    /// The exclusive writer. Fails with `WriterBusy` while another one is alive.
    pub fn writer(self: &Arc<Self>) -> Result<super::PartitionWriter, LogError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(LogError::TopicDeleted(self.topic.clone()));
        }
        if self.writer_alive.swap(true, Ordering::AcqRel) {
            return Err(LogError::WriterBusy {
                topic: self.topic.clone(),
                partition: self.id,
            });
        }
        Ok(super::PartitionWriter::new(self.clone()))
    }

    /// A new reader (cheap; any thread).
    pub fn reader(self: &Arc<Self>) -> super::PartitionReader {
        super::PartitionReader::new(self.clone())
    }

    /// Blocks until `durable_offset() >= offset_exclusive` or the timeout passes; true if
    /// durable. Also false at once if an fsync of this partition failed.
    pub fn wait_durable(&self, offset_exclusive: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.durable);
        loop {
            if st.offset >= offset_exclusive {
                return true;
            }
            let now = Instant::now();
            if st.failed.is_some() || now >= deadline {
                return false;
            }
            st = match self.durable_cv.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// A watch of `durable_offset()`, for async code. The value can go down only through
    /// `PartitionWriter::truncate`.
    pub fn durable_watch(&self) -> watch::Receiver<u64> {
        self.durable_tx.subscribe()
    }

    pub(crate) fn set_end(&self, end: u64) {
        self.end.store(end, Ordering::SeqCst);
    }
    pub(crate) fn set_start(&self, start: u64) {
        self.start.store(start, Ordering::Release);
    }
    pub(crate) fn add_size(&self, n: u64) {
        self.size.fetch_add(n, Ordering::AcqRel);
    }
    pub(crate) fn sub_size(&self, n: u64) {
        self.size.fetch_sub(n, Ordering::AcqRel);
    }

    pub(crate) fn active(&self) -> Arc<Segment> {
        let segs = self.segments.read().unwrap_or_else(|p| p.into_inner());
        segs.last()
            .cloned()
            .expect("a partition always has a segment")
    }

    pub(crate) fn sync_failure(&self) -> Option<String> {
        lock(&self.durable).failed.clone()
    }

    /// Publishes `offset` as durable (never lowering it, except via `reset_durable`).
    pub(crate) fn publish_durable(&self, offset: u64) {
        let mut st = lock(&self.durable);
        if offset > st.offset {
            st.offset = offset;
            drop(st);
            self.durable_tx.send_replace(offset);
            self.durable_cv.notify_all();
        }
    }

    /// Sets the durable offset after truncation made `offset` the durable end.
    pub(crate) fn reset_durable(&self, offset: u64) {
        lock(&self.durable).offset = offset;
        self.durable_tx.send_replace(offset);
        self.durable_cv.notify_all();
    }

    pub(crate) fn sync_guard(&self) -> MutexGuard<'_, ()> {
        lock(&self.sync_lock)
    }

    /// Queues a rolled segment's seal and the producer snapshot taken as of the next
    /// segment's base, for the next flush.
    pub(crate) fn add_pending_seal(&self, seg: Arc<Segment>, snapshot: (u64, Vec<u8>)) {
        // Snapshot first: `flush` looks at seals to know whether a roll happened.
        lock(&self.pending_snapshots).push(snapshot);
        lock(&self.pending_seal).push(seg);
    }

    /// Forgets pending seals of segments at or after `base` (truncation removed them or
    /// made one active again), and snapshots of segments after it. Called with the sync
    /// guard held.
    pub(crate) fn drop_pending_seals_from(&self, base: u64) {
        lock(&self.pending_seal).retain(|s| s.base < base);
        lock(&self.pending_snapshots).retain(|(at, _)| *at <= base);
    }

    /// Writes the producer snapshots taken at rolls and fsyncs the directory, which makes
    /// the entries of the segments created by those rolls durable too. A snapshot that
    /// cannot be written is dropped with a warning (recovery rebuilds the state from the
    /// records); a directory that cannot be fsynced is an error.
    fn write_pending_snapshots(&self) -> Result<(), LogError> {
        let snapshots = std::mem::take(&mut *lock(&self.pending_snapshots));
        let start = self.start_offset();
        // Each written snapshot fsyncs the directory; it must be fsynced after the last
        // failure, or if there was nothing to write.
        let mut dir_unsynced = true;
        for (at, bytes) in snapshots {
            if at < start {
                continue; // its segment is gone to retention
            }
            let path = segment::producers_path(&self.dir, at);
            dir_unsynced = match fsio::write_file_atomic(&path, &bytes) {
                Ok(()) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "log: producer snapshot not written; a restart rebuilds it from the records");
                    true
                }
            };
        }
        if dir_unsynced {
            fsio::fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Makes everything below the end offset durable and publishes it: finishes sealing
    /// rolled segments (fsync, then their index files: an index file on disk means its
    /// segment is durable) and fdatasyncs the active segment. A failed fsync is sticky:
    /// durable appends fail with `SyncFailed` from then on. Called by the syncer,
    /// `PartitionWriter::sync` and shutdown.
    pub(crate) fn flush(&self) -> Result<(), LogError> {
        let _g = self.sync_guard();
        if self.deleted.load(Ordering::Acquire) {
            return Ok(());
        }
        // Order matters: a roll racing with this pushes the old segment to the pending list
        // before publishing the new one, so `end`'s records are in `active` or in `pending`.
        let end = self.end_offset();
        let active = self.active();
        let pending: Vec<Arc<Segment>> = lock(&self.pending_seal).clone();
        if end <= self.durable_offset() && pending.is_empty() {
            return Ok(());
        }
        let start = self.start_offset();
        let mut done: Vec<&Arc<Segment>> = Vec::with_capacity(pending.len());
        let mut result = Ok(());
        for s in &pending {
            if s.base < start {
                done.push(s); // removed by retention meanwhile
                continue;
            }
            if let Err(e) = s.file.sync_all() {
                result = Err(LogError::io("fsync", &s.path, e));
                break;
            }
            // The data is durable; the index files only spare a scan on the next open, so
            // failing to write them (say, disk full) is retried at the next flush.
            match self.write_index_files(s) {
                Ok(()) => done.push(s),
                Err(e) => {
                    tracing::warn!(error = %e, "log: index files of a sealed segment not written yet; will retry")
                }
            }
        }
        if result.is_ok() && !pending.is_empty() {
            result = self.write_pending_snapshots();
        }
        if result.is_ok() {
            result = active
                .file
                .sync_data()
                .map_err(|e| LogError::io("fdatasync", &active.path, e));
        }
        if let Err(err) = result {
            // After a failed fsync the kernel may have dropped the dirty pages: nothing
            // written since the last good sync can be promised durable again.
            let mut st = lock(&self.durable);
            st.failed = Some(err.to_string());
            drop(st);
            self.durable_cv.notify_all();
            return Err(err);
        }
        lock(&self.pending_seal).retain(|s| !done.iter().any(|q| Arc::ptr_eq(q, s)));
        self.publish_durable(end);
        Ok(())
    }

    fn write_index_files(&self, s: &Segment) -> Result<(), LogError> {
        let idx = s.index.read().unwrap_or_else(|e| e.into_inner());
        index::write_sealed(
            &segment::index_path(&self.dir, s.base),
            &segment::time_path(&self.dir, s.base),
            s.base,
            s.next_offset(),
            s.written(),
            &idx,
        )
    }

    /// Creates the directory and first segment of a new partition.
    pub(crate) fn create(
        dir: PathBuf,
        config: TopicConfig,
        id: u32,
        shared: Arc<Shared>,
    ) -> Result<Partition, LogError> {
        fs::create_dir_all(&dir).map_err(|e| LogError::io("create directory", &dir, e))?;
        let seg = Segment::create(&dir, 0)?;
        fsio::fsync_dir(&dir)?;
        Ok(Self::assemble(
            dir,
            config,
            id,
            shared,
            vec![Arc::new(seg)],
            Producers::default(),
            Vec::new(),
        ))
    }

    pub(super) fn assemble(
        dir: PathBuf,
        config: TopicConfig,
        id: u32,
        shared: Arc<Shared>,
        segments: Vec<Arc<Segment>>,
        producers: Producers,
        damage: Vec<DamageReport>,
    ) -> Partition {
        let start = segments.first().map_or(0, |s| s.base);
        let end = segments.last().map_or(0, |s| s.next_offset());
        let size: u64 = segments.iter().map(|s| s.written()).sum();
        let allocated = segments.last().map_or(0, |s| s.written());
        shared.used.fetch_add(size, Ordering::AcqRel);
        let (durable_tx, _) = watch::channel(end);
        Partition {
            topic: config.name.clone(),
            id,
            dir,
            config,
            shared,
            segments: RwLock::new(segments),
            start: AtomicU64::new(start),
            end: AtomicU64::new(end),
            size: AtomicU64::new(size),
            durable: Mutex::new(DurableState {
                offset: end,
                failed: None,
            }),
            durable_cv: Condvar::new(),
            durable_tx,
            writer_alive: AtomicBool::new(false),
            write: Mutex::new(WriteState {
                buf: Vec::new(),
                producers,
                allocated,
            }),
            sync_lock: Mutex::new(()),
            pending_seal: Mutex::new(Vec::new()),
            pending_snapshots: Mutex::new(Vec::new()),
            sync_queued: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            damage,
        }
    }
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("start", &self.start_offset())
            .field("end", &self.end_offset())
            .field("durable", &self.durable_offset())
            .finish_non_exhaustive()
    }
}
