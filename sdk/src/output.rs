//! `output`: per-output record buffers in the ABI v1 `emit` format.
//!
//! [`crate::Ctx`] owns one [`Outputs`]; an operator's `emit` appends a record to the
//! buffer of its output name, and the runtime hands each non-empty buffer to the
//! host once at the end of a successful call (or earlier, when a buffer reaches
//! [`OUTPUT_FLUSH_BYTES`]). Buffers keep their capacity across calls, so the hot
//! path allocates nothing once warm. Invariant: a buffer always holds whole,
//! well-formed records.

use serde::Serialize;

use crate::codec;
use crate::error::Error;
use crate::host::Host;
use crate::limits::{
    MAX_OUTPUT_NAME_BYTES, MAX_OUTPUT_RECORD_BYTES, MAX_OUTPUTS, OUTPUT_FLUSH_BYTES,
};

/// The output every job maps: the operator's main results.
pub const MAIN: &str = "main";
/// Records that arrived after their window closed, unchanged (ABI v1, DESIGN §5).
pub const LATE: &str = "late";
/// Dead letters: records the operator could not handle, with the job's error policy.
pub const DLQ: &str = "dlq";

/// Size of the header of one output record (`i64` timestamp, `u32` key and value lengths).
pub const OUTPUT_RECORD_HEADER_BYTES: usize = 24;

/// Value bytes reserved with each record header: most values fit, so encoding
/// them grows the buffer rarely.
const TYPICAL_VALUE_BYTES: usize = 128;

#[derive(Debug)]
struct Buffer {
    name: String,
    records: Vec<u8>,
}

/// The buffered output records of the current call, by output name.
#[derive(Debug)]
pub(crate) struct Outputs {
    buffers: Vec<Buffer>,
    /// Index of the buffer used last: most operators emit to one output.
    last: usize,
}

impl Outputs {
    pub(crate) const fn new() -> Self {
        Outputs {
            buffers: Vec::new(),
            last: 0,
        }
    }

    /// Forgets whatever a previous (possibly trapped) call left behind.
    pub(crate) fn clear(&mut self) {
        for buffer in &mut self.buffers {
            buffer.records.clear();
        }
    }

    #[inline(always)]
    fn buffer_index(&mut self, name: &str) -> Result<usize, Error> {
        if let Some(buffer) = self.buffers.get(self.last)
            && buffer.name == name
        {
            return Ok(self.last);
        }
        self.find_or_add(name)
    }

    fn find_or_add(&mut self, name: &str) -> Result<usize, Error> {
        let index = match self.buffers.iter().position(|b| b.name == name) {
            Some(index) => index,
            None => {
                check_output_name(name)?;
                if self.buffers.len() >= MAX_OUTPUTS {
                    return Err(Error::Limit {
                        limit: "MAX_OUTPUTS",
                        max: MAX_OUTPUTS as u64,
                        what: format!("a new output named `{name}`"),
                    });
                }
                self.buffers.push(Buffer {
                    name: name.to_owned(),
                    records: Vec::new(),
                });
                self.buffers.len() - 1
            }
        };
        self.last = index;
        Ok(index)
    }

    /// Appends a record whose value is `value` encoded as MessagePack.
    pub(crate) fn push<V: Serialize + ?Sized>(
        &mut self,
        host: &mut Host,
        name: &str,
        timestamp: i64,
        tag: i64,
        key: &[u8],
        value: &V,
    ) -> Result<(), Error> {
        let index = self.buffer_index(name)?;
        let buffer = &mut self.buffers[index];
        let start = buffer.records.len();
        write_header(&mut buffer.records, timestamp, tag, key, 0, name)?;
        buffer.records.extend_from_slice(key);
        let value_start = buffer.records.len();
        codec::encode_into(&mut buffer.records, value)
            .inspect_err(|_| buffer.records.truncate(start))?;
        let value_len = buffer.records.len() - value_start;
        if value_len > MAX_OUTPUT_RECORD_BYTES {
            buffer.records.truncate(start);
            return Err(too_large(name, "value", value_len));
        }
        buffer.records[start + 20..start + 24].copy_from_slice(&(value_len as u32).to_le_bytes());
        self.flush_if_full(host, index);
        Ok(())
    }

    /// Appends a record whose value is already MessagePack.
    pub(crate) fn push_raw(
        &mut self,
        host: &mut Host,
        name: &str,
        timestamp: i64,
        tag: i64,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), Error> {
        if value.len() > MAX_OUTPUT_RECORD_BYTES {
            return Err(too_large(name, "value", value.len()));
        }
        let index = self.buffer_index(name)?;
        let records = &mut self.buffers[index].records;
        write_header(records, timestamp, tag, key, value.len() as u32, name)?;
        records.extend_from_slice(key);
        records.extend_from_slice(value);
        self.flush_if_full(host, index);
        Ok(())
    }

    #[inline(always)]
    fn flush_if_full(&mut self, host: &mut Host, index: usize) {
        let buffer = &mut self.buffers[index];
        if buffer.records.len() >= OUTPUT_FLUSH_BYTES {
            host.emit(&buffer.name, &buffer.records);
            buffer.records.clear();
        }
    }

