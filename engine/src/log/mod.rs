//! `log`: the durable, memory-mapped, partitioned event log (DESIGN.md §3).
//!
//! Owns everything under `<data>/topics/`: topics made of partitions made of segment files
//! `<data>/topics/<topic>/<partition>/<base-offset>.log`, each with a sparse offset index
//! (`.index`), a time index (`.timeindex`) and an idempotent-producer snapshot
//! (`.producers`) beside it. Knows nothing of shards, jobs or Wasm; the shard layer owns
//! one [`PartitionWriter`] per partition and any code may hold [`PartitionReader`]s.
//!
//! Invariants kept here:
//! - every offset below a partition's `end_offset` is fully written and readable (or
//!   reported as damaged); nothing of a batch is visible before all of it is written;
//! - an acknowledged batch under `fsync = always` (via `append_durable`) survives kill -9
//!   and power loss; on open, a torn or corrupt tail is cut, never served;
//! - a segment map never covers bytes not yet written and nothing writes through a map;
//! - files are created, renamed and removed with their directory fsynced afterwards.

mod codec;
mod config;
mod error;
pub(crate) mod fsio;
mod index;
pub mod limits;
mod partition;
mod producer;
mod reader;
mod recovery;
mod retention;
mod segment;
mod syncer;
mod topic;
mod writer;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

pub use codec::{HeaderIter, ProducerTag, Record, RecordView};
pub use config::{FsyncPolicy, LogOptions, Retention, TopicConfig, validate_topic_name};
pub use error::LogError;
pub use partition::{DamageReport, Partition};
pub use producer::ProducerSeq;
pub use reader::{PartitionReader, ReadOutcome};
pub use retention::RetentionReport;
pub use segment::Damage;
pub use topic::Topic;
pub use writer::{AppendAck, PartitionWriter};

// The threading contract the shards rely on.
const _: () = {
    const fn send<T: Send>() {}
    const fn sync<T: Send + Sync>() {}
    send::<PartitionWriter>();
    send::<PartitionReader>();
    sync::<Partition>();
    sync::<Topic>();
    sync::<Log>();
};

/// State every partition of a log shares: the quota counter and the syncer queue.
pub(crate) struct Shared {
    pub used: AtomicU64,
    pub quota: Option<u64>,
    pub syncer: Arc<syncer::SyncQueue>,
}

impl Shared {
    /// Reserves `n` bytes of the quota, or fails with `QuotaFull`.
    pub(crate) fn reserve(&self, n: u64) -> Result<(), LogError> {
        let before = self.used.fetch_add(n, Ordering::AcqRel);
        if let Some(quota) = self.quota
            && before + n > quota
        {
            self.used.fetch_sub(n, Ordering::AcqRel);
            return Err(LogError::QuotaFull {
                quota,
                used: before,
                needed: n,
            });
        }
        Ok(())
    }

