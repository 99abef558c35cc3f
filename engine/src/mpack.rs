//! Reading single fields out of MessagePack values without decoding them.
//!
//! The engine stores values as MessagePack and mostly passes them through
//! untouched; it only looks inside to take a key or an event time from a field
//! the job names, and to index view entries. This module walks the encoding
//! in place, never allocates, and treats every byte as untrusted: malformed
//! or truncated input gives `None`, never a panic or an out-of-bounds read.

use rmp::Marker;

/// Deepest nesting [`skip`] follows before giving up (malicious input could
/// otherwise nest maps until the stack runs out).
pub const MAX_DEPTH: u32 = 64;

/// A scalar found at a field path; containers are returned as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
    Bin(&'a [u8]),
    /// A map, array or extension, as its encoded bytes.
    Raw(&'a [u8]),
}

impl<'a> Scalar<'a> {
    /// The value as an i64 if it is an integer that fits (or a float with no
    /// fractional part).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Scalar::Int(v) => Some(v),
            Scalar::Uint(v) => i64::try_from(v).ok(),
            Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(f as i64),
            _ => None,
        }
    }

    /// The value as f64 if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(v) => Some(v as f64),
            Scalar::Uint(v) => Some(v as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// Appends the bytes used as a record key for this value: strings and
    /// binaries as they are, integers in decimal ASCII, booleans as
    /// `true`/`false`. Returns false for values that cannot be keys.
    pub fn write_key(&self, out: &mut Vec<u8>) -> bool {
        use std::io::Write;
        match *self {
            Scalar::Str(s) => out.extend_from_slice(s.as_bytes()),
            Scalar::Bin(b) => out.extend_from_slice(b),
            Scalar::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Scalar::Uint(v) => {
                let _ = write!(out, "{v}");
            }
            Scalar::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Scalar::Nil | Scalar::Float(_) | Scalar::Raw(_) => return false,
        }
        true
    }
}

/// A cursor over untrusted bytes.
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|b| b.try_into().expect("length checked"))
    }
    fn len8(&mut self) -> Option<usize> {
        self.u8().map(usize::from)
    }
    fn len16(&mut self) -> Option<usize> {
        self.be::<2>().map(|b| usize::from(u16::from_be_bytes(b)))
    }
    fn len32(&mut self) -> Option<usize> {
        self.be::<4>().map(|b| u32::from_be_bytes(b) as usize)
    }
}

/// What the next value is: a scalar (read whole) or a container header.
enum Head<'a> {
    Scalar(Scalar<'a>),
    Map(usize),
    Array(usize),
}

fn read_head<'a>(c: &mut Cur<'a>) -> Option<Head<'a>> {
    let m = Marker::from_u8(c.u8()?);
    let s = |v| Some(Head::Scalar(v));
    match m {
        Marker::Null => s(Scalar::Nil),
        Marker::True => s(Scalar::Bool(true)),
        Marker::False => s(Scalar::Bool(false)),
        Marker::FixPos(v) => s(Scalar::Uint(u64::from(v))),
        Marker::FixNeg(v) => s(Scalar::Int(i64::from(v))),
        Marker::U8 => s(Scalar::Uint(u64::from(c.u8()?))),
        Marker::U16 => s(Scalar::Uint(u64::from(u16::from_be_bytes(c.be()?)))),
        Marker::U32 => s(Scalar::Uint(u64::from(u32::from_be_bytes(c.be()?)))),
        Marker::U64 => s(Scalar::Uint(u64::from_be_bytes(c.be()?))),
        Marker::I8 => s(Scalar::Int(i64::from(c.u8()? as i8))),
        Marker::I16 => s(Scalar::Int(i64::from(i16::from_be_bytes(c.be()?)))),
        Marker::I32 => s(Scalar::Int(i64::from(i32::from_be_bytes(c.be()?)))),
        Marker::I64 => s(Scalar::Int(i64::from_be_bytes(c.be()?))),
        Marker::F32 => s(Scalar::Float(f64::from(f32::from_be_bytes(c.be()?)))),
        Marker::F64 => s(Scalar::Float(f64::from_be_bytes(c.be()?))),
        Marker::FixStr(n) => str_of(c, usize::from(n)),
        Marker::Str8 => {
            let n = c.len8()?;
            str_of(c, n)
        }
        Marker::Str16 => {
            let n = c.len16()?;
            str_of(c, n)
        }
        Marker::Str32 => {
            let n = c.len32()?;
            str_of(c, n)
        }
        Marker::Bin8 => {
            let n = c.len8()?;
            s(Scalar::Bin(c.take(n)?))
        }
        Marker::Bin16 => {
            let n = c.len16()?;
            s(Scalar::Bin(c.take(n)?))
        }
        Marker::Bin32 => {
            let n = c.len32()?;
            s(Scalar::Bin(c.take(n)?))
        }
        Marker::FixArray(n) => Some(Head::Array(usize::from(n))),
        Marker::Array16 => Some(Head::Array(c.len16()?)),
        Marker::Array32 => Some(Head::Array(c.len32()?)),
        Marker::FixMap(n) => Some(Head::Map(usize::from(n))),
        Marker::Map16 => Some(Head::Map(c.len16()?)),
        Marker::Map32 => Some(Head::Map(c.len32()?)),
        Marker::FixExt1 => ext(c, 1),
        Marker::FixExt2 => ext(c, 2),
        Marker::FixExt4 => ext(c, 4),
        Marker::FixExt8 => ext(c, 8),
        Marker::FixExt16 => ext(c, 16),
        Marker::Ext8 => {
            let n = c.len8()?;
            ext(c, n)
        }
        Marker::Ext16 => {
            let n = c.len16()?;
            ext(c, n)
        }
        Marker::Ext32 => {
            let n = c.len32()?;
            ext(c, n)
        }
        Marker::Reserved => None,
    }
}

