//! The one error type of the log. Every variant names what it was about (topic,
//! partition, file, byte position) and, where a person can act, what to do.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in `sluice::log`.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An operating-system call failed for a reason other than a full disk.
    #[error("log I/O error: {op} `{}`: {source}", path.display())]
    Io {
        /// What the log was doing (`"pwrite"`, `"fdatasync"`, `"open"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The file system has no room (ENOSPC / EDQUOT). Nothing of the failed append is visible.
    #[error(
        "disk full: {op} `{}` needed {needed} more bytes and the file system refused (ENOSPC); \
         {available} bytes are free there. Nothing of this batch was written. Free disk space, \
         lower the topics' retention, or delete topics, then retry",
        path.display()
    )]
    DiskFull {
        /// What the log was doing.
        op: &'static str,
        /// The file it was growing.
        path: PathBuf,
        /// Bytes the operation needed.
        needed: u64,
        /// Free bytes on the file system when the error was seen (0 if unknown).
        available: u64,
    },

    /// An earlier fsync of this partition failed, so the kernel may have dropped written
    /// pages; nothing more is acknowledged as durable until the log is reopened.
    #[error(
        "partition {topic}/{partition} cannot promise durability: an earlier fsync failed \
         ({reason}); written data may have been dropped by the kernel. Fix the storage problem \
         and restart Sluice, which recovers the partition from what is on disk"
    )]
    SyncFailed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The fsync error.
        reason: String,
    },

    /// The Log's configured byte quota would be exceeded by this append.
    #[error(
        "log quota full: appending {needed} bytes would bring the log to {} bytes, over its quota \
         of {quota} bytes ({used} in use). Nothing was written. Raise `quota_bytes`, lower the \
         topics' retention, or delete topics, then retry",
        used + needed
    )]
    QuotaFull {
        /// The configured quota (`LogOptions::quota_bytes`).
        quota: u64,
        /// Bytes in use before this append.
        used: u64,
        /// Bytes this append needed.
        needed: u64,
    },

    /// A topic name broke the naming rules.
    #[error("invalid topic name `{name}`: {reason}")]
    InvalidTopicName {
        /// The name as given (truncated to 200 characters).
        name: String,
        /// Which rule it broke.
        reason: String,
    },

    /// A topic setting is impossible or out of bounds.
    #[error("invalid configuration for topic `{topic}`: {reason}")]
    InvalidConfig {
        /// The topic.
        topic: String,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// `create_topic` for a name that exists.
    #[error("topic `{0}` already exists; delete it first or choose another name")]
    TopicExists(String),

    /// The topic is not (or no longer) in this log.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),

    /// The topic was deleted while a writer or reader still held it.
    #[error("topic `{0}` was deleted; its writers and readers are no longer usable")]
    TopicDeleted(String),

    /// A partition index past the topic's partition count.
    #[error("topic `{topic}` has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// Its partition count.
        partitions: u32,
        /// The partition asked for.
        partition: u32,
    },

    /// `Partition::writer` while another `PartitionWriter` for it is alive.
    #[error(
        "partition {topic}/{partition} already has a writer; a partition has exactly one \
         writer (its shard) — drop the other PartitionWriter first"
    )]
    WriterBusy {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },

    /// A batch, record or field over one of the named limits in `log::limits`.
    #[error(
        "{what} is {actual}, over the limit {limit_name} = {limit}; split the batch or shrink the record"
    )]
    TooLarge {
        /// What was measured ("batch record count", "record 3 encoded size", ...).
        what: String,
        /// Its size.
        actual: u64,
        /// The name of the constant that bounds it.
        limit_name: &'static str,
        /// The bound.
        limit: u64,
    },

    /// An append with no records.
    #[error("empty batch for {topic}/{partition}: a batch needs at least one record")]
    EmptyBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },

    /// A retry of a batch too old for the log to remember its offsets.
    #[error(
        "producer {producer} on {topic}/{partition}: sequence {got} was already appended but is \
         older than the last {window} batches remembered (oldest remembered: {oldest}, next \
         expected {expected}); it is not written again — treat it as delivered"
    )]
    SequenceTooOld {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The producer id.
        producer: u64,
        /// The sequence received.
        got: u64,
        /// The oldest sequence whose offsets are remembered.
        oldest: u64,
        /// The sequence expected next.
        expected: u64,
        /// `PRODUCER_WINDOW`.
        window: usize,
    },

    /// A retry whose record count differs from the original batch with that sequence.
    #[error(
        "producer {producer} on {topic}/{partition}: sequence {sequence} was appended with \
         {original} records but retried with {retried}; a retry must resend the same batch"
    )]
    RetryMismatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The producer id.
        producer: u64,
        /// The sequence.
        sequence: u64,
        /// Records in the original batch.
        original: u32,
        /// Records in the retry.
        retried: u32,
    },

    /// A read or truncate at an offset the partition does not hold.
    #[error(
        "offset {requested} is outside {topic}/{partition}, which holds offsets \
         [{start}, {end}); read from {start} or later"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset asked for.
        requested: u64,
        /// The partition's first offset (older ones were removed by retention).
        start: u64,
        /// The partition's next offset.
        end: u64,
    },

    /// Stored bytes failed their checksum or framing; they are never served as data.
    #[error(
        "corrupt record in `{}` at byte {position} (offset {offset}): {reason}; the record is \
         not served. Restore the file from a replica/backup, or read from offset {} onwards",
        file.display(), offset + 1
    )]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte position of the bad frame in the file.
        position: u64,
        /// The offset that should be there.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// The data directory is already opened by another `Log` (this or another process).
    #[error(
        "data directory `{}` is in use by another Sluice log (lock file held); stop the other \
         process or use another directory",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// A metadata file (`topic.json`) is unreadable or invalid.
    #[error("invalid topic metadata `{}`: {reason}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl LogError {
    /// An I/O error, turned into `DiskFull` when the file system is out of space.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::io_needing(op, path, source, 0)
    }

    /// Like [`LogError::io`], recording how many bytes the operation needed.
    pub(crate) fn io_needing(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: io::Error,
        needed: u64,
    ) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => LogError::DiskFull {
                op,
                available: crate::log::fsio::free_bytes(&path).unwrap_or(0),
                path,
                needed,
            },
            _ => LogError::Io { op, path, source },
        }
    }
}
