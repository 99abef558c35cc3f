//! The SDK serializer writes exactly the bytes rmp-serde (the reference, a
//! dev-dependency) writes with `with_struct_map()`, for every shape of the serde
//! data model and at every MessagePack length and integer boundary, and what it
//! writes decodes back with the SDK decoder.

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize};

use super::roundtrip_tests::{Everything, Marker, Shape};
use super::{decode, encode, encode_into};
use crate::error::Error;

/// rmp-serde's bytes, configured as the SDK used it before it had its own
/// serializer.
fn reference<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value
        .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
        .expect("rmp-serde encodes the value");
    out
}

/// Ours equal the reference, also when appended after other bytes.
#[track_caller]
fn assert_same<T: Serialize + ?Sized + fmt::Debug>(value: &T) -> Vec<u8> {
    let expected = reference(value);
    let ours = encode(value).expect("the SDK serializer encodes the value");
    assert!(
        ours == expected,
        "bytes differ for {value:.200?}\n ours: {:02x?}\n rmp:  {:02x?}",
        &ours[..ours.len().min(64)],
        &expected[..expected.len().min(64)]
    );
    let mut appended = vec![0xee; 3];
    encode_into(&mut appended, value).unwrap();
    assert_eq!(&appended[..3], &[0xee; 3]);
    assert!(appended[3..] == expected, "bytes differ when appended");
    ours
}

/// Every marker boundary of MessagePack integers, with its neighbours.
fn integer_boundaries() -> Vec<i128> {
    let edges: [i128; 21] = [
        0,
        127,
        128,
        255,
        256,
        65535,
        65536,
        u32::MAX as i128,
        u32::MAX as i128 + 1,
        i64::MAX as i128,
        u64::MAX as i128,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        i32::MIN as i128,
        i32::MIN as i128 - 1,
        i64::MIN as i128,
    ];
    let mut all: Vec<i128> = edges.iter().flat_map(|&e| [e - 1, e, e + 1]).collect();
    all.extend([
        i8::MAX as i128,
        i16::MAX as i128,
        i32::MAX as i128,
        u16::MAX as i128,
    ]);
    all.sort_unstable();
    all.dedup();
    all
}

/// Every boundary value that fits `T`, encoded as `T`.
fn assert_width<T>()
where
    T: TryFrom<i128> + Serialize + fmt::Debug + PartialEq + for<'de> Deserialize<'de>,
{
    let values: Vec<T> = integer_boundaries()
        .into_iter()
        .filter_map(|n| T::try_from(n).ok())
        .collect();
    assert!(values.len() > 3, "{}", std::any::type_name::<T>());
    for value in &values {
        let bytes = assert_same(value);
        assert_eq!(&decode::<T>(&bytes).unwrap(), value);
    }
}

#[test]
fn integers_take_the_smallest_marker_of_every_width() {
    assert_width::<u8>();
    assert_width::<u16>();
    assert_width::<u32>();
    assert_width::<u64>();
    assert_width::<i8>();
    assert_width::<i16>();
    assert_width::<i32>();
    assert_width::<i64>();
    // The markers themselves, so a shared bug in both encoders would show too.
    assert_eq!(encode(&127i64).unwrap(), [0x7f]);
    assert_eq!(encode(&128i64).unwrap(), [0xcc, 0x80]);
    assert_eq!(encode(&-33i64).unwrap(), [0xd0, 0xdf]);
    assert_eq!(encode(&(u32::MAX as u64 + 1)).unwrap()[0], 0xcf);
    assert_eq!(encode(&(i32::MIN as i64 - 1)).unwrap()[0], 0xd3);
}

#[test]
fn wide_integers_are_sixteen_bytes_of_bin_as_in_rmp_serde() {
    for n in integer_boundaries() {
        assert_same(&n);
        if let Ok(u) = u128::try_from(n) {
            assert_same(&u);
        }
    }
    assert_same(&i128::MIN);
    assert_same(&u128::MAX);
    assert_eq!(encode(&1u128).unwrap()[..2], [0xc4, 16]);
}

