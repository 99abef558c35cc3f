//! `record`: input records and the ABI v1 batch that carries them.
//!
//! The runtime reads each batch the host hands over with [`BatchReader`]: a
//! 16-byte header, then records of a 40-byte header, the key and the value. A
//! [`Record`] borrows key and value from the batch buffer; nothing is copied.
//! Invariant: a reader never reads past its buffer, and a batch whose lengths do
//! not add up exactly is an error, never a panic.

use serde::Deserialize;

use crate::codec;
use crate::error::Error;

/// Size of the batch header (ABI v1).
pub const BATCH_HEADER_BYTES: usize = 16;
/// Size of a record header inside a batch (ABI v1).
pub const RECORD_HEADER_BYTES: usize = 40;

/// One input record, borrowed from the batch the host handed over.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    offset: u64,
    timestamp: i64,
    watermark: i64,
    partition: u32,
    source: u16,
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> Record<'a> {
    /// A record with the given fields (used by the runtime and the test harness).
    pub fn new(
        offset: u64,
        timestamp: i64,
        watermark: i64,
        partition: u32,
        source: u16,
        key: &'a [u8],
        value: &'a [u8],
    ) -> Self {
        Record {
            offset,
            timestamp,
            watermark,
            partition,
            source,
            key,
            value,
        }
    }

    /// Log offset of the record in its partition (a sequence number for records
    /// coming from an upstream operator of the same job).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Event time, milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The watermark in force before this record (its tag): windows ending
    /// at or before it have fired by the time the operator sees the record.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Input partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Index of the input in the job's source list (0 for a single source).
    pub fn source(&self) -> u16 {
        self.source
    }

    /// The record key as raw bytes.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The record key as UTF-8 text.
    pub fn key_str(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.key).map_err(|e| Error::Decode {
            type_name: "record key (UTF-8 text)",
            reason: e.to_string(),
        })
    }

    /// The record value: MessagePack bytes, undecoded.
    pub fn raw_value(&self) -> &'a [u8] {
        self.value
    }

    /// Decodes the value with serde. `&str` and `&[u8]` fields borrow from the
    /// batch, so decoding them costs no allocation; fields of the value that `T`
    /// does not name are skipped.
    pub fn value<T: Deserialize<'a>>(&self) -> Result<T, Error> {
        codec::decode(self.value)
    }
}

/// The 16-byte header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Number of records that follow.
    pub count: u32,
    /// Flags; 0 in ABI v1 (unknown bits are ignored).
    pub flags: u32,
    /// The input watermark before this batch (`i64::MIN`: none yet).
    pub watermark: i64,
}

/// Reads the records of one batch, checking every length against the buffer.
pub struct BatchReader<'a> {
    rest: &'a [u8],
    remaining: u32,
    header: BatchHeader,
}

impl<'a> BatchReader<'a> {
    /// Parses the batch header.
    pub fn new(batch: &'a [u8]) -> Result<Self, Error> {
        if batch.len() < BATCH_HEADER_BYTES {
            return Err(Error::Batch(format!(
                "{} bytes is shorter than the {BATCH_HEADER_BYTES}-byte batch header",
                batch.len()
            )));
        }
        let header = BatchHeader {
            count: u32_at(batch, 0),
            flags: u32_at(batch, 4),
            watermark: u64_at(batch, 8) as i64,
        };
        Ok(BatchReader {
            rest: &batch[BATCH_HEADER_BYTES..],
            remaining: header.count,
            header,
        })
    }

    /// The batch header.
    pub fn header(&self) -> BatchHeader {
        self.header
    }

    #[inline(always)]
    fn read_record(&mut self) -> Result<Record<'a>, Error> {
        let buf = self.rest;
        if buf.len() < RECORD_HEADER_BYTES {
            return Err(self.short_header());
        }
        let key_len = u32_at(buf, 32) as usize;
        let value_len = u32_at(buf, 36) as usize;
        let body = &buf[RECORD_HEADER_BYTES..];
        if body.len() < key_len || body.len() - key_len < value_len {
            return Err(self.overrun(key_len, value_len));
        }
        let (key, body) = body.split_at(key_len);
        let (value, rest) = body.split_at(value_len);
        self.rest = rest;
        Ok(Record {
            offset: u64_at(buf, 0),
            timestamp: u64_at(buf, 8) as i64,
            watermark: u64_at(buf, 16) as i64,
            partition: u32_at(buf, 24),
            source: u16::from_le_bytes([buf[28], buf[29]]),
            key,
            value,
        })
    }

    #[cold]
    fn short_header(&self) -> Error {
        Error::Batch(format!(
            "record {} of {}: {} bytes left, a record header needs {RECORD_HEADER_BYTES}",
            self.header.count - self.remaining,
            self.header.count,
            self.rest.len()
        ))
    }

    #[cold]
    fn overrun(&self, key_len: usize, value_len: usize) -> Error {
        Error::Batch(format!(
            "record {} of {}: key ({key_len} bytes) and value ({value_len} bytes) run past the end of the batch ({} bytes left)",
            self.header.count - self.remaining,
            self.header.count,
            self.rest.len() - RECORD_HEADER_BYTES
        ))
    }

    #[cold]
    fn trailing(&mut self) -> Error {
        let left = self.rest.len();
        self.rest = &[];
        Error::Batch(format!(
            "{left} bytes follow the last of the {} records the header announced",
            self.header.count
        ))
    }
}

