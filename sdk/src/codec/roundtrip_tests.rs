//! The slice deserializer reads what rmp-serde writes, for every shape of the
//! serde data model the SDK meets, and refuses garbage without panicking.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::{MAX_DEPTH, decode, encode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum Shape {
    Unit,
    Newtype(u8),
    Tuple(i32, String),
    Struct { a: Option<u64>, b: Vec<i16> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Marker;

/// A field of every shape of the data model; `ser_tests` generates these.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Everything {
    pub(super) small: u8,
    pub(super) big: u64,
    pub(super) negative: i64,
    pub(super) float: f64,
    pub(super) single: f32,
    pub(super) flag: bool,
    pub(super) text: String,
    #[serde(with = "serde_bytes_like")]
    pub(super) bytes: Vec<u8>,
    pub(super) none: Option<String>,
    pub(super) some: Option<i8>,
    pub(super) shapes: Vec<Shape>,
    pub(super) by_id: BTreeMap<u64, (i64, bool)>,
    pub(super) unit: (),
    pub(super) marker: Marker,
    pub(super) character: char,
}

/// Encodes a `Vec<u8>` as MessagePack bin, as `serde_bytes` would.
pub(super) mod serde_bytes_like {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        <&[u8]>::deserialize(d).map(<[u8]>::to_vec)
    }
}

#[test]
fn every_data_model_shape_round_trips_through_rmp_serde() {
    let value = Everything {
        small: 7,
        big: u64::MAX,
        negative: i64::MIN,
        float: -1.5e300,
        single: 0.25,
        flag: true,
        text: "naïve ✓".repeat(20),
        bytes: (0..=255).collect(),
        none: None,
        some: Some(-3),
        shapes: vec![
            Shape::Unit,
            Shape::Newtype(200),
            Shape::Tuple(-70_000, "t".into()),
            Shape::Struct {
                a: Some(1 << 40),
                b: vec![-1, 300],
            },
        ],
        by_id: BTreeMap::from([(1, (-1, true)), (u64::MAX, (70_000, false))]),
        unit: (),
        marker: Marker,
        character: 'λ',
    };
    let bytes = encode(&value).unwrap();
    assert_eq!(decode::<Everything>(&bytes).unwrap(), value);
    // Structs written as arrays (rmp-serde's compact form) read too.
    let compact = rmp_serde::to_vec(&value).unwrap();
    assert_eq!(decode::<Everything>(&compact).unwrap(), value);
}

#[test]
fn unknown_fields_are_skipped_whatever_they_hold() {
    #[derive(Serialize)]
    struct Wide {
        keep: u64,
        nested: BTreeMap<String, Vec<Option<f64>>>,
        blob: Vec<u8>,
        also: u64,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct Narrow {
        keep: u64,
        also: u64,
    }
    let wide = Wide {
        keep: 1,
        nested: BTreeMap::from([("x".into(), vec![Some(1.0), None])]),
        blob: vec![1, 2, 3],
        also: 2,
    };
    assert_eq!(
        decode::<Narrow>(&encode(&wide).unwrap()).unwrap(),
        Narrow { keep: 1, also: 2 }
    );
}

#[test]
fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
    let depth = MAX_DEPTH as usize + 1;
    let mut bytes = vec![0x91; depth];
    bytes.push(0x01);
    let err = decode::<serde_json::Value>(&bytes).unwrap_err().to_string();
    assert!(err.contains("MAX_DEPTH"), "{err}");
    // Skipping (an ignored field) is iterative, so it takes any depth.
    let mut ignored = vec![0x82, 0xa1, b'a', 0x01, 0xa1, b'z'];
    ignored.extend(std::iter::repeat_n(0x91, 100_000));
    ignored.push(0x01);
    #[derive(Deserialize)]
    struct A {
        a: u8,
    }
    assert_eq!(decode::<A>(&ignored).unwrap().a, 1);
}