    pub(crate) fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// An opened data directory: all topics, the quota and the background syncer.
pub struct Log {
    dir: PathBuf,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    shared: Arc<Shared>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    admin: Mutex<()>,
    _lock: File,
}

const LOCK_FILE: &str = "LOCK";
const TOPICS_DIR: &str = "topics";
const TRASH_DIR: &str = "trash";

fn unique_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Log {
    /// Opens (creating if needed) the log in `data_dir`, recovering every topic. Fails with
    /// `Locked` if another `Log` has it open.
    pub fn open(data_dir: &Path, opts: LogOptions) -> Result<Arc<Log>, LogError> {
        let topics_dir = data_dir.join(TOPICS_DIR);
        let trash = data_dir.join(TRASH_DIR);
        for d in [&topics_dir, &trash] {
            fs::create_dir_all(d).map_err(|e| LogError::io("create directory", d, e))?;
        }
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| LogError::io("open", &lock_path, e))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(LogError::Locked { path: lock_path });
        }
        // Half-created and half-deleted topics live in the trash; finish them off.
        for ent in fs::read_dir(&trash).map_err(|e| LogError::io("list directory", &trash, e))? {
            let p = ent
                .map_err(|e| LogError::io("list directory", &trash, e))?
                .path();
            fs::remove_dir_all(&p).map_err(|e| LogError::io("remove", &p, e))?;
        }
        let shared = Arc::new(Shared {
            used: AtomicU64::new(0),
            quota: opts.quota_bytes,
            syncer: Arc::new(syncer::SyncQueue::default()),
        });
        let mut topics = BTreeMap::new();
        let mut names: Vec<PathBuf> = fs::read_dir(&topics_dir)
            .map_err(|e| LogError::io("list directory", &topics_dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        for dir in names {
            if !dir.join(topic::TOPIC_FILE).exists() {
                tracing::warn!(dir = %dir.display(), "log recovery: removing a topic whose creation was cut short");
                let to = trash.join(format!("incomplete-{}", unique_suffix()));
                fs::rename(&dir, &to).map_err(|e| LogError::io("rename", &dir, e))?;
                fs::remove_dir_all(&to).map_err(|e| LogError::io("remove", &to, e))?;
                continue;
            }
            let t = Topic::open(&dir, &shared)?;
            topics.insert(t.name().to_string(), Arc::new(t));
        }
        let handle = shared
            .syncer
            .start()
            .map_err(|e| LogError::io("spawn syncer thread", data_dir, e))?;
        Ok(Arc::new(Log {
            dir: data_dir.to_path_buf(),
            topics: RwLock::new(topics),
            shared,
            syncer: Mutex::new(Some(handle)),
            admin: Mutex::new(()),
            _lock: lock,
        }))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a topic after validating its settings; durable when this returns.
    pub fn create_topic(&self, cfg: TopicConfig) -> Result<Arc<Topic>, LogError> {
        cfg.validate()?;
        let _a = partition::lock(&self.admin);
        if self.topic(&cfg.name).is_some() {
            return Err(LogError::TopicExists(cfg.name));
        }
        let topics_dir = self.dir.join(TOPICS_DIR);
        let dir = topics_dir.join(&cfg.name);
        if dir.exists() {
            return Err(LogError::TopicExists(cfg.name));
        }
        let t = match Topic::create(&dir, &cfg, &self.shared) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        fsio::fsync_dir(&topics_dir)?;
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.name().to_string(), t.clone());
        Ok(t)
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// All topics, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Deletes a topic and its data, durably. Its live writers fail from then on with
    /// `TopicDeleted`; readers keep the maps they already hold.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let _a = partition::lock(&self.admin);
        let t = self
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        for p in t.partitions() {
            let _w = partition::lock(&p.write);
            p.deleted.store(true, Ordering::Release);
            self.shared.release(p.size_bytes());
        }
        let trash = self
            .dir
            .join(TRASH_DIR)
            .join(format!("delete-{}", unique_suffix()));
        fs::rename(t.dir(), &trash).map_err(|e| LogError::io("rename", t.dir(), e))?;
        fsio::fsync_dir(&self.dir.join(TOPICS_DIR))?;
        fs::remove_dir_all(&trash).map_err(|e| LogError::io("remove", &trash, e))?;
        fsio::fsync_dir(&self.dir.join(TRASH_DIR))
    }

    /// Applies every topic's retention at wall-clock time `now_ms` (epoch ms).
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, LogError> {
        let mut total = RetentionReport::default();
        for t in self.topics() {
            for p in t.partitions() {
                let r = p.enforce_retention(now_ms)?;
                total.segments_removed += r.segments_removed;
                total.bytes_removed += r.bytes_removed;
            }
        }
        Ok(total)
    }

    /// Bytes of records held by all topics (what `quota_bytes` bounds).
    pub fn total_bytes(&self) -> u64 {
        self.shared.used.load(Ordering::Acquire)
    }

    /// The configured quota.
    pub fn quota_bytes(&self) -> Option<u64> {
        self.shared.quota
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shared.syncer.stop();
        if let Some(h) = partition::lock(&self.syncer).take() {
            let _ = h.join();
        }
        for t in self.topics() {
            for p in t.partitions() {
                if let Err(e) = p.flush() {
                    tracing::error!(error = %e, "log shutdown: final fdatasync failed");
                }
            }
        }
    }
}
