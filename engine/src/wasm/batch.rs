//! [`Batch`]: the ABI v1 input batch, built by the engine and copied once into
//! a guest's memory per `sluice_process` call.
//!
//! The buffer holds exactly the bytes `sdk/ABI.md` describes (a 16-byte header,
//! then a 40-byte header plus key and value per record), so handing it to the
//! guest is one `memcpy`. It is reusable: `clear` keeps the allocation. It also
//! remembers which offsets of which partitions it carries, so a failed call can
//! name its records. Invariant: `as_bytes().len() <= max_bytes()`.

use super::error::RecordRange;

/// Bytes of the batch header: count, flags, watermark.
pub const BATCH_HEADER_BYTES: usize = 16;
/// Bytes of each record's fixed header.
pub const RECORD_HEADER_BYTES: usize = 40;
/// A batch bound that suits most jobs: 1 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;
/// The largest batch the ABI can describe (lengths are 32-bit, and pointers
/// into a 4 GiB memory must leave room for the guest's own data).
pub const MAX_BATCH_BYTES: usize = i32::MAX as usize;

/// Returned by [`Batch::push`] when the record does not fit under the batch
/// bound: flush the batch and push again. A record that does not fit even in
/// an empty batch (`used == BATCH_HEADER_BYTES`) can never be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a record of {record_bytes} bytes does not fit in the batch ({used} of at most \
     {max_bytes} bytes used); send the batch first, or raise the batch bound if one record \
     is larger than it"
)]
pub struct BatchFull {
    /// Encoded size of the record that did not fit (header, key and value).
    pub record_bytes: usize,
    /// Bytes already in the batch.
    pub used: usize,
    /// The batch bound.
    pub max_bytes: usize,
}

/// A batch of input records in the ABI v1 encoding.
#[derive(Debug, Clone)]
pub struct Batch {
    buf: Vec<u8>,
    count: u32,
    max_bytes: usize,
    ranges: Vec<RecordRange>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch::new(DEFAULT_MAX_BATCH_BYTES)
    }
}

impl Batch {
    /// An empty batch that will hold at most `max_bytes` encoded bytes
    /// (clamped to `BATCH_HEADER_BYTES..=MAX_BATCH_BYTES`). The watermark
    /// starts as `i64::MIN` ("none yet").
    pub fn new(max_bytes: usize) -> Batch {
        let max_bytes = max_bytes.clamp(BATCH_HEADER_BYTES, MAX_BATCH_BYTES);
        let mut batch = Batch {
            buf: Vec::with_capacity(max_bytes.min(DEFAULT_MAX_BATCH_BYTES)),
            count: 0,
            max_bytes,
            ranges: Vec::new(),
        };
        batch.clear();
        batch
    }

    /// Removes all records and resets the watermark to `i64::MIN`; keeps the
    /// allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&0u32.to_le_bytes()); // count
        self.buf.extend_from_slice(&0u32.to_le_bytes()); // flags
        self.buf.extend_from_slice(&i64::MIN.to_le_bytes()); // watermark
        self.count = 0;
        self.ranges.clear();
    }

    /// Sets the input watermark the guest sees for this batch (the watermark
    /// before its records).
    pub fn set_watermark(&mut self, watermark: i64) {
        self.buf[8..16].copy_from_slice(&watermark.to_le_bytes());
    }

    /// The watermark carried in the header.
    pub fn watermark(&self) -> i64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.buf[8..16]);
        i64::from_le_bytes(bytes)
    }

    /// Bytes a record with this key and value takes in a batch.
    pub fn record_bytes(key: &[u8], value: &[u8]) -> usize {
        Batch::record_bytes_of(key.len(), value.len())
    }

    /// The same, given the key's and the value's lengths.
    pub fn record_bytes_of(key_len: usize, value_len: usize) -> usize {
        RECORD_HEADER_BYTES
            .saturating_add(key_len)
            .saturating_add(value_len)
    }

    /// Appends one record with the watermark in force before it (its tag).
    /// Records of one partition must come in offset order, and watermarks
    /// must not decrease.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        offset: u64,
        timestamp: i64,
        watermark: i64,
        partition: u32,
        source: u16,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), BatchFull> {
        let record_bytes = Batch::record_bytes(key, value);
        if record_bytes > self.max_bytes - self.buf.len() || self.count == u32::MAX {
            return Err(BatchFull {
                record_bytes,
                used: self.buf.len(),
                max_bytes: self.max_bytes,
            });
        }
        // Both lengths fit in u32: the whole record fits under MAX_BATCH_BYTES.
        let (key_len, value_len) = (key.len() as u32, value.len() as u32);
        // The header is assembled on the stack and copied once: this runs per record.
        let mut header = [0u8; RECORD_HEADER_BYTES];
        header[0..8].copy_from_slice(&offset.to_le_bytes());
        header[8..16].copy_from_slice(&timestamp.to_le_bytes());
        header[16..24].copy_from_slice(&watermark.to_le_bytes());
        header[24..28].copy_from_slice(&partition.to_le_bytes());
        header[28..30].copy_from_slice(&source.to_le_bytes());
        header[32..36].copy_from_slice(&key_len.to_le_bytes());
        header[36..40].copy_from_slice(&value_len.to_le_bytes());
        self.buf.reserve(record_bytes);
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        self.count += 1;
        self.buf[0..4].copy_from_slice(&self.count.to_le_bytes());
        self.note_offset(partition, offset);
        Ok(())
    }

    fn note_offset(&mut self, partition: u32, offset: u64) {
        // Batches usually carry one partition, so the last range is the hit.
        if let Some(range) = self
            .ranges
            .iter_mut()
            .rev()
            .find(|r| r.partition == partition)
        {
            debug_assert!(
                offset >= range.last_offset,
                "records of partition {partition} pushed out of offset order"
            );
            range.first_offset = range.first_offset.min(offset);
            range.last_offset = range.last_offset.max(offset);
        } else {
            self.ranges.push(RecordRange {
                partition,
                first_offset: offset,
                last_offset: offset,
            });
        }
    }

    /// Number of records in the batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded batch, exactly as the guest receives it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bound given to [`Batch::new`].
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Which offsets of which partitions the batch carries, in order of each
    /// partition's first appearance.
    pub fn ranges(&self) -> &[RecordRange] {
        &self.ranges
    }

    /// The records, decoded back (dead-lettering a failed batch, tests).
    pub fn iter(&self) -> impl Iterator<Item = BatchRecord<'_>> + '_ {
        let mut rest = &self.buf[BATCH_HEADER_BYTES..];
        std::iter::from_fn(move || {
            if rest.len() < RECORD_HEADER_BYTES {
                return None;
            }
            let u64_at = |i: usize| u64::from_le_bytes(rest[i..i + 8].try_into().expect("8 bytes"));
            let u32_at = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
            let key_len = u32_at(32) as usize;
            let value_len = u32_at(36) as usize;
            let body = &rest[RECORD_HEADER_BYTES..];
            let r = BatchRecord {
                offset: u64_at(0),
                timestamp: u64_at(8) as i64,
                watermark: u64_at(16) as i64,
                partition: u32_at(24),
                source: u16::from_le_bytes([rest[28], rest[29]]),
                key: &body[..key_len],
                value: &body[key_len..key_len + value_len],
            };
            rest = &body[key_len + value_len..];
            Some(r)
        })
    }
}

