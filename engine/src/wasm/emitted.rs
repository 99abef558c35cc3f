//! [`Emitted`]: the records a guest emitted in successful calls, and the
//! parser of the ABI v1 emit buffer that fills it.
//!
//! Each emit buffer is copied whole into one flat byte buffer (record headers
//! included: one copy per call instead of one per record); each record is a
//! fixed-size entry pointing at its key and value there, and output names are
//! interned in a small table. Nothing is allocated per record once the buffers have grown.
//! The host appends during a call and rolls back to a [`Mark`] when the call
//! fails, so the caller only ever sees outputs of calls that succeeded.

use std::fmt;

/// Most distinct output names one `Emitted` holds at a time.
pub const MAX_OUTPUT_NAMES: usize = 64;
/// Longest output name, in bytes.
pub const MAX_OUTPUT_NAME_BYTES: usize = 64;
/// Bytes of each record's fixed header in an emit buffer.
pub const EMIT_RECORD_HEADER_BYTES: usize = 24;

#[derive(Debug, Clone, Copy)]
struct Entry {
    output: u16,
    timestamp: i64,
    watermark: i64,
    start: usize,
    key_len: u32,
    value_len: u32,
}

/// Output records of successful calls, in emission order.
#[derive(Debug, Default)]
pub struct Emitted {
    data: Vec<u8>,
    entries: Vec<Entry>,
    /// Interned names; only the first `live_names` are in use, the rest are
    /// kept to reuse their allocation.
    names: Vec<String>,
    live_names: usize,
}

/// One emitted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRecord<'a> {
    /// The output name the guest emitted to.
    pub output: &'a str,
    /// Event time of the record.
    pub timestamp: i64,
    /// The record's tag: the guest's watermark when it emitted the record.
    pub watermark: i64,
    /// The record key.
    pub key: &'a [u8],
    /// The record value (MessagePack).
    pub value: &'a [u8],
}

/// A point to roll an [`Emitted`] back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    data: usize,
    entries: usize,
    names: usize,
}

/// Why an emit call was refused; the message completes "the emit call …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EmitFault {
    /// The bytes break the ABI.
    Garbage(String),
    /// The output name table is full.
    TooManyOutputs(String),
}

impl Emitted {
    /// An empty set of outputs.
    pub fn new() -> Emitted {
        Emitted::default()
    }

    /// Removes all records; keeps the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
        self.live_names = 0;
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All records in emission order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = OutputRecord<'_>> + '_ {
        self.entries.iter().map(|e| self.record(e))
    }

