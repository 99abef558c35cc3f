//! Helpers shared by the `log_*` integration tests: deterministic records and full reads.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use sluice::log::{FsyncPolicy, Log, LogOptions, Partition, Record, TopicConfig};

/// Deterministic key of record `i`.
pub fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// Deterministic value of record `i`: 60..160 bytes, content depends on `i`.
pub fn value(i: u64) -> Vec<u8> {
    let n = 60 + (i.wrapping_mul(2654435761) % 100) as usize;
    (0..n).map(|j| (i as usize + j * 7) as u8).collect()
}

/// Owned records `from..from+n` with timestamps `ts(i)`.
pub fn owned(from: u64, n: u64, ts: impl Fn(u64) -> i64) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    (from..from + n)
        .map(|i| (ts(i), key(i), value(i)))
        .collect()
}

/// Borrowed view of owned records, as `append` takes them.
pub fn records(owned: &[(i64, Vec<u8>, Vec<u8>)]) -> Vec<Record<'_>> {
    owned
        .iter()
        .map(|(t, k, v)| Record {
            timestamp: *t,
            key: k,
            value: v,
            headers: &[],
        })
        .collect()
}

/// A topic config with small segments.
pub fn cfg(name: &str, partitions: u32, segment_bytes: u64, fsync: FsyncPolicy) -> TopicConfig {
    TopicConfig {
        segment_bytes,
        fsync,
        ..TopicConfig::new(name, partitions)
    }
}

/// Opens a log with no quota.
pub fn open(dir: &Path) -> Arc<Log> {
    Log::open(dir, LogOptions::default()).expect("open log")
}

/// One record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Reads every record from `from` to the end.
pub fn read_from(p: &Arc<Partition>, from: u64) -> Vec<Got> {
    let mut r = p.reader();
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let o = r
            .read(at, 1000, 1 << 20, |v| {
                out.push(Got {
                    offset: v.offset,
                    timestamp: v.timestamp,
                    key: v.key.to_vec(),
                    value: v.value.to_vec(),
                })
            })
            .expect("read");
        if o.records == 0 {
            return out;
        }
        at = o.next_offset;
    }
}

/// Asserts that `got` holds exactly the deterministic records `from..to`.
pub fn assert_records(got: &[Got], from: u64, to: u64) {
    assert_eq!(got.len() as u64, to - from, "record count");
    for (g, i) in got.iter().zip(from..to) {
        assert_eq!(g.offset, i);
        assert_eq!(g.key, key(i), "key of offset {i}");
        assert_eq!(g.value, value(i), "value of offset {i}");
    }
}

/// The `.log` files of a partition directory, sorted.
pub fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// End positions of the frames at the start of a segment file's bytes (walking the length
/// fields up to the first zero length), without validating them.
pub fn frame_ends(bytes: &[u8]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut pos = 0usize;
    while pos + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        pos += len + 8;
        ends.push(pos as u64);
    }
    ends
}

/// The base offset in a segment file's name.
pub fn segment_base(path: &Path) -> u64 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{} is not a segment file", path.display()))
}