#[test]
fn floats_chars_unit_and_options() {
    for x in [0.0, -0.0, 1.5, f64::MIN_POSITIVE, f64::INFINITY, f64::NAN] {
        assert_same(&x);
        assert_same(&(x as f32));
    }
    for c in ['\0', 'a', 'é', '✓', '🦀'] {
        assert_same(&c);
    }
    assert_same(&true);
    assert_same(&false);
    assert_same(&());
    assert_same(&Marker);
    assert_same(&None::<u8>);
    assert_same(&Some(Some(3u8)));
    assert_same(&Some(None::<u8>));
}

/// Lengths where the str, bin, array or map header changes size.
const LENGTHS: [usize; 11] = [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536, 70_000];

/// Bytes written as MessagePack bin.
#[derive(Serialize, Debug)]
struct Bytes<'a>(#[serde(with = "super::roundtrip_tests::serde_bytes_like")] &'a [u8]);

#[test]
fn strings_and_bytes_at_every_header_boundary() {
    for len in LENGTHS {
        let text = "x".repeat(len);
        let bytes = assert_same(text.as_str());
        assert_eq!(decode::<&str>(&bytes).unwrap(), text);
        let blob = vec![0xffu8; len];
        let bytes = assert_same(&Bytes(&blob));
        assert_eq!(decode::<&[u8]>(&bytes).unwrap(), &blob[..]);
    }
}

#[test]
fn sequences_and_maps_at_every_header_boundary() {
    for len in LENGTHS {
        let seq: Vec<u8> = (0..len).map(|i| i as u8).collect();
        assert_same(&seq);
        let map: BTreeMap<u32, ()> = (0..len as u32).map(|i| (i, ())).collect();
        let bytes = assert_same(&map);
        assert_eq!(decode::<BTreeMap<u32, ()>>(&bytes).unwrap(), map);
        let tuple_like: Vec<(u8, bool)> = (0..len).map(|i| (i as u8, i % 2 == 0)).collect();
        assert_same(&tuple_like);
    }
    assert_same(&[7u8; 16]);
    assert_same(&(1u8, -2i64, "three", [4.0f32; 2]));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct TupleStruct(u8, String, Option<i64>);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Newtype(Vec<i32>);

#[test]
fn enums_and_structs_of_every_kind() {
    assert_same(&Shape::Unit);
    assert_same(&Shape::Newtype(200));
    assert_same(&Shape::Tuple(-70_000, "t".into()));
    assert_same(&Shape::Struct {
        a: None,
        b: vec![i16::MIN, -1, 0, i16::MAX],
    });
    assert_same(&TupleStruct(1, "x".into(), None));
    assert_same(&Newtype(vec![i32::MIN, 0, i32::MAX]));
    assert_same(&vec![Some(Shape::Unit), None]);
}

/// Elements whose count serde does not know up front (`None` length).
struct Unsized {
    len: usize,
    nested: bool,
}

impl Serialize for Unsized {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for i in 0..self.len {
            if self.nested && i % 7 == 0 {
                seq.serialize_element(&Unsized {
                    len: i % 20,
                    nested: false,
                })?;
            } else {
                seq.serialize_element(&(i as u32))?;
            }
        }
        seq.end()
    }
}

impl fmt::Debug for Unsized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unsized({}, nested: {})", self.len, self.nested)
    }
}