    /// Hands every non-empty buffer to the host, one `emit` per output, and empties them.
    pub(crate) fn flush(&mut self, host: &mut Host) {
        for buffer in &mut self.buffers {
            if !buffer.records.is_empty() {
                host.emit(&buffer.name, &buffer.records);
                buffer.records.clear();
            }
        }
    }
}

fn write_header(
    out: &mut Vec<u8>,
    timestamp: i64,
    tag: i64,
    key: &[u8],
    value_len: u32,
    name: &str,
) -> Result<(), Error> {
    if key.len() > MAX_OUTPUT_RECORD_BYTES {
        return Err(too_large(name, "key", key.len()));
    }
    let mut header = [0u8; OUTPUT_RECORD_HEADER_BYTES];
    header[0..8].copy_from_slice(&timestamp.to_le_bytes());
    header[8..16].copy_from_slice(&tag.to_le_bytes());
    header[16..20].copy_from_slice(&(key.len() as u32).to_le_bytes());
    header[20..24].copy_from_slice(&value_len.to_le_bytes());
    // Room for the key and a typical value too, so their appends find it.
    out.reserve(OUTPUT_RECORD_HEADER_BYTES + key.len() + TYPICAL_VALUE_BYTES);
    out.extend_from_slice(&header);
    Ok(())
}

fn too_large(name: &str, what: &str, len: usize) -> Error {
    Error::Limit {
        limit: "MAX_OUTPUT_RECORD_BYTES",
        max: MAX_OUTPUT_RECORD_BYTES as u64,
        what: format!("a {len}-byte {what} for output `{name}`"),
    }
}

/// Checks an output name against ABI v1: 1 to 64 bytes of `a-z`, `0-9`, `_`, `-`.
pub fn check_output_name(name: &str) -> Result<(), Error> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > MAX_OUTPUT_NAME_BYTES || !valid_chars {
        return Err(Error::Output {
            output: name.to_owned(),
            reason: format!(
                "an output name is 1 to {MAX_OUTPUT_NAME_BYTES} bytes of a-z, 0-9, `_` or `-`"
            ),
        });
    }
    Ok(())
}

/// One record of an `emit` buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmittedRecord<'a> {
    /// Event time of the output record.
    pub timestamp: i64,
    /// The record's tag (the operator's watermark when it emitted it).
    pub watermark: i64,
    /// Key bytes.
    pub key: &'a [u8],
    /// Value bytes (MessagePack).
    pub value: &'a [u8],
}

/// Parses an `emit` buffer exactly as the host must: every length checked, no
/// trailing bytes. Used by the test harness to read outputs back.
pub fn parse_emitted(mut buf: &[u8]) -> Result<Vec<EmittedRecord<'_>>, Error> {
    let mut records = Vec::new();
    while !buf.is_empty() {
        if buf.len() < OUTPUT_RECORD_HEADER_BYTES {
            return Err(Error::Output {
                output: String::new(),
                reason: format!("{} trailing bytes do not hold a record header", buf.len()),
            });
        }
        let timestamp = i64::from_le_bytes(buf[0..8].try_into().expect("8 bytes"));
        let watermark = i64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
        let key_len = u32::from_le_bytes(buf[16..20].try_into().expect("4 bytes")) as usize;
        let value_len = u32::from_le_bytes(buf[20..24].try_into().expect("4 bytes")) as usize;
        let body = &buf[OUTPUT_RECORD_HEADER_BYTES..];
        if body.len() < key_len || body.len() - key_len < value_len {
            return Err(Error::Output {
                output: String::new(),
                reason: "a record's key and value run past the end of the buffer".into(),
            });
        }
        records.push(EmittedRecord {
            timestamp,
            watermark,
            key: &body[..key_len],
            value: &body[key_len..key_len + value_len],
        });
        buf = &body[key_len + value_len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_the_abi() {
        for good in ["main", "late", "dlq", "a-b_9", &"x".repeat(64)] {
            assert!(check_output_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Main", "a b", "é", &"x".repeat(65)] {
            assert!(check_output_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pushed_records_parse_back_and_flush_once_per_output() {
        let mut host = Host::new();
        let mut outputs = Outputs::new();
        outputs.push(&mut host, "main", 5, 4, b"k", &7u8).unwrap();
        outputs
            .push_raw(&mut host, "late", -1, 4, b"", b"\xc0")
            .unwrap();
        outputs.push(&mut host, "main", 6, 5, b"k2", "v").unwrap();
        outputs.flush(&mut host);
        let emits = &host.calls.emits;
        assert_eq!(emits.len(), 2);
        assert_eq!(emits[0].0, "main");
        let main = parse_emitted(&emits[0].1).unwrap();
        assert_eq!(main.len(), 2);
        assert_eq!(
            main[1],
            EmittedRecord {
                timestamp: 6,
                watermark: 5,
                key: b"k2",
                value: b"\xa1v"
            }
        );
        let late = parse_emitted(&emits[1].1).unwrap();
        assert_eq!(
            late,
            vec![EmittedRecord {
                timestamp: -1,
                watermark: 4,
                key: b"",
                value: b"\xc0"
            }]
        );
    }

    #[test]
    fn a_bad_output_name_is_refused_with_the_rule() {
        let mut host = Host::new();
        let err = Outputs::new()
            .push(&mut host, "Alerts!", 0, 0, b"", &1)
            .unwrap_err();
        assert!(err.to_string().contains("1 to 64 bytes"), "{err}");
    }
}
