//! A serde `Deserializer` for MessagePack held in one byte slice.
//!
//! Written for the hot path of every plugin (decoding record values), where
//! `rmp-serde`'s reader-generic decoder spent most of the time: strings and
//! bytes are handed to serde borrowed from the slice, values the target type
//! does not name are skipped by walking markers (no UTF-8 check, nothing
//! built), and nothing is allocated. It reads what `rmp-serde` writes (structs as
//! maps or arrays, enums as `{variant: value}` or a bare variant name, unit as
//! `nil` or `[]`). Invariant: it never reads past the slice and nests at most
//! [`MAX_DEPTH`] levels, so hostile input yields an error, never a panic or a
//! stack overflow.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// Deepest nesting of arrays and maps accepted.
pub const MAX_DEPTH: u16 = 128;

/// Why a value did not decode.
///
/// One pointer wide (the message is boxed), so the decoder's many
/// `Result<(), DecodeError>`s travel in a register, not through memory.
#[derive(Debug)]
#[allow(clippy::box_collection)] // thin on purpose: see above
pub struct DecodeError(Box<String>);

impl DecodeError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        DecodeError(Box::new(message.into()))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

fn eof() -> DecodeError {
    DecodeError::new("the value ends early (truncated MessagePack)")
}

/// Decodes from a borrowed slice; see the module docs.
pub struct Deserializer<'de> {
    input: &'de [u8],
    depth: u16,
}

/// A scalar or container header, read from one marker.
enum Head<'de> {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(&'de [u8]),
    Bin(&'de [u8]),
    Array(u32),
    Map(u32),
    Ext(i8),
}

impl<'de> Deserializer<'de> {
    /// A deserializer over `input`.
    pub fn new(input: &'de [u8]) -> Self {
        Deserializer { input, depth: 0 }
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.input.len()
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if self.input.len() < n {
            return Err(eof());
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    #[inline(always)]
    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.input.split_first().ok_or_else(eof)?;
        self.input = rest;
        Ok(b)
    }

    #[inline(always)]
    fn peek(&self) -> Result<u8> {
        self.input.first().copied().ok_or_else(eof)
    }

    #[inline(always)]
    fn be<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    #[inline(always)]
    fn len8(&mut self) -> Result<usize> {
        Ok(self.byte()? as usize)
    }

    #[inline(always)]
    fn len16(&mut self) -> Result<usize> {
        Ok(u16::from_be_bytes(self.be()?) as usize)
    }

    #[inline(always)]
    fn len32(&mut self) -> Result<usize> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    #[inline(always)]
    fn head(&mut self) -> Result<Head<'de>> {
        let m = self.byte()?;
        self.head_of(m)
    }