    /// The distinct output names emitted to (an empty emit buffer counts),
    /// in order of first use.
    pub fn outputs(&self) -> impl Iterator<Item = &str> + '_ {
        self.names[..self.live_names].iter().map(String::as_str)
    }

    /// The records emitted to `output`, in emission order.
    pub fn iter_output<'a>(&'a self, output: &str) -> impl Iterator<Item = OutputRecord<'a>> + 'a {
        let index = self.names[..self.live_names]
            .iter()
            .position(|n| n == output);
        self.entries
            .iter()
            .filter(move |e| Some(e.output as usize) == index)
            .map(|e| self.record(e))
    }

    fn record(&self, e: &Entry) -> OutputRecord<'_> {
        let key_end = e.start + e.key_len as usize;
        OutputRecord {
            output: &self.names[e.output as usize],
            timestamp: e.timestamp,
            watermark: e.watermark,
            key: &self.data[e.start..key_end],
            value: &self.data[key_end..key_end + e.value_len as usize],
        }
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            data: self.data.len(),
            entries: self.entries.len(),
            names: self.live_names,
        }
    }

    /// Drops everything appended since `mark`.
    pub(crate) fn truncate(&mut self, mark: Mark) {
        debug_assert!(mark.entries <= self.entries.len() && mark.data <= self.data.len());
        self.data.truncate(mark.data);
        self.entries.truncate(mark.entries);
        self.live_names = mark.names;
    }

    /// Parses one ABI v1 emit buffer for output `name` and appends its records.
    /// On error, records already appended by this call stay; the caller rolls
    /// back the whole guest call.
    pub(crate) fn append(&mut self, name: &[u8], buf: &[u8]) -> Result<(), EmitFault> {
        let output = self.intern(name)?;
        let base = self.data.len();
        self.data.extend_from_slice(buf);
        let mut rest = buf;
        while !rest.is_empty() {
            let at = buf.len() - rest.len();
            if rest.len() < EMIT_RECORD_HEADER_BYTES {
                return Err(EmitFault::Garbage(format!(
                    "has {} trailing bytes at byte {at} of its {}-byte buffer, too few for a \
                     {EMIT_RECORD_HEADER_BYTES}-byte record header",
                    rest.len(),
                    buf.len()
                )));
            }
            let timestamp = i64::from_le_bytes(le_bytes(&rest[0..8]));
            let watermark = i64::from_le_bytes(le_bytes(&rest[8..16]));
            let key_len = u32::from_le_bytes(le_bytes(&rest[16..20]));
            let value_len = u32::from_le_bytes(le_bytes(&rest[20..24]));
            let body = key_len as usize + value_len as usize;
            let available = rest.len() - EMIT_RECORD_HEADER_BYTES;
            if body > available {
                return Err(EmitFault::Garbage(format!(
                    "has a record at byte {at} of its {}-byte buffer with key_len {key_len} and \
                     value_len {value_len}, running {} bytes past the end",
                    buf.len(),
                    body - available
                )));
            }
            self.entries.push(Entry {
                output,
                timestamp,
                watermark,
                start: base + at + EMIT_RECORD_HEADER_BYTES,
                key_len,
                value_len,
            });
            rest = &rest[EMIT_RECORD_HEADER_BYTES + body..];
        }
        Ok(())
    }

    fn intern(&mut self, name: &[u8]) -> Result<u16, EmitFault> {
        if let Some(i) = self.names[..self.live_names]
            .iter()
            .position(|n| n.as_bytes() == name)
        {
            return Ok(i as u16);
        }
        let name = check_output_name(name)?;
        if self.live_names == MAX_OUTPUT_NAMES {
            return Err(EmitFault::TooManyOutputs(format!(
                "names output `{name}`, one more than the {MAX_OUTPUT_NAMES} distinct outputs \
                 (MAX_OUTPUT_NAMES) a call may emit to"
            )));
        }
        if self.live_names == self.names.len() {
            self.names.push(String::new());
        }
        let slot = &mut self.names[self.live_names];
        slot.clear();
        slot.push_str(name);
        self.live_names += 1;
        Ok((self.live_names - 1) as u16)
    }
}

impl fmt::Display for OutputRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} key={:?} value={} bytes",
            self.output,
            self.timestamp,
            String::from_utf8_lossy(self.key),
            self.value.len()
        )
    }
}

fn le_bytes<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

