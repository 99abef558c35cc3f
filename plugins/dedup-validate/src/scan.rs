//! `scan`: one pass over a record's value that picks out the fields the
//! schema names, without building anything else.
//!
//! The value must be a map. Each entry whose key is one of the wanted names
//! lands in that name's slot as a [`Scalar`] (strings borrowed from the
//! batch); everything else is skipped. The slots are a fixed-size array on the
//! stack, so a record costs no allocation.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sluice_sdk::codec;

/// Most fields a schema may name (plus the id field).
pub const MAX_FIELDS: usize = 64;

/// A field's value as far as the checks care.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// Not in the value.
    Absent,
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// Any integer (u64 and i64 both fit).
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'a str),
    /// Something else: `"array"`, `"map"` or `"bytes"`.
    Other(&'static str),
}

impl Scalar<'_> {
    /// The value's type as a reason names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Absent => "nothing",
            Scalar::Nil => "null",
            Scalar::Bool(_) => "bool",
            Scalar::Int(_) => "integer",
            Scalar::Float(_) => "number",
            Scalar::Str(_) => "string",
            Scalar::Other(kind) => kind,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Nil)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Nil)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_borrowed_bytes<E: de::Error>(self, _: &'de [u8]) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other("bytes"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("map"))
    }
}

/// A map key: a borrowed string, or something that matches no field name.
struct Key<'a>(Option<&'a str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(ScalarVisitor)? {
            Scalar::Str(s) => Ok(Key(Some(s))),
            _ => Ok(Key(None)),
        }
    }
}

struct Fill<'s, 'a, 'n> {
    names: &'n [&'n str],
    slots: &'s mut [Scalar<'a>; MAX_FIELDS],
}

impl<'de> DeserializeSeed<'de> for Fill<'_, 'de, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fill<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.and_then(|k| self.names.iter().position(|n| *n == k)) {
                Some(i) => self.slots[i] = map.next_value_seed(ScalarSeed)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Fills `slots[i]` with the value of field `names[i]` (others stay
/// [`Scalar::Absent`]). Errors if `value` is not a MessagePack map.
pub fn scan<'a>(
    value: &'a [u8],
    names: &[&str],
    slots: &mut [Scalar<'a>; MAX_FIELDS],
) -> Result<(), String> {
    debug_assert!(names.len() <= MAX_FIELDS);
    let mut de = codec::Deserializer::new(value);
    Fill { names, slots }
        .deserialize(&mut de)
        .map_err(|e| format!("the value is not a map ({e})"))?;
    match de.remaining() {
        0 => Ok(()),
        n => Err(format!("{n} bytes follow the value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_fields_land_in_their_slots() {
        let v = codec::encode(
            &serde_json::json!({"a": 1, "skip": {"b": [1, 2]}, "b": "x", "c": -3,
                                                   "d": 1.5, "e": null, "f": [1], "g": true}),
        )
        .unwrap();
        let mut slots = [Scalar::Absent; MAX_FIELDS];
        scan(&v, &["b", "c", "d", "e", "f", "g", "z"], &mut slots).unwrap();
        assert_eq!(
            &slots[..7],
            &[
                Scalar::Str("x"),
                Scalar::Int(-3),
                Scalar::Float(1.5),
                Scalar::Nil,
                Scalar::Other("array"),
                Scalar::Bool(true),
                Scalar::Absent
            ]
        );
    }

    #[test]
    fn a_value_that_is_not_a_map_is_an_error() {
        let v = codec::encode(&[1, 2]).unwrap();
        let mut slots = [Scalar::Absent; MAX_FIELDS];
        let err = scan(&v, &["a"], &mut slots).unwrap_err();
        assert!(err.starts_with("the value is not a map"), "{err}");
    }
}