    /// The rest of a value whose marker `m` has been read.
    #[inline(always)]
    fn head_of(&mut self, m: u8) -> Result<Head<'de>> {
        Ok(match m {
            0x00..=0x7f => Head::Uint(m as u64),
            0x80..=0x8f => Head::Map((m & 0x0f) as u32),
            0x90..=0x9f => Head::Array((m & 0x0f) as u32),
            0xa0..=0xbf => Head::Str(self.take((m & 0x1f) as usize)?),
            0xc0 => Head::Nil,
            0xc1 => return Err(DecodeError::new("byte 0xc1 is not a MessagePack marker")),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => {
                let n = self.len8()?;
                Head::Bin(self.take(n)?)
            }
            0xc5 => {
                let n = self.len16()?;
                Head::Bin(self.take(n)?)
            }
            0xc6 => {
                let n = self.len32()?;
                Head::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = match m {
                    0xc7 => self.len8()?,
                    0xc8 => self.len16()?,
                    _ => self.len32()?,
                };
                let tag = self.byte()? as i8;
                self.take(n)?;
                Head::Ext(tag)
            }
            0xca => Head::F32(f32::from_be_bytes(self.be()?)),
            0xcb => Head::F64(f64::from_be_bytes(self.be()?)),
            0xcc => Head::Uint(self.byte()? as u64),
            0xcd => Head::Uint(u16::from_be_bytes(self.be()?) as u64),
            0xce => Head::Uint(u32::from_be_bytes(self.be()?) as u64),
            0xcf => Head::Uint(u64::from_be_bytes(self.be()?)),
            0xd0 => Head::Int(self.byte()? as i8 as i64),
            0xd1 => Head::Int(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => Head::Int(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => Head::Int(i64::from_be_bytes(self.be()?)),
            0xd4..=0xd8 => {
                let tag = self.byte()? as i8;
                self.take(1 << (m - 0xd4))?;
                Head::Ext(tag)
            }
            0xd9 => {
                let n = self.len8()?;
                Head::Str(self.take(n)?)
            }
            0xda => {
                let n = self.len16()?;
                Head::Str(self.take(n)?)
            }
            0xdb => {
                let n = self.len32()?;
                Head::Str(self.take(n)?)
            }
            0xdc => Head::Array(self.len16()? as u32),
            0xdd => Head::Array(self.len32()? as u32),
            0xde => Head::Map(self.len16()? as u32),
            0xdf => Head::Map(self.len32()? as u32),
            0xe0..=0xff => Head::Int(m as i8 as i64),
        })
    }

    #[inline(always)]
    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::new(format!(
                "nested deeper than MAX_DEPTH ({MAX_DEPTH}) levels"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    /// Skips one value without building or checking it.
    fn skip(&mut self) -> Result<()> {
        // Iterative, so a deeply nested value cannot overflow the stack.
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.byte()?;
            let payload = match m {
                0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 0,
                0x80..=0x8f => {
                    pending += 2 * (m & 0x0f) as u64;
                    0
                }
                0x90..=0x9f => {
                    pending += (m & 0x0f) as u64;
                    0
                }
                0xa0..=0xbf => (m & 0x1f) as usize,
                0xc4 | 0xd9 => self.len8()?,
                0xc5 | 0xda => self.len16()?,
                0xc6 | 0xdb => self.len32()?,
                0xc7 => self.len8()? + 1,
                0xc8 => self.len16()? + 1,
                0xc9 => self.len32()? + 1,
                0xcc | 0xd0 => 1,
                0xcd | 0xd1 => 2,
                0xca | 0xce | 0xd2 => 4,
                0xcb | 0xcf | 0xd3 => 8,
                0xd4..=0xd8 => 1 + (1 << (m - 0xd4)),
                0xdc => {
                    pending += self.len16()? as u64;
                    0
                }
                0xdd => {
                    pending += self.len32()? as u64;
                    0
                }
                0xde => {
                    pending += 2 * self.len16()? as u64;
                    0
                }
                0xdf => {
                    pending += 2 * self.len32()? as u64;
                    0
                }
                0xc1 => return Err(DecodeError::new("byte 0xc1 is not a MessagePack marker")),
            };
            self.take(payload)?;
        }
        Ok(())
    }

    /// Record strings are nearly always ASCII, and checking that 8 bytes at a
    /// time is about twice as fast on wasm32 as `std::str::from_utf8`, whose
    /// word-at-a-time path uses 4-byte words there (70 bytes: 3.8 ns against
    /// 7.1 in V8). Anything else takes the full check, so errors are unchanged.
    fn str_of(bytes: &'de [u8]) -> Result<&'de str> {
        if is_ascii(bytes) {
            // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::new(format!("a string is not valid UTF-8: {e}")))
    }

    /// The bytes of a string whose marker is `m`, for the two markers
    /// record strings nearly always have (fixstr, str 8); `None` for any other.
    #[inline(always)]
    fn short_str(&mut self, m: u8) -> Option<Result<&'de [u8]>> {
        let n = match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 => match self.input.get(1) {
                Some(&n) => {
                    self.input = &self.input[1..];
                    n as usize
                }
                None => return Some(Err(eof())),
            },
            _ => return None,
        };
        self.input = &self.input[1..];
        Some(self.take(n))
    }

    /// Integers by their one marker: fixints and the eight sized forms read as
    /// [`Self::head`] reads them, without building a [`Head`]; any other marker
    /// goes through it (the same visits, or the error).
    #[inline(always)]
    fn int<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let m = self.byte()?;
        match m {
            0x00..=0x7f => visitor.visit_u64(m as u64),
            0xe0..=0xff => visitor.visit_i64(m as i8 as i64),
            0xcc => visitor.visit_u64(self.byte()? as u64),
            0xcd => visitor.visit_u64(u16::from_be_bytes(self.be()?) as u64),
            0xce => visitor.visit_u64(u32::from_be_bytes(self.be()?) as u64),
            0xcf => visitor.visit_u64(u64::from_be_bytes(self.be()?)),
            0xd0 => visitor.visit_i64(self.byte()? as i8 as i64),
            0xd1 => visitor.visit_i64(i16::from_be_bytes(self.be()?) as i64),
            0xd2 => visitor.visit_i64(i32::from_be_bytes(self.be()?) as i64),
            0xd3 => visitor.visit_i64(i64::from_be_bytes(self.be()?)),
            _ => {
                let head = self.head_of(m)?;
                self.visit_head(head, visitor)
            }
        }
    }

    /// Runs `visit` over the `len` elements (or entries) of an array (or map)
    /// and checks it consumed them all.
    fn nested<T>(
        &mut self,
        len: u32,
        what: &str,
        visit: impl FnOnce(&mut Access<'_, 'de>) -> Result<T>,
    ) -> Result<T> {
        self.enter()?;
        let mut access = Access {
            de: self,
            left: len,
        };
        let value = visit(&mut access)?;
        let left = access.left;
        self.depth -= 1;
        if left != 0 {
            return Err(DecodeError::new(format!(
                "{what} has {left} more items than expected"
            )));
        }
        Ok(value)
    }

    fn visit_head<V: Visitor<'de>>(&mut self, head: Head<'de>, visitor: V) -> Result<V::Value> {
        match head {
            Head::Nil => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::Uint(n) => visitor.visit_u64(n),
            Head::Int(n) => visitor.visit_i64(n),
            Head::F32(x) => visitor.visit_f32(x),
            Head::F64(x) => visitor.visit_f64(x),
            Head::Str(bytes) => visitor.visit_borrowed_str(Self::str_of(bytes)?),
            Head::Bin(bytes) => visitor.visit_borrowed_bytes(bytes),
            Head::Array(n) => self.nested(n, "an array", |access| visitor.visit_seq(access)),
            Head::Map(n) => self.nested(n, "a map", |access| visitor.visit_map(access)),
            Head::Ext(tag) => Err(DecodeError::new(format!(
                "MessagePack extension type {tag} is not supported"
            ))),
        }
    }
}