#[test]
fn sequences_of_unknown_length_get_the_counted_header() {
    for len in LENGTHS {
        for nested in [false, true] {
            assert_same(&Unsized { len, nested });
        }
    }
    // An iterator without an exact size hint goes the same way.
    struct Filtered(u32);
    impl Serialize for Filtered {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq((0..self.0).filter(|i| i % 3 != 0))
        }
    }
    impl fmt::Debug for Filtered {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Filtered({})", self.0)
        }
    }
    for n in [0, 20, 30, 100_000] {
        assert_same(&Filtered(n));
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Flattened {
    id: u64,
    #[serde(flatten)]
    rest: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Inner {
    tag: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    score: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct FlattenedStruct {
    #[serde(flatten)]
    inner: Inner,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    list: Vec<u8>,
}

#[test]
fn flatten_is_a_map_of_unknown_length_counted_at_the_end() {
    for len in LENGTHS {
        let value = Flattened {
            id: len as u64,
            rest: (0..len as i64).map(|i| (format!("k{i}"), -i)).collect(),
        };
        let bytes = assert_same(&value);
        assert_eq!(decode::<Flattened>(&bytes).unwrap(), value);
    }
    for score in [None, Some(-5)] {
        for list in [vec![], vec![1, 2]] {
            let value = FlattenedStruct {
                inner: Inner {
                    tag: "t".into(),
                    score,
                },
                list,
            };
            let bytes = assert_same(&value);
            assert_eq!(decode::<FlattenedStruct>(&bytes).unwrap(), value);
        }
    }
}

#[test]
fn a_map_with_a_key_but_no_value_counts_as_rmp_serde_does() {
    // rmp-serde counts keys and values alike and halves the count at the end.
    struct Lopsided;
    impl Serialize for Lopsided {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("a", &1)?;
            map.serialize_key("b")?;
            map.end()
        }
    }
    impl fmt::Debug for Lopsided {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Lopsided")
        }
    }
    assert_eq!(assert_same(&Lopsided)[0], 0x81);
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Skipping {
    first: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    middle: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    last: Vec<u8>,
    #[serde(skip)]
    never: u8,
}

#[test]
fn skipped_fields_shrink_the_struct_map() {
    for middle in [None, Some("m".to_string())] {
        for last in [vec![], vec![9]] {
            let value = Skipping {
                first: 1,
                middle: middle.clone(),
                last,
                never: 0,
            };
            let bytes = assert_same(&value);
            assert_eq!(decode::<Skipping>(&bytes).unwrap(), value);
        }
    }
    let none_skipped = Skipping {
        first: 1,
        middle: None,
        last: vec![],
        never: 7,
    };
    assert_eq!(encode(&none_skipped).unwrap()[0], 0x81);
}

/// `Display` output of a chosen length, written through `collect_str`.
struct Shown(usize);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in 0..self.0 {
            f.write_str(if i % 2 == 0 { "a" } else { "b" })?;
        }
        Ok(())
    }
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shown({})", self.0)
    }
}

#[test]
fn collect_str_writes_the_text_as_a_string() {
    for len in LENGTHS {
        let bytes = assert_same(&Shown(len));
        assert_eq!(decode::<String>(&bytes).unwrap(), Shown(len).to_string());
        assert_same(&(Shown(len), 5u8, Shown(3)));
    }
}

#[test]
fn a_failing_value_leaves_the_buffer_as_it_was() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("ok", &1)?;
            Err(serde::ser::Error::custom("no thanks"))
        }
    }
    let mut out = vec![1, 2, 3];
    let Err(Error::Encode { type_name, reason }) = encode_into(&mut out, &vec![Fails]) else {
        panic!("encoding should fail");
    };
    assert_eq!(out, [1, 2, 3]);
    assert!(type_name.contains("Fails"), "{type_name}");
    let rmp_reason = rmp_serde::to_vec_named(&vec![Fails])
        .unwrap_err()
        .to_string();
    assert_eq!(reason, rmp_reason);
}

#[test]
fn extension_types_are_refused_not_miswritten() {
    struct Ext;
    impl Serialize for Ext {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_newtype_struct("_ExtStruct", &(5i8, Bytes(b"x")))
        }
    }
    let mut out = vec![9];
    let err = encode_into(&mut out, &Ext).unwrap_err().to_string();
    assert!(err.contains("extension types"), "{err}");
    assert_eq!(out, [9]);
}

/// A recursive enum with every variant kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Nested {
    Empty,
    Leaf(i64),
    Pair(Box<Nested>, Box<Nested>),
    Named { shape: Shape, children: Vec<Nested> },
}

/// Everything, plus what only the serializer tests need.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Rich {
    everything: Everything,
    ints: (u8, u16, u32, u64, i8, i16, i32, i64),
    by_name: BTreeMap<String, Nested>,
    tree: Nested,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    maybe: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    label: String,
    tuple: TupleStruct,
    newtype: Newtype,
    #[serde(flatten)]
    inner: Inner,
}

fn boundary_or_any<T>() -> BoxedStrategy<T>
where
    T: TryFrom<i128> + Arbitrary + fmt::Debug + Clone + 'static,
{
    let edges: Vec<T> = integer_boundaries()
        .into_iter()
        .filter_map(|n| T::try_from(n).ok())
        .collect();
    prop_oneof![proptest::sample::select(edges), any::<T>()].boxed()
}