/// Checks the ABI v1 rule for output names: 1 to 64 bytes of `a-z`, `0-9`,
/// `_` or `-`.
pub(crate) fn check_output_name(name: &[u8]) -> Result<&str, EmitFault> {
    let ok = !name.is_empty()
        && name.len() <= MAX_OUTPUT_NAME_BYTES
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    match std::str::from_utf8(name) {
        Ok(s) if ok => Ok(s),
        _ => Err(EmitFault::Garbage(format!(
            "names output {:?} ({} bytes); an output name is 1 to {MAX_OUTPUT_NAME_BYTES} bytes \
             of a-z, 0-9, _ or -",
            String::from_utf8_lossy(&name[..name.len().min(80)]),
            name.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut b = ts.to_le_bytes().to_vec();
        b.extend_from_slice(&(ts - 1).to_le_bytes());
        b.extend_from_slice(&(key.len() as u32).to_le_bytes());
        b.extend_from_slice(&(value.len() as u32).to_le_bytes());
        b.extend_from_slice(key);
        b.extend_from_slice(value);
        b
    }

    #[test]
    fn records_keep_emission_order_and_group_by_output() {
        let mut out = Emitted::new();
        out.append(b"main", &[rec(1, b"a", b"1"), rec(2, b"b", b"22")].concat())
            .unwrap();
        out.append(b"alerts", &rec(3, b"", b"x")).unwrap();
        out.append(b"main", &rec(4, b"d", b"")).unwrap();
        let all: Vec<_> = out
            .iter()
            .map(|r| (r.output, r.timestamp, r.key, r.value))
            .collect();
        assert_eq!(
            all,
            vec![
                ("main", 1, &b"a"[..], &b"1"[..]),
                ("main", 2, b"b", b"22"),
                ("alerts", 3, b"", b"x"),
                ("main", 4, b"d", b""),
            ]
        );
        assert_eq!(out.outputs().collect::<Vec<_>>(), vec!["main", "alerts"]);
        let main: Vec<_> = out.iter_output("main").map(|r| r.timestamp).collect();
        assert_eq!(main, vec![1, 2, 4]);
        let tags: Vec<_> = out.iter_output("main").map(|r| r.watermark).collect();
        assert_eq!(tags, vec![0, 1, 3], "each record keeps its tag");
        assert_eq!(out.iter_output("nope").count(), 0);
    }

    #[test]
    fn truncate_rolls_back_records_and_new_names() {
        let mut out = Emitted::new();
        out.append(b"main", &rec(1, b"a", b"1")).unwrap();
        let mark = out.mark();
        out.append(b"late", &rec(2, b"b", b"2")).unwrap();
        out.truncate(mark);
        assert_eq!(out.len(), 1);
        assert_eq!(out.outputs().collect::<Vec<_>>(), vec!["main"]);
        out.append(b"dlq", &rec(5, b"c", b"3")).unwrap();
        assert_eq!(out.outputs().collect::<Vec<_>>(), vec!["main", "dlq"]);
    }

    #[test]
    fn length_running_past_the_end_is_garbage() {
        let mut buf = rec(1, b"key", b"value");
        buf.truncate(buf.len() - 2);
        let err = Emitted::new().append(b"main", &buf).unwrap_err();
        let EmitFault::Garbage(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("running 2 bytes past the end"), "{msg}");
    }

    #[test]
    fn trailing_bytes_are_garbage() {
        let mut buf = rec(1, b"k", b"v");
        buf.extend_from_slice(&[0; 5]);
        let err = Emitted::new().append(b"main", &buf).unwrap_err();
        assert!(
            matches!(&err, EmitFault::Garbage(m) if m.contains("5 trailing bytes")),
            "{err:?}"
        );
    }

    #[test]
    fn bad_output_names_are_garbage() {
        for name in [&b""[..], b"Main", b"a b", b"\xff", &[b'a'; 65]] {
            let err = Emitted::new().append(name, &[]).unwrap_err();
            assert!(matches!(&err, EmitFault::Garbage(m) if m.contains("an output name is")));
        }
        assert!(Emitted::new().append(&[b'a'; 64], &[]).is_ok());
        assert!(Emitted::new().append(b"late_events-2", &[]).is_ok());
    }

    #[test]
    fn output_name_table_is_bounded() {
        let mut out = Emitted::new();
        for i in 0..MAX_OUTPUT_NAMES {
            out.append(format!("o{i}").as_bytes(), &[]).unwrap();
        }
        let err = out.append(b"one_more", &[]).unwrap_err();
        assert!(matches!(&err, EmitFault::TooManyOutputs(m) if m.contains("MAX_OUTPUT_NAMES")));
        out.clear();
        out.append(b"one_more", &[]).unwrap();
    }
}