/// The integer methods of `serde::Deserializer`, all read by [`Deserializer::int`]
/// (the visitor checks the range of its own type).
macro_rules! integers_by_marker {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.int(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let head = self.head()?;
        self.visit_head(head, visitor)
    }

    integers_by_marker! {
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.short_str(self.peek()?) {
            Some(bytes) => visitor.visit_borrowed_str(Deserializer::str_of(bytes?)?),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let m = self.peek()?;
        if let 0x80..=0x8f = m {
            self.input = &self.input[1..];
            self.nested((m & 0x0f) as u32, "a map", |access| {
                visitor.visit_map(access)
            })
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Str(bytes) | Head::Bin(bytes) => visitor.visit_borrowed_bytes(bytes),
            head => self.visit_head(head, visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek()? == 0xc0 {
            self.input = &self.input[1..];
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.head()? {
            Head::Nil | Head::Array(0) => visitor.visit_unit(),
            head => self.visit_head(head, visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.head()? {
            Head::Map(1) => {
                self.enter()?;
                let value = visitor.visit_enum(Variant { de: &mut *self })?;
                self.depth -= 1;
                Ok(value)
            }
            Head::Str(bytes) => {
                visitor.visit_enum(Deserializer::str_of(bytes)?.into_deserializer())
            }
            Head::Map(n) => Err(DecodeError::new(format!(
                "an enum is a map of one entry {{variant: value}} or a variant name, found a map of {n} entries"
            ))),
            head => self.visit_head(head, visitor),
        }
    }

    /// Field and variant names reach serde's derived visitors as bytes: they
    /// match them against byte literals, so the name needs no UTF-8 check.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if let Some(bytes) = self.short_str(self.peek()?) {
            return visitor.visit_borrowed_bytes(bytes?);
        }
        match self.head()? {
            Head::Str(bytes) => visitor.visit_borrowed_bytes(bytes),
            head => self.visit_head(head, visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // Fields a type does not name are mostly short strings.
        match self.short_str(self.peek()?) {
            Some(bytes) => drop(bytes?),
            None => self.skip()?,
        }
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        // As rmp-serde's encoder, which writes what this reads.
        false
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char seq tuple tuple_struct map
    }
}

/// Whether every byte is ASCII, read as `u64` words whatever the target's word
/// size, two per step. No early exit: the strings are short and almost always
/// ASCII. A string of 8 bytes or more ends with one (overlapping) word read.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    if bytes.len() < 8 {
        return bytes.iter().fold(0u8, |acc, &b| acc | b) < 0x80;
    }
    let mut seen = word(&bytes[bytes.len() - 8..]);
    let mut pairs = bytes.chunks_exact(16);
    for pair in &mut pairs {
        seen |= word(&pair[..8]) | word(&pair[8..]);
    }
    if pairs.remainder().len() >= 8 {
        seen |= word(&pairs.remainder()[..8]);
    }
    seen & HIGH_BITS == 0
}

/// Elements of an array, or entries of a map, still to read.
struct Access<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: u32,
}

impl<'de> de::SeqAccess<'de> for Access<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

impl<'de> de::MapAccess<'de> for Access<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

/// `{variant: value}`.
struct Variant<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Deserializer, is_ascii};

    /// `str_of` accepts and refuses exactly what `std::str::from_utf8` does,
    /// with the same error.
    fn assert_agrees_with_std(bytes: &[u8]) {
        let ours = Deserializer::str_of(bytes).map_err(|e| e.to_string());
        let std =
            std::str::from_utf8(bytes).map_err(|e| format!("a string is not valid UTF-8: {e}"));
        assert_eq!(ours, std, "{bytes:02x?}");
        assert_eq!(is_ascii(bytes), bytes.is_ascii(), "{bytes:02x?}");
    }

    #[test]
    fn the_ascii_fast_path_agrees_with_from_utf8_at_every_length_and_position() {
        let valid: [&[u8]; 4] = [&[0x7f], "é".as_bytes(), "✓".as_bytes(), "🦀".as_bytes()];
        let invalid: [&[u8]; 7] = [
            &[0x80],
            &[0xff],
            &[0xc3],
            &[0xe2, 0x9c],
            &[0xf0, 0x9f, 0xa6],
            &[0xc0, 0x80],
            &[0xed, 0xa0, 0x80],
        ];
        for len in 0..40 {
            let ascii: Vec<u8> = (0..len).map(|i| b' ' + (i % 95) as u8).collect();
            assert_agrees_with_std(&ascii);
            // Every word lane and every tail position.
            for at in 0..=len {
                for insert in valid.iter().chain(&invalid) {
                    let mut bytes = ascii.clone();
                    bytes.splice(at..at, insert.iter().copied());
                    assert_agrees_with_std(&bytes);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_bytes_or_text_agree_with_from_utf8(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            text in ".{0,40}",
        ) {
            assert_agrees_with_std(&bytes);
            assert_agrees_with_std(text.as_bytes());
        }
    }
}
