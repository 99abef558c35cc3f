//! The log's named bounds. Every one of them appears in the error raised when it is hit.

/// Most records in one appended batch.
pub const MAX_BATCH_RECORDS: usize = 100_000;
/// Most encoded bytes in one appended batch (all frames together).
pub const MAX_BATCH_BYTES: usize = 16 << 20;
/// Most encoded bytes of one record frame (header, key, value, headers).
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// Most headers on one record.
pub const MAX_HEADERS_PER_RECORD: usize = 256;
/// Longest header name in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = u16::MAX as usize;

/// Most partitions in one topic.
pub const MAX_PARTITIONS: u32 = 4096;
/// Longest topic name.
pub const MAX_TOPIC_NAME_BYTES: usize = 128;
/// Smallest allowed `segment_bytes`.
pub const MIN_SEGMENT_BYTES: u64 = 16 << 10;
/// Largest allowed `segment_bytes` (index positions are 32-bit; a segment may exceed its
/// size by at most one batch, so this plus `MAX_BATCH_BYTES` stays under 4 GiB).
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// Default `segment_bytes`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 128 << 20;

/// Least reach of a read-only map of the active segment: readers map ahead of the
/// writer, doubling the map when the segment outgrows it (`Segment::map`).
pub const MIN_MAP_BYTES: u64 = 1 << 20;

/// Longest allowed `interval(ms)` fsync period.
pub const MAX_FSYNC_INTERVAL_MS: u64 = 60_000;

/// A sparse index entry is added each time this many bytes of records were written since
/// the previous entry, bounding a lookup's scan to about this many bytes.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Space is reserved (`fallocate`) ahead of the writer in steps of this size (bounded by the
/// segment size), so that an idle partition costs no disk and a busy one never extends its
/// file on the write path.
pub const PREALLOC_CHUNK_BYTES: u64 = 4 << 20;

/// Most fdatasyncs the syncer runs at once in one round (one thread each).
pub const MAX_PARALLEL_SYNCS: usize = 4;

/// Batches per producer whose offsets are remembered for acknowledging retries.
pub const PRODUCER_WINDOW: usize = 8;
/// Producers remembered per partition; past it the least recently seen is forgotten.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;

const _: () = assert!(MAX_SEGMENT_BYTES + MAX_BATCH_BYTES as u64 <= u32::MAX as u64);
const _: () = assert!(MAX_RECORD_BYTES <= MAX_BATCH_BYTES);
