//! Checkpoint files: what a shard needs to resume a job exactly where a
//! durable point left it.
//!
//! Layout: `<data>/checkpoints/<job>/shard-<n>/<id>.ckpt`, where `id` grows
//! by one per checkpoint of the job. A file is
//! `magic "SLCK" | u32 format | u64 payload length | payload | u32 CRC-32C`
//! (little-endian; the CRC covers everything before it), the payload being
//! the MessagePack of [`Checkpoint`]. It is written to a temporary file,
//! fsynced, renamed into place, and the directory fsynced; only then are
//! older files removed, keeping the newest [`KEEP`], so a crash at any moment
//! leaves at least one complete checkpoint.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::view::ViewPart;
use crate::time::SourceClock;

const MAGIC: &[u8; 4] = b"SLCK";
const FORMAT: u32 = 1;
/// Checkpoint files kept per shard directory.
pub const KEEP: usize = 2;
/// Largest checkpoint file read back (guards against a corrupt length).
pub const MAX_CHECKPOINT_BYTES: u64 = 16 << 30;

/// Where one input stream of a task stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Next offset to process.
    pub offset: u64,
    /// The source clock (source streams only).
    pub clock: Option<SourceClock>,
    /// The merge promise of this stream (tag of the last processed record).
    pub low: i64,
}

/// One operator instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    /// `name@version` that produced the snapshot.
    pub plugin: String,
    #[serde(with = "serde_bytes")]
    pub snapshot: Vec<u8>,
    /// The watermark the operator has been brought to.
    pub watermark: i64,
    /// Sequence number for records this operator passes to the next one.
    pub next_seq: u64,
}

/// One task: a (stage, partition) of the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub stage: u32,
    pub partition: u32,
    pub inputs: Vec<StreamPosition>,
    pub operators: Vec<OperatorState>,
    /// Length (end offset) of every partition the task writes.
    pub outputs: Vec<(String, u32, u64)>,
    pub views: Vec<(String, ViewPart)>,
    pub records_in: u64,
    pub records_out: u64,
}

impl TaskState {
    /// The checkpointed end of `partition` of output `topic`, if the task writes it.
    pub fn output_end(&self, topic: &str, partition: u32) -> Option<u64> {
        self.outputs
            .iter()
            .find(|(t, q, _)| t == topic && *q == partition)
            .map(|(_, _, end)| *end)
    }
}

/// A shard's checkpoint of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub job: String,
    pub shard: u32,
    pub id: u64,
    pub created_ms: i64,
    pub tasks: Vec<TaskState>,
}

/// Errors of checkpoint files.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {path} is unusable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// The directory of a job's checkpoints.
pub fn job_dir(data_dir: &Path, job: &str) -> PathBuf {
    data_dir.join("checkpoints").join(job)
}

fn shard_dir(data_dir: &Path, job: &str, shard: u32) -> PathBuf {
    job_dir(data_dir, job).join(format!("shard-{shard}"))
}

fn file_name(id: u64) -> String {
    format!("{id:020}.ckpt")
}

fn encode(c: &Checkpoint) -> Vec<u8> {
    let payload = rmp_serde::to_vec_named(c).expect("checkpoint state always encodes");
    let mut out = Vec::with_capacity(payload.len() + 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    if bytes.len() < 20 || &bytes[..4] != MAGIC {
        return Err(corrupt(
            "not a Sluice checkpoint (bad magic or too short)".into(),
        ));
    }
    let format = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if format != FORMAT {
        return Err(corrupt(format!(
            "format {format}, this build reads format {FORMAT}"
        )));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let expected = 16u64.checked_add(len).and_then(|n| n.checked_add(4));
    if expected != Some(bytes.len() as u64) {
        return Err(corrupt(format!(
            "truncated: header says {len} payload bytes, file has {}",
            bytes.len()
        )));
    }
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c(&bytes[..body_end]);
    if stored != actual {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x})"
        )));
    }
    rmp_serde::from_slice(&bytes[16..body_end]).map_err(|e| corrupt(format!("payload: {e}")))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Writes `c` durably and prunes older files. Returns the file and its size.
pub fn write(data_dir: &Path, c: &Checkpoint) -> Result<(PathBuf, u64), CheckpointError> {
    let dir = shard_dir(data_dir, &c.job, c.shard);
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let bytes = encode(c);
    let path = dir.join(file_name(c.id));
    let tmp = dir.join(format!("{}.tmp", file_name(c.id)));
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))?;
    // Only now may older checkpoints go.
    let mut ids = list_ids(&dir);
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for old in ids.into_iter().skip(KEEP) {
        let _ = fs::remove_file(dir.join(file_name(old)));
    }
    Ok((path, bytes.len() as u64))
}

fn list_ids(dir: &Path) -> Vec<u64> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".ckpt")?.parse::<u64>().ok()
        })
        .collect()
}