/// Strings at header boundaries (ASCII, so bytes = chars) or arbitrary text.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        proptest::sample::select(&[0usize, 31, 32, 255, 256, 65535, 65536][..])
            .prop_map(|n| "s".repeat(n)),
        ".{0,40}",
    ]
    .boxed()
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        any::<u8>().prop_map(Shape::Newtype),
        (boundary_or_any::<i32>(), ".{0,8}").prop_map(|(n, s)| Shape::Tuple(n, s)),
        (
            proptest::option::of(boundary_or_any::<u64>()),
            proptest::collection::vec(boundary_or_any::<i16>(), 0..20)
        )
            .prop_map(|(a, b)| Shape::Struct { a, b }),
    ]
}

fn nested() -> impl Strategy<Value = Nested> {
    let leaf = prop_oneof![
        Just(Nested::Empty),
        boundary_or_any::<i64>().prop_map(Nested::Leaf)
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Nested::Pair(Box::new(a), Box::new(b))),
            (shape(), proptest::collection::vec(inner, 0..4))
                .prop_map(|(shape, children)| Nested::Named { shape, children }),
        ]
    })
}

fn float() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{INFINITE, NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO | INFINITE
}

fn everything() -> impl Strategy<Value = Everything> {
    (
        (
            any::<u8>(),
            boundary_or_any::<u64>(),
            boundary_or_any::<i64>(),
            float(),
            float().prop_map(|x| x as f32),
            any::<bool>(),
            text(),
            proptest::collection::vec(any::<u8>(), 0..300),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(boundary_or_any::<i8>()),
            proptest::collection::vec(shape(), 0..20),
            proptest::collection::btree_map(
                boundary_or_any::<u64>(),
                (boundary_or_any::<i64>(), any::<bool>()),
                0..20,
            ),
            any::<char>(),
        ),
    )
        .prop_map(
            |(
                (small, big, negative, float, single, flag, text, bytes),
                (none, some, shapes, by_id, character),
            )| Everything {
                small,
                big,
                negative,
                float,
                single,
                flag,
                text,
                bytes,
                none,
                some,
                shapes,
                by_id,
                unit: (),
                marker: Marker,
                character,
            },
        )
}

fn rich() -> impl Strategy<Value = Rich> {
    (
        everything(),
        (
            boundary_or_any::<u8>(),
            boundary_or_any::<u16>(),
            boundary_or_any::<u32>(),
            boundary_or_any::<u64>(),
            boundary_or_any::<i8>(),
            boundary_or_any::<i16>(),
            boundary_or_any::<i32>(),
            boundary_or_any::<i64>(),
        ),
        proptest::collection::btree_map(".{0,12}", nested(), 0..20),
        nested(),
        proptest::option::of(boundary_or_any::<u64>()),
        prop_oneof![Just(String::new()), text()],
        (any::<u8>(), text(), proptest::option::of(any::<i64>()))
            .prop_map(|(a, b, c)| TupleStruct(a, b, c)),
        proptest::collection::vec(boundary_or_any::<i32>(), 0..40).prop_map(Newtype),
        (text(), proptest::option::of(boundary_or_any::<i32>()))
            .prop_map(|(tag, score)| Inner { tag, score }),
    )
        .prop_map(
            |(everything, ints, by_name, tree, maybe, label, tuple, newtype, inner)| Rich {
                everything,
                ints,
                by_name,
                tree,
                maybe,
                label,
                tuple,
                newtype,
                inner,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_rich_value_encodes_as_rmp_serde_does_and_decodes_back(value in rich()) {
        let ours = encode(&value).unwrap();
        prop_assert!(ours == reference(&value), "bytes differ from rmp-serde's");
        prop_assert_eq!(decode::<Rich>(&ours).unwrap(), value);
    }

    #[test]
    fn any_list_of_scalars_encodes_as_rmp_serde_does(
        value in proptest::collection::vec(any::<(i64, u64, f64, String)>(), 0..40)
    ) {
        prop_assert!(encode(&value).unwrap() == reference(&value));
    }
}
