//! Turns generated events into log records: `(key bytes, timestamp ms, value bytes)`.
//!
//! Two wire forms, both following docs/events.md:
//! - MessagePack, structs as maps keyed by field name (what `rmp_serde` writes with
//!   `with_struct_map`), enums externally tagged (`{"bid": {...}}`);
//! - NDJSON lines `{"key": "...", "timestamp": ..., "value": {...}}` for the JSON ingest.
//!
//! Callers (the benchmark harness, the demo, tests) pass reused buffers; nothing here
//! allocates once the buffers have grown to the largest record.

use serde::Serialize;

use crate::GenError;

/// An event that knows its record key and event time.
pub trait EventRecord: Serialize {
    /// Appends the record key's bytes to `out`.
    fn write_key(&self, out: &mut Vec<u8>);
    /// The event time in epoch milliseconds (the record timestamp).
    fn timestamp(&self) -> i64;

    /// The key as an owned string (keys of all bundled schemas are ASCII).
    fn key(&self) -> String {
        let mut out = Vec::new();
        self.write_key(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// One encoded record, reused across events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordBuf {
    /// Key bytes.
    pub key: Vec<u8>,
    /// Event time, epoch ms.
    pub timestamp: i64,
    /// MessagePack value.
    pub value: Vec<u8>,
}

impl RecordBuf {
    /// Replaces the contents with `event` encoded as MessagePack.
    pub fn fill<E: EventRecord + ?Sized>(&mut self, event: &E) -> Result<(), GenError> {
        self.key.clear();
        event.write_key(&mut self.key);
        self.timestamp = event.timestamp();
        self.value.clear();
        write_msgpack(event, &mut self.value)
    }
}

/// Appends `value` as MessagePack with structs as maps (the log's value format).
pub fn write_msgpack<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), GenError> {
    let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
    value.serialize(&mut ser).map_err(|e| GenError::Encode {
        format: "msgpack",
        message: e.to_string(),
    })
}

/// Encodes `value` as MessagePack into a fresh vector.
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, GenError> {
    let mut out = Vec::new();
    write_msgpack(value, &mut out)?;
    Ok(out)
}

#[derive(Serialize)]
struct Line<'a, T: ?Sized> {
    key: &'a str,
    timestamp: i64,
    value: &'a T,
}

/// Appends one NDJSON line `{"key":..,"timestamp":..,"value":{..}}\n` for `event`.
/// `scratch` holds the key bytes between calls.
pub fn write_ndjson<E: EventRecord + ?Sized>(
    event: &E,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), GenError> {
    scratch.clear();
    event.write_key(scratch);
    let key = std::str::from_utf8(scratch).map_err(|e| GenError::Encode {
        format: "json",
        message: format!("record key is not UTF-8: {e}"),
    })?;
    write_ndjson_parts(key, event.timestamp(), event, out)
}

/// Appends one NDJSON line from its parts.
pub fn write_ndjson_parts<T: Serialize + ?Sized>(
    key: &str,
    timestamp: i64,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), GenError> {
    let line = Line {
        key,
        timestamp,
        value,
    };
    serde_json::to_writer(&mut *out, &line).map_err(|e| GenError::Encode {
        format: "json",
        message: e.to_string(),
    })?;
    out.push(b'\n');
    Ok(())
}

/// Appends `v` in decimal ASCII (record keys of Nexmark events).
#[inline]
pub fn write_decimal(out: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal_str(v, &mut digits).as_bytes());
}

/// Formats `v` in decimal ASCII into `digits` and returns the digits used.
#[inline]
pub fn decimal_str(mut v: u64, digits: &mut [u8; 20]) -> &str {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&digits[i..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_keys_match_display() {
        for v in [0u64, 7, 10, 999, 1000, 123_456_789, u64::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }
}