impl<'a> Iterator for BatchReader<'a> {
    type Item = Result<Record<'a>, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if self.rest.is_empty() {
                return None;
            }
            return Some(Err(self.trailing()));
        }
        let record = self.read_record();
        match record {
            Ok(_) => self.remaining -= 1,
            Err(_) => {
                self.remaining = 0;
                self.rest = &[];
            }
        }
        Some(record)
    }
}

/// Appends one record in batch format to `out` (the test harness builds batches
/// with it, exactly as the host does).
#[allow(clippy::too_many_arguments)]
pub fn write_record(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp: i64,
    watermark: i64,
    partition: u32,
    source: u16,
    key: &[u8],
    value: &[u8],
) {
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&watermark.to_le_bytes());
    out.extend_from_slice(&partition.to_le_bytes());
    out.extend_from_slice(&source.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Writes a batch header at the start of `out` (which must hold at least
/// [`BATCH_HEADER_BYTES`]).
pub fn write_batch_header(out: &mut [u8], header: BatchHeader) {
    out[0..4].copy_from_slice(&header.count.to_le_bytes());
    out[4..8].copy_from_slice(&header.flags.to_le_bytes());
    out[8..16].copy_from_slice(&header.watermark.to_le_bytes());
}

#[inline(always)]
fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(offset, timestamp, partition, source, key, value)`.
    type TestRecord<'a> = (u64, i64, u32, u16, &'a [u8], &'a [u8]);

    fn batch(records: &[TestRecord<'_>], watermark: i64) -> Vec<u8> {
        let mut out = vec![0; BATCH_HEADER_BYTES];
        write_batch_header(
            &mut out,
            BatchHeader {
                count: records.len() as u32,
                flags: 0,
                watermark,
            },
        );
        for &(o, t, p, s, k, v) in records {
            write_record(&mut out, o, t, t - 1, p, s, k, v);
        }
        out
    }

    #[test]
    fn batch_round_trips_every_field() {
        let bytes = batch(&[(5, -3, 2, 1, b"k", b"\x01"), (6, 9, 0, 0, b"", b"")], 42);
        let reader = BatchReader::new(&bytes).unwrap();
        assert_eq!(reader.header().watermark, 42);
        let records: Vec<_> = reader.map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        let r = records[0];
        assert_eq!(
            (
                r.offset(),
                r.timestamp(),
                r.watermark(),
                r.partition(),
                r.source(),
                r.key(),
                r.raw_value()
            ),
            (5, -3, -4, 2, 1, &b"k"[..], &b"\x01"[..])
        );
    }

    #[test]
    fn trailing_bytes_after_the_last_record_are_an_error() {
        let mut bytes = batch(&[(1, 1, 0, 0, b"k", b"v")], 0);
        bytes.push(0);
        let results: Vec<_> = BatchReader::new(&bytes).unwrap().collect();
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("1 bytes follow the last"), "{err}");
    }

    #[test]
    fn a_count_larger_than_the_records_is_an_error() {
        let mut bytes = batch(&[(1, 1, 0, 0, b"k", b"v")], 0);
        bytes[0] = 2;
        let results: Vec<_> = BatchReader::new(&bytes).unwrap().collect();
        assert_eq!(results.len(), 2);
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("record 1 of 2")
        );
    }

    proptest! {
        /// No byte string makes the reader panic or read out of bounds, and it
        /// always ends.
        #[test]
        fn reader_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(reader) = BatchReader::new(&bytes) {
                let n = reader.take(1000).count();
                prop_assert!(n < 1000);
            }
        }

        #[test]
        fn truncating_a_valid_batch_is_always_detected(cut in 1usize..48) {
            let bytes = batch(&[(1, 1, 0, 0, b"key", b"value"), (2, 2, 0, 0, b"k2", b"v2")], 0);
            let truncated = &bytes[..bytes.len() - cut.min(bytes.len() - BATCH_HEADER_BYTES)];
            let ok = BatchReader::new(truncated).unwrap().all(|r| r.is_ok());
            prop_assert!(!ok);
        }
    }
}