/// One record of a [`Batch`], as [`Batch::iter`] gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRecord<'a> {
    pub offset: u64,
    pub timestamp: i64,
    pub watermark: i64,
    pub partition: u32,
    pub source: u16,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_abi_v1_layout() {
        let mut batch = Batch::new(1024);
        batch.set_watermark(-5);
        batch
            .push(
                0x0102,
                1_700_000_000_000,
                1_699_999_996_000,
                9,
                2,
                b"k1",
                b"\xa1v",
            )
            .unwrap();
        let b = batch.as_bytes();
        assert_eq!(b.len(), BATCH_HEADER_BYTES + RECORD_HEADER_BYTES + 4);
        assert_eq!(&b[0..4], &1u32.to_le_bytes());
        assert_eq!(&b[4..8], &0u32.to_le_bytes());
        assert_eq!(&b[8..16], &(-5i64).to_le_bytes());
        let r = &b[16..];
        assert_eq!(&r[0..8], &0x0102u64.to_le_bytes());
        assert_eq!(&r[8..16], &1_700_000_000_000i64.to_le_bytes());
        assert_eq!(&r[16..24], &1_699_999_996_000i64.to_le_bytes());
        assert_eq!(&r[24..28], &9u32.to_le_bytes());
        assert_eq!(&r[28..30], &2u16.to_le_bytes());
        assert_eq!(&r[30..32], &[0, 0]);
        assert_eq!(&r[32..36], &2u32.to_le_bytes());
        assert_eq!(&r[36..40], &2u32.to_le_bytes());
        assert_eq!(&r[40..], b"k1\xa1v");
        let back: Vec<_> = batch.iter().collect();
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].offset, back[0].watermark, back[0].source),
            (0x0102, 1_699_999_996_000, 2)
        );
        assert_eq!((back[0].key, back[0].value), (&b"k1"[..], &b"\xa1v"[..]));
    }

    #[test]
    fn push_past_the_bound_is_refused_and_leaves_the_batch_intact() {
        let mut batch = Batch::new(BATCH_HEADER_BYTES + RECORD_HEADER_BYTES + 3);
        batch.push(1, 0, 0, 0, 0, b"ab", b"c").unwrap();
        let before = batch.as_bytes().to_vec();
        let full = batch.push(2, 0, 0, 0, 0, b"", b"").unwrap_err();
        assert_eq!(full.record_bytes, RECORD_HEADER_BYTES);
        assert_eq!(full.used, before.len());
        assert_eq!(batch.as_bytes(), &before[..]);
        assert_eq!(batch.len(), 1);
        assert!(full.to_string().contains("59 of at most 59 bytes"));
    }

    #[test]
    fn ranges_track_each_partition_and_clear_resets_everything() {
        let mut batch = Batch::default();
        for (p, o) in [(3, 10), (4, 1), (3, 11), (3, 12), (4, 2)] {
            batch.push(o, 0, 0, p, 0, b"", b"").unwrap();
        }
        assert_eq!(
            batch.ranges(),
            &[
                RecordRange {
                    partition: 3,
                    first_offset: 10,
                    last_offset: 12
                },
                RecordRange {
                    partition: 4,
                    first_offset: 1,
                    last_offset: 2
                },
            ]
        );
        batch.set_watermark(77);
        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.ranges().is_empty());
        assert_eq!(batch.watermark(), i64::MIN);
        assert_eq!(batch.as_bytes().len(), BATCH_HEADER_BYTES);
    }
}