#[test]
fn mismatched_types_name_what_was_expected() {
    #[derive(Deserialize, Debug)]
    struct Bid {
        #[allow(dead_code)]
        price: u64,
    }
    let err = decode::<Bid>(&encode(&BTreeMap::from([("price", "ten")])).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid type") && err.contains("u64"), "{err}");
    let err = decode::<Bid>(&encode(&BTreeMap::from([("cost", 1)])).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `price`"), "{err}");
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_json_value_round_trips(value in json_value()) {
        let bytes = encode(&value).unwrap();
        prop_assert_eq!(decode::<serde_json::Value>(&bytes).unwrap(), value);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode::<serde_json::Value>(&bytes);
        let _ = decode::<Everything>(&bytes);
        let _ = decode::<Shape>(&bytes);
    }

    #[test]
    fn every_truncation_of_a_value_is_an_error(cut in 1usize..60) {
        let bytes = encode(&Shape::Struct { a: Some(5), b: vec![1, 2, 3, 400] }).unwrap();
        let cut = cut.min(bytes.len());
        prop_assert!(decode::<Shape>(&bytes[..bytes.len() - cut]).is_err());
    }
}

/// Every encoding MessagePack allows for `n`, minimal or not: what other
/// encoders may write. The decoder's fast paths must read them all.
fn int_encodings(n: i128) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if (0..=0x7f).contains(&n) {
        out.push(vec![n as u8]);
    }
    if (-32..0).contains(&n) {
        out.push(vec![n as i8 as u8]);
    }
    let widths = [
        (1usize, 0xccu8, 0xd0u8),
        (2, 0xcd, 0xd1),
        (4, 0xce, 0xd2),
        (8, 0xcf, 0xd3),
    ];
    for (width, unsigned, signed) in widths {
        let bits = 8 * width as u32;
        if n >= 0 && n < 1i128 << bits {
            let mut bytes = vec![unsigned];
            bytes.extend_from_slice(&(n as u64).to_be_bytes()[8 - width..]);
            out.push(bytes);
        }
        if n >= -(1i128 << (bits - 1)) && n < 1i128 << (bits - 1) {
            let mut bytes = vec![signed];
            bytes.extend_from_slice(&(n as i64).to_be_bytes()[8 - width..]);
            out.push(bytes);
        }
    }
    out
}

/// Decodes `bytes` as `T` with the SDK and with rmp-serde: both give the same
/// value, or both refuse.
fn agrees_with_rmp_serde<T>(bytes: &[u8])
where
    T: for<'a> Deserialize<'a> + PartialEq + std::fmt::Debug,
{
    let ours = decode::<T>(bytes).ok();
    let theirs = rmp_serde::from_slice::<T>(bytes).ok();
    assert_eq!(
        ours,
        theirs,
        "{} from {bytes:02x?}",
        std::any::type_name::<T>()
    );
}

fn check_int(n: i128) {
    for bytes in int_encodings(n) {
        agrees_with_rmp_serde::<u8>(&bytes);
        agrees_with_rmp_serde::<u16>(&bytes);
        agrees_with_rmp_serde::<u32>(&bytes);
        agrees_with_rmp_serde::<u64>(&bytes);
        agrees_with_rmp_serde::<i8>(&bytes);
        agrees_with_rmp_serde::<i16>(&bytes);
        agrees_with_rmp_serde::<i32>(&bytes);
        agrees_with_rmp_serde::<i64>(&bytes);
        agrees_with_rmp_serde::<f64>(&bytes);
        assert!(
            decode::<u64>(&bytes[..bytes.len() - 1]).is_err(),
            "{bytes:02x?} cut short"
        );
    }
}

#[test]
fn every_integer_marker_reads_into_every_integer_type_at_the_range_edges() {
    let mut edges = vec![0i128, 1, -1, -32, -33, 0x7f, 0x80];
    for bits in [8u32, 16, 32, 64] {
        for base in [1i128 << bits, 1i128 << (bits - 1)] {
            edges.extend([base - 1, base, base + 1, -base, -base - 1, -base + 1]);
        }
    }
    for n in edges {
        if n >= i64::MIN as i128 && n <= u64::MAX as i128 {
            check_int(n);
        }
    }
}

/// `text` as fixstr (when short enough), str 8, str 16 and str 32.
fn str_encodings(text: &str) -> Vec<Vec<u8>> {
    let len = text.len();
    let mut heads = Vec::new();
    if len < 32 {
        heads.push(vec![0xa0 | len as u8]);
    }
    if len < 256 {
        heads.push(vec![0xd9, len as u8]);
    }
    if len < 65_536 {
        heads.push([&[0xda][..], &(len as u16).to_be_bytes()].concat());
    }
    heads.push([&[0xdb][..], &(len as u32).to_be_bytes()].concat());
    heads
        .into_iter()
        .map(|head| [head, text.as_bytes().to_vec()].concat())
        .collect()
}

#[derive(Debug, PartialEq, Deserialize)]
struct Keyed {
    key: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Borrowing<'a> {
    text: &'a str,
}

proptest! {
    #[test]
    fn any_integer_in_any_encoding_reads_as_rmp_serde_reads_it(n in any::<i64>(), m in any::<u64>()) {
        check_int(n as i128);
        check_int(m as i128);
    }

    /// Strings in every encoding: as values (owned and borrowed), as field
    /// names, and skipped as unknown fields; cut short, they are errors.
    #[test]
    fn strings_in_every_encoding_read_as_rmp_serde_reads_them(
        text in prop_oneof![".{0,40}", "[a-z]{28,40}", proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned())],
        invalid in any::<bool>(),
    ) {
        let mut raw = text.into_bytes();
        if invalid {
            raw.push(0xff);
        }
        // SAFETY: never read as `str` here; the decoders check it.
        let text = unsafe { std::str::from_utf8_unchecked(&raw) };
        for encoded in str_encodings(text) {
            agrees_with_rmp_serde::<String>(&encoded);
            let borrowed = decode::<&str>(&encoded).ok();
            prop_assert_eq!(borrowed, std::str::from_utf8(&raw).ok());
            // {"key": <text>}, {"text": <text>} and {<text>: 1, "key": "k"}.
            let value = [&[0x81, 0xa3][..], b"key", &encoded].concat();
            agrees_with_rmp_serde::<Keyed>(&value);
            let value = [&[0x81, 0xa4][..], b"text", &encoded].concat();
            prop_assert_eq!(
                decode::<Borrowing<'_>>(&value).ok().map(|b| b.text),
                std::str::from_utf8(&raw).ok()
            );
            let name = [&[0x82][..], &encoded, &[0x01, 0xa3], b"key", &[0xa1, b'k']].concat();
            agrees_with_rmp_serde::<Keyed>(&name);
            let skipped = [&[0x82, 0xa5][..], b"other", &encoded, &[0xa3], b"key", &[0xa1, b'k']].concat();
            prop_assert_eq!(decode::<Keyed>(&skipped).unwrap(), Keyed { key: "k".into() });
            prop_assert!(decode::<String>(&encoded[..encoded.len() - 1]).is_err() || raw.is_empty());
            prop_assert!(decode::<Keyed>(&skipped[..skipped.len() - 5]).is_err());
        }
    }
}