fn str_of<'a>(c: &mut Cur<'a>, n: usize) -> Option<Head<'a>> {
    let b = c.take(n)?;
    std::str::from_utf8(b)
        .ok()
        .map(|s| Head::Scalar(Scalar::Str(s)))
}

fn ext<'a>(c: &mut Cur<'a>, n: usize) -> Option<Head<'a>> {
    let start = c.pos - 1;
    c.take(1 + n)?; // type byte + payload
    Some(Head::Scalar(Scalar::Raw(&c.buf[start..c.pos])))
}

/// Skips one complete value; false if the input is malformed or too deep.
fn skip(c: &mut Cur<'_>, depth: u32) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match read_head(c) {
        Some(Head::Scalar(_)) => true,
        Some(Head::Array(n)) => (0..n).all(|_| skip(c, depth + 1)),
        Some(Head::Map(n)) => (0..n).all(|_| skip(c, depth + 1) && skip(c, depth + 1)),
        None => false,
    }
}

/// Reads the value at `path` (map keys, outermost first). Containers come back
/// as [`Scalar::Raw`]. `None` if a map on the way lacks the key, if something
/// on the way is not a map, or if the bytes are malformed.
pub fn get<'a, S: AsRef<str>>(value: &'a [u8], path: &[S]) -> Option<Scalar<'a>> {
    let mut c = Cur { buf: value, pos: 0 };
    for (depth, name) in path.iter().enumerate() {
        let Head::Map(n) = read_head(&mut c)? else {
            return None;
        };
        let mut found = false;
        for _ in 0..n {
            let key_is_name =
                matches!(read_head(&mut c)?, Head::Scalar(Scalar::Str(k)) if k == name.as_ref());
            if key_is_name {
                found = true;
                break;
            }
            if !skip(&mut c, depth as u32 + 1) {
                return None;
            }
        }
        if !found {
            return None;
        }
    }
    let start = c.pos;
    match read_head(&mut c)? {
        Head::Scalar(s) => Some(s),
        Head::Map(_) | Head::Array(_) => {
            let mut whole = Cur {
                buf: value,
                pos: start,
            };
            skip(&mut whole, 0).then(|| Scalar::Raw(&value[start..whole.pos]))
        }
    }
}

/// The byte ranges of the items of a top-level array, or `None` if `bytes`
/// is not exactly one well-formed array.
pub fn array_items(bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut c = Cur { buf: bytes, pos: 0 };
    let Head::Array(n) = read_head(&mut c)? else {
        return None;
    };
    // Each item takes at least one byte: bound the allocation by the input.
    let mut out = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        let start = c.pos;
        if !skip(&mut c, 1) {
            return None;
        }
        out.push(start..c.pos);
    }
    (c.pos == bytes.len()).then_some(out)
}

