//! A task's outputs: buffered per batch, appended to the log once per batch.
//!
//! Every partition a task writes (its partition of each output topic, its
//! row of the exchange topic, its dead-letter partition) is written by that
//! task alone, through a [`PartitionWriter`] the task owns. Records are
//! gathered in a [`RecordBuf`] while a batch runs and appended with one call
//! per partition when it ends, so a failed batch leaves nothing behind.

use std::ops::Range;
use std::sync::Arc;

use crate::log::limits::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS};
use crate::log::{LogError, PartitionWriter, Record};
use crate::state::view::View;

/// Header carrying the tag of a record in an exchange topic.
pub const TAG_HEADER: &[u8] = b"sluice.tag";
/// Headers of dead letters.
pub const ERROR_HEADER: &[u8] = b"sluice.error";
pub const ORIGIN_HEADER: &[u8] = b"sluice.origin";
/// Bytes a frame adds to a record's key, value and headers, at most (the
/// fixed header and a producer tag), when sizing appends.
const FRAME_ALLOWANCE: usize = 64;
/// Bytes of the `sluice.tag` header of a tagged record, which is not in the buffer.
const TAG_ALLOWANCE: usize = 6 + TAG_HEADER.len() + 8;

/// Records gathered for one destination during a batch.
#[derive(Default)]
pub struct RecordBuf {
    data: Vec<u8>,
    recs: Vec<BufRec>,
}

struct BufRec {
    ts: i64,
    tag: i64,
    key: Range<usize>,
    value: Range<usize>,
    /// Header values (names are fixed per destination), as ranges of `data`.
    headers: [Range<usize>; 2],
}

impl RecordBuf {
    pub fn push(&mut self, ts: i64, tag: i64, key: &[u8], value: &[u8]) {
        self.push_with(ts, tag, key, value, [b"", b""]);
    }

    /// Pushes with up to two header values (their names are the caller's).
    pub fn push_with(&mut self, ts: i64, tag: i64, key: &[u8], value: &[u8], headers: [&[u8]; 2]) {
        let mut put = |b: &[u8]| {
            let s = self.data.len();
            self.data.extend_from_slice(b);
            s..self.data.len()
        };
        let key = put(key);
        let value = put(value);
        let headers = [put(headers[0]), put(headers[1])];
        self.recs.push(BufRec {
            ts,
            tag,
            key,
            value,
            headers,
        });
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.recs.clear();
    }

    /// (timestamp, key, value) of every record, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8], &[u8])> + '_ {
        self.recs
            .iter()
            .map(|r| (r.ts, &self.data[r.key.clone()], &self.data[r.value.clone()]))
    }
}

/// How records of a destination are framed in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Key, value and timestamp only.
    Plain,
    /// Plus the tag header (exchange topics).
    Tagged,
    /// Plus the error and origin headers (dead letters).
    DeadLetter,
}

/// One partition the task writes.
pub struct OutPartition {
    pub topic: String,
    pub partition: u32,
    pub writer: PartitionWriter,
    pub buf: RecordBuf,
    pub framing: Framing,
}

impl OutPartition {
    pub fn new(topic: &str, partition: u32, writer: PartitionWriter, framing: Framing) -> Self {
        OutPartition {
            topic: topic.to_owned(),
            partition,
            writer,
            buf: RecordBuf::default(),
            framing,
        }
    }

    /// Appends what was gathered; returns the number of records written.
    pub fn flush(&mut self) -> Result<usize, LogError> {
        let n = self.buf.len();
        if n == 0 {
            return Ok(0);
        }
        let data = &self.buf.data;
        let tags: Vec<[u8; 8]> = match self.framing {
            Framing::Tagged => self.buf.recs.iter().map(|r| r.tag.to_le_bytes()).collect(),
            _ => Vec::new(),
        };
        let headers: Vec<[(&[u8], &[u8]); 2]> = match self.framing {
            Framing::Plain => Vec::new(),
            Framing::Tagged => tags
                .iter()
                .map(|t| [(TAG_HEADER, &t[..]), (&b""[..], &b""[..])])
                .collect(),
            Framing::DeadLetter => self
                .buf
                .recs
                .iter()
                .map(|r| {
                    [
                        (ERROR_HEADER, &data[r.headers[0].clone()]),
                        (ORIGIN_HEADER, &data[r.headers[1].clone()]),
                    ]
                })
                .collect(),
        };
        let header_count = match self.framing {
            Framing::Plain => 0,
            Framing::Tagged => 1,
            Framing::DeadLetter => 2,
        };
        let records: Vec<Record<'_>> = self
            .buf
            .recs
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                timestamp: r.ts,
                key: &data[r.key.clone()],
                value: &data[r.value.clone()],
                headers: if header_count == 0 {
                    &[]
                } else {
                    &headers[i][..header_count]
                },
            })
            .collect();
        // One window closing can emit more than one append takes: split
        // at the log's batch limits (with room for the framing). A crash
        // between two appends is undone by recovery's truncation like any
        // other output written after the last checkpoint.
        if records.len() <= MAX_BATCH_RECORDS
            && self.buf.data.len() + records.len() * (FRAME_ALLOWANCE + TAG_ALLOWANCE)
                <= MAX_BATCH_BYTES
        {
            self.writer.append(&records, None)?;
            self.buf.clear();
            return Ok(n);
        }
        let mut from = 0;
        while from < records.len() {
            let mut bytes = 0;
            let mut to = from;
            while to < records.len() && to - from < MAX_BATCH_RECORDS {
                let r = &records[to];
                let framed = FRAME_ALLOWANCE
                    + r.key.len()
                    + r.value.len()
                    + r.headers
                        .iter()
                        .map(|(k, v)| 6 + k.len() + v.len())
                        .sum::<usize>();
                if to > from && bytes + framed > MAX_BATCH_BYTES {
                    break;
                }
                bytes += framed;
                to += 1;
            }
            self.writer.append(&records[from..to], None)?;
            from = to;
        }
        self.buf.clear();
        Ok(n)
    }

    /// The end offset of this partition (what a checkpoint records).
    pub fn end(&self) -> u64 {
        self.writer.partition().end_offset()
    }
}

/// A view fed by the task's partition.
pub struct ViewOut {
    pub view: Arc<View>,
    pub buf: RecordBuf,
}

impl ViewOut {
    pub fn flush(&mut self, partition: u32) -> usize {
        let n = self.buf.len();
        if n > 0 {
            self.view
                .apply(partition, self.buf.iter().map(|(ts, k, v)| (k, ts, v)));
            self.buf.clear();
        }
        n
    }
}