/// What loading found: the newest valid checkpoint of every shard directory
/// of the job, and the problems met on the way (corrupt files skipped).
#[derive(Debug, Default)]
pub struct Loaded {
    pub checkpoints: Vec<Checkpoint>,
    pub problems: Vec<CheckpointError>,
}

impl Loaded {
    /// The newest state of each task over all shard directories (a task moves
    /// between shard directories when the shard count changes).
    pub fn tasks(&self) -> Vec<&TaskState> {
        let mut best: std::collections::BTreeMap<(u32, u32), (u64, &TaskState)> =
            Default::default();
        for c in &self.checkpoints {
            for t in &c.tasks {
                let slot = best.entry((t.stage, t.partition)).or_insert((c.id, t));
                if c.id > slot.0 {
                    *slot = (c.id, t);
                }
            }
        }
        best.into_values().map(|(_, t)| t).collect()
    }

    /// The largest checkpoint id seen (new checkpoints continue after it).
    pub fn last_id(&self) -> u64 {
        self.checkpoints.iter().map(|c| c.id).max().unwrap_or(0)
    }
}

/// Loads the newest valid checkpoint per shard directory of `job`.
pub fn load(data_dir: &Path, job: &str) -> Loaded {
    let mut out = Loaded::default();
    let Ok(rd) = fs::read_dir(job_dir(data_dir, job)) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut ids = list_ids(&dir);
        ids.sort_unstable_by(|a, b| b.cmp(a));
        for id in ids {
            let path = dir.join(file_name(id));
            let read = fs::metadata(&path).and_then(|m| {
                if m.len() > MAX_CHECKPOINT_BYTES {
                    Err(std::io::Error::other(format!(
                        "{} bytes is over the {MAX_CHECKPOINT_BYTES}-byte limit",
                        m.len()
                    )))
                } else {
                    fs::read(&path)
                }
            });
            match read
                .map_err(|e| CheckpointError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })
                .and_then(|b| decode(&path, &b))
            {
                Ok(c) => {
                    out.checkpoints.push(c);
                    break;
                }
                Err(e) => out.problems.push(e),
            }
        }
    }
    out
}

/// Removes every checkpoint of `job` (job deleted).
pub fn remove_all(data_dir: &Path, job: &str) -> std::io::Result<()> {
    match fs::remove_dir_all(job_dir(data_dir, job)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: u64, shard: u32) -> Checkpoint {
        Checkpoint {
            job: "j".into(),
            shard,
            id,
            created_ms: 1,
            tasks: vec![TaskState {
                stage: 0,
                partition: shard,
                inputs: vec![StreamPosition {
                    offset: id * 10,
                    clock: Some(SourceClock::new(4000)),
                    low: 5,
                }],
                operators: vec![OperatorState {
                    plugin: "p@1".into(),
                    snapshot: vec![1, 2, 3],
                    watermark: 9,
                    next_seq: 4,
                }],
                outputs: vec![("out".into(), shard, 77)],
                views: vec![],
                records_in: 10,
                records_out: 3,
            }],
        }
    }

    #[test]
    fn newest_checkpoint_wins_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for id in 1..=4 {
            write(dir.path(), &sample(id, 0)).unwrap();
        }
        let files = list_ids(&shard_dir(dir.path(), "j", 0));
        assert_eq!(files.len(), KEEP);
        let loaded = load(dir.path(), "j");
        assert!(loaded.problems.is_empty());
        assert_eq!(loaded.checkpoints[0].id, 4);
        assert_eq!(loaded.checkpoints[0], sample(4, 0));
    }

    #[test]
    fn flipped_byte_falls_back_to_the_previous_checkpoint_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample(1, 0)).unwrap();
        let (path, _) = write(dir.path(), &sample(2, 0)).unwrap();
        let mut b = fs::read(&path).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        fs::write(&path, b).unwrap();
        let loaded = load(dir.path(), "j");
        assert_eq!(loaded.checkpoints[0].id, 1);
        let msg = loaded.problems[0].to_string();
        assert!(
            msg.contains("checksum") && msg.contains("00000000000000000002.ckpt"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_checkpoint_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (path, size) = write(dir.path(), &sample(1, 0)).unwrap();
        let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(size - 7).unwrap();
        let loaded = load(dir.path(), "j");
        assert!(loaded.checkpoints.is_empty());
        assert!(loaded.problems[0].to_string().contains("truncated"));
    }

    #[test]
    fn tasks_take_the_newest_state_across_shard_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = sample(3, 1);
        old.tasks[0].partition = 0;
        write(dir.path(), &old).unwrap();
        write(dir.path(), &sample(5, 0)).unwrap();
        let loaded = load(dir.path(), "j");
        let tasks = loaded.tasks();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].inputs[0].offset, 50);
        assert_eq!(loaded.last_id(), 5);
    }
}