/// The string keys and value byte ranges of a map, or `None` if `bytes` is
/// not exactly one well-formed map with string keys.
pub fn map_fields(bytes: &[u8]) -> Option<Vec<(&str, std::ops::Range<usize>)>> {
    let mut c = Cur { buf: bytes, pos: 0 };
    let Head::Map(n) = read_head(&mut c)? else {
        return None;
    };
    let mut out = Vec::with_capacity(n.min(bytes.len() / 2));
    for _ in 0..n {
        let Head::Scalar(Scalar::Str(k)) = read_head(&mut c)? else {
            return None;
        };
        let start = c.pos;
        if !skip(&mut c, 1) {
            return None;
        }
        out.push((k, start..c.pos));
    }
    (c.pos == bytes.len()).then_some(out)
}

/// Reads one value as a scalar (containers as [`Scalar::Raw`]).
pub fn scalar(bytes: &[u8]) -> Option<Scalar<'_>> {
    get::<&str>(bytes, &[])
}

/// True if `value` is exactly one well-formed MessagePack value.
pub fn is_well_formed(value: &[u8]) -> bool {
    let mut c = Cur { buf: value, pos: 0 };
    skip(&mut c, 0) && c.pos == value.len()
}

/// A dotted field path split once, so per-record lookups do not re-split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn parse(dotted: &str) -> FieldPath {
        FieldPath(dotted.split('.').map(str::to_owned).collect())
    }

    pub fn get<'a>(&self, value: &'a [u8]) -> Option<Scalar<'a>> {
        get(value, &self.0)
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn mp(v: &serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }

    #[test]
    fn reads_nested_fields_of_every_kind() {
        let v = mp(
            &json!({"bid": {"auction": 1007, "price": -5, "channel": "Google",
            "ok": true, "f": 1.5, "n": null, "big": 5_000_000_000u64, "list": [1, 2]},
            "ts": 1_436_918_400_000i64}),
        );
        let p = |s| FieldPath::parse(s).get(&v);
        assert_eq!(p("bid.auction"), Some(Scalar::Uint(1007)));
        assert_eq!(p("bid.price"), Some(Scalar::Int(-5)));
        assert_eq!(p("bid.channel"), Some(Scalar::Str("Google")));
        assert_eq!(p("bid.ok"), Some(Scalar::Bool(true)));
        assert_eq!(p("bid.f"), Some(Scalar::Float(1.5)));
        assert_eq!(p("bid.n"), Some(Scalar::Nil));
        assert_eq!(p("bid.big").and_then(|s| s.as_i64()), Some(5_000_000_000));
        assert_eq!(p("ts").and_then(|s| s.as_i64()), Some(1_436_918_400_000));
        assert_eq!(p("bid.list"), Some(Scalar::Raw(&[0x92, 1, 2])));
        assert_eq!(p("bid.missing"), None);
        assert_eq!(p("ts.deeper"), None);
    }

    #[test]
    fn keys_are_strings_or_decimal_integers() {
        let mut out = Vec::new();
        assert!(Scalar::Uint(42).write_key(&mut out));
        assert_eq!(out, b"42");
        out.clear();
        assert!(Scalar::Str("payer-7").write_key(&mut out));
        assert_eq!(out, b"payer-7");
        assert!(!Scalar::Float(1.0).write_key(&mut out));
    }

    #[test]
    fn arrays_and_maps_split_into_ranges() {
        let v = mp(&json!([{"key": "a", "value": {"x": 1}}, 7]));
        let items = array_items(&v).unwrap();
        assert_eq!(items.len(), 2);
        let fields = map_fields(&v[items[0].clone()]).unwrap();
        assert_eq!(fields[0].0, "key");
        assert_eq!(scalar(&v[items[1].clone()]), Some(Scalar::Uint(7)));
        assert!(array_items(&v[..v.len() - 1]).is_none());
        assert!(map_fields(&mp(&json!([1]))).is_none());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut v = vec![0x91u8; 100_000]; // arrays of one element, nested
        v.push(0x01);
        assert!(!is_well_formed(&v));
        assert_eq!(get(&v, &["x"]), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = get(&bytes, &["a", "b"]);
            let _ = is_well_formed(&bytes);
        }

        #[test]
        fn truncated_values_are_malformed(n in 0usize..40) {
            let v = mp(&json!({"a": {"b": "hello", "c": [1, 2, 3]}, "d": 7}));
            let cut = n.min(v.len() - 1);
            prop_assert!(!is_well_formed(&v[..cut]));
        }
    }
}
