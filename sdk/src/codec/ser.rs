//! A serde `Serializer` that appends MessagePack to a `Vec<u8>`.
//!
//! Written for the hot path of every plugin (encoding output values), where
//! `rmp-serde`'s writer-generic encoder spent a large share of each record:
//! every marker and every payload went through `io::Write` and its error
//! plumbing. Here a scalar is one capacity check and one copy, a field name is
//! its marker and bytes in one reservation, and nothing is allocated. A
//! sequence or map of unknown length (`#[serde(flatten)]` asks for one) is
//! written in place and its header moved in front once its items are counted.
//!
//! Invariant: the bytes are exactly those of
//! `rmp_serde::Serializer::new(out).with_struct_map()` (rmp-serde 1.3), so
//! readers of plugin output and of snapshots see no change — integers in their
//! smallest form (non-negative signed ones with the unsigned markers), structs
//! as maps with field names, unit as `nil`, unit structs as `[]`, enums as a
//! bare variant name or `{variant: value}`, `i128`/`u128` as 16 big-endian
//! bytes of bin. `ser_tests` compares the two byte for byte. The one
//! difference is deliberate: rmp-serde's extension-type convention is refused.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser;

/// Why a value did not encode: what its `Serialize` impl reported, or a length
/// MessagePack cannot hold.
#[derive(Debug)]
pub struct EncodeError(pub(crate) String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, EncodeError>;

/// The newtype-struct name rmp-serde reserves for MessagePack extension types.
const EXT_STRUCT_NAME: &str = "_ExtStruct";

/// MessagePack lengths are 32-bit; a longer string, byte string or container
/// cannot be written (only reachable natively: on wasm32 `usize` is 32-bit).
#[inline(always)]
fn len_u32(len: usize, what: &'static str) -> Result<u32> {
    u32::try_from(len).map_err(|_| too_long(len, what))
}

/// Out of line, so the formatting stays off the hot path.
#[cold]
#[inline(never)]
fn too_long(len: usize, what: &str) -> EncodeError {
    EncodeError(format!(
        "{what} of {len} items is longer than MessagePack allows ({} at most)",
        u32::MAX
    ))
}

/// Appends to a borrowed buffer; see the module docs.
///
/// On error the buffer holds a partial value: the caller truncates it
/// (`codec::encode_into` does).
pub struct Serializer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Serializer<'a> {
    /// A serializer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Serializer { out }
    }

    /// Appends a fixed-size run of bytes with one capacity check.
    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.out.extend_from_slice(&bytes);
    }

    /// Appends a marker and its big-endian payload (at most 8 bytes) with one
    /// capacity check: `N` is a constant, so this is a fixed-size copy.
    #[inline(always)]
    fn marked<const N: usize>(&mut self, marker: u8, payload: [u8; N]) {
        let mut bytes = [0u8; 9];
        bytes[0] = marker;
        bytes[1..=N].copy_from_slice(&payload);
        self.out.extend_from_slice(&bytes[..=N]);
    }

    /// As `rmp::encode::write_uint`: the smallest of positive fixint, u8, u16,
    /// u32 and u64.
    #[inline(always)]
    fn uint(&mut self, n: u64) {
        match n {
            0..=0x7f => self.put([n as u8]),
            0x80..=0xff => self.put([0xcc, n as u8]),
            0x100..=0xffff => self.marked(0xcd, (n as u16).to_be_bytes()),
            0x1_0000..=0xffff_ffff => self.marked(0xce, (n as u32).to_be_bytes()),
            _ => self.marked(0xcf, n.to_be_bytes()),
        }
    }

    /// As `rmp::encode::write_sint`: a non-negative value is written as
    /// unsigned, a negative one as the smallest of negative fixint, i8, i16,
    /// i32 and i64.
    #[inline(always)]
    fn sint(&mut self, n: i64) {
        match n {
            0.. => self.uint(n as u64),
            -32..=-1 => self.put([n as u8]),
            -128..=-33 => self.put([0xd0, n as u8]),
            -32768..=-129 => self.marked(0xd1, (n as i16).to_be_bytes()),
            -2_147_483_648..=-32769 => self.marked(0xd2, (n as i32).to_be_bytes()),
            _ => self.marked(0xd3, n.to_be_bytes()),
        }
    }

    /// As `rmp::encode::write_str_len`: fixstr, str8, str16 or str32.
    #[inline(always)]
    fn str_header(&mut self, len: u32) {
        match len {
            0..=31 => self.out.push(0xa0 | len as u8),
            32..=0xff => self.put([0xd9, len as u8]),
            0x100..=0xffff => self.marked(0xda, (len as u16).to_be_bytes()),
            _ => self.marked(0xdb, len.to_be_bytes()),
        }
    }

    /// As `rmp::encode::write_bin_len`: bin8, bin16 or bin32 (no fix form).
    fn bin_header(&mut self, len: u32) {
        match len {
            0..=0xff => self.put([0xc4, len as u8]),
            0x100..=0xffff => self.marked(0xc5, (len as u16).to_be_bytes()),
            _ => self.marked(0xc6, len.to_be_bytes()),
        }
    }

    /// As `rmp::encode::write_array_len`: fixarray, array16 or array32.
    #[inline]
    fn array_header(&mut self, len: u32) {
        match len {
            0..=15 => self.out.push(0x90 | len as u8),
            16..=0xffff => self.marked(0xdc, (len as u16).to_be_bytes()),
            _ => self.marked(0xdd, len.to_be_bytes()),
        }
    }

    /// As `rmp::encode::write_map_len`: fixmap, map16 or map32.
    #[inline]
    fn map_header(&mut self, len: u32) {
        match len {
            0..=15 => self.out.push(0x80 | len as u8),
            16..=0xffff => self.marked(0xde, (len as u16).to_be_bytes()),
            _ => self.marked(0xdf, len.to_be_bytes()),
        }
    }

    /// A string: its header and bytes in one reservation. Inlined so that a
    /// field name, whose length is a constant, is copied without a `memcpy`
    /// call.
    #[inline(always)]
    fn str(&mut self, s: &str) -> Result<()> {
        let len = len_u32(s.len(), "a string")?;
        if len < 32 {
            self.fixstr(s.as_bytes());
            return Ok(());
        }
        self.out.reserve(5 + s.len());
        self.str_header(len);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    /// A string of fewer than 32 bytes (every field name, many values): its
    /// one-byte header and its bytes written into reserved capacity, so one
    /// capacity check where `push` and `extend_from_slice` would add two.
    /// Measured at about a tenth of a q0 record's encoding time in wasm.
    #[inline(always)]
    fn fixstr(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len() < 32);
        self.out.reserve(1 + bytes.len());
        let start = self.out.len();
        let spare = &mut self.out.spare_capacity_mut()[..1 + bytes.len()];
        spare[0].write(0xa0 | bytes.len() as u8);
        spare[1..].write_copy_of_slice(bytes);
        // SAFETY: `reserve` made room for these `1 + bytes.len()` bytes and the
        // two writes above initialised every one of them.
        unsafe { self.out.set_len(start + 1 + bytes.len()) };
    }

    /// Moves the header just written at the end of the buffer in front of the
    /// body that starts at `body_start`: for values whose length is known only
    /// once they are written. rmp-serde writes such a body to a second buffer
    /// and copies it after the header; rotating in place copies as much and
    /// allocates nothing.
    fn move_header_before(&mut self, body_start: usize, header_start: usize) {
        let header_len = self.out.len() - header_start;
        self.out[body_start..].rotate_right(header_len);
    }

    /// A `{variant: ...}` map's header and key; the caller writes the value.
    fn variant_key(&mut self, variant: &'static str) -> Result<()> {
        self.out.push(0x81);
        self.str(variant)
    }
}

/// Collects `Display` output straight into the buffer.
struct Text<'v>(&'v mut Vec<u8>);

impl fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl<'s, 'a> ser::Serializer for &'s mut Serializer<'a> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.sint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.sint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.sint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.sint(v);
        Ok(())
    }

    /// As rmp-serde: MessagePack has no 128-bit integers, so 16 bytes of bin.
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.serialize_bytes(&v.to_be_bytes())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.uint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.uint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.uint(v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.uint(v);
        Ok(())
    }

    /// As rmp-serde: 16 bytes of bin.
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.serialize_bytes(&v.to_be_bytes())
    }

    /// Always float 32, never narrowed to an integer.
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.marked(0xca, v.to_be_bytes());
        Ok(())
    }

    /// Always float 64, never narrowed to float 32 or an integer.
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.marked(0xcb, v.to_be_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        self.str(v.encode_utf8(&mut [0; 4]))
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.str(v)
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        let len = len_u32(v.len(), "a byte string")?;
        self.out.reserve(5 + v.len());
        self.bin_header(len);
        self.out.extend_from_slice(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_unit(self) -> Result<()> {
        self.out.push(0xc0);
        Ok(())
    }

    /// As rmp-serde: an empty array, not `nil`.
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.array_header(0);
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.str(variant)
    }

    /// Transparent, except for rmp-serde's extension-type convention, which is
    /// refused rather than written as a plain array: the SDK's decoder reads no
    /// extension types, so such a value could not be read back by a plugin.
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<()> {
        if name == EXT_STRUCT_NAME {
            return Err(EncodeError(
                "MessagePack extension types (rmp-serde's `_ExtStruct`) are not supported \
                 by the Sluice SDK codec; encode the payload as bytes instead"
                    .into(),
            ));
        }
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.variant_key(variant)?;
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'s, 'a>> {
        match len {
            Some(len) => {
                self.array_header(len_u32(len, "a sequence")?);
                Ok(Compound::known(self))
            }
            None => Ok(Compound::counted(self)),
        }
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'a>> {
        self.array_header(len_u32(len, "a tuple")?);
        Ok(Compound::known(self))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'a>> {
        self.array_header(len_u32(len, "a tuple struct")?);
        Ok(Compound::known(self))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>> {
        self.variant_key(variant)?;
        self.array_header(len_u32(len, "a tuple variant")?);
        Ok(Compound::known(self))
    }

    /// A map of unknown length is what `#[serde(flatten)]` asks for.
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'s, 'a>> {
        match len {
            Some(len) => {
                self.map_header(len_u32(len, "a map")?);
                Ok(Compound::known(self))
            }
            None => Ok(Compound::counted(self)),
        }
    }

    /// The map header says `len` entries: serde's derive already leaves out the
    /// fields `skip_serializing_if` skips, and rmp-serde trusts `len` too.
    #[inline]
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'a>> {
        self.map_header(len_u32(len, "a struct")?);
        Ok(Compound::known(self))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>> {
        self.variant_key(variant)?;
        self.map_header(len_u32(len, "a struct variant")?);
        Ok(Compound::known(self))
    }

    /// The same bytes as serde's default (`serialize_str(&value.to_string())`)
    /// without the `String`: the text is written first, its header after, and
    /// the header moved in front.
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<()> {
        let start = self.out.len();
        write!(Text(self.out), "{value}")
            .map_err(|_| EncodeError("a `Display` impl returned an error".into()))?;
        let header_start = self.out.len();
        self.str_header(len_u32(header_start - start, "a string")?);
        self.move_header_before(start, header_start);
        Ok(())
    }

    /// As rmp-serde by default: types with a compact form use it (an `IpAddr`
    /// as its octets, not as text).
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements, fields or entries of one container being written.
pub struct Compound<'s, 'a> {
    ser: &'s mut Serializer<'a>,
    /// Set for a sequence or map whose length serde did not know up front.
    counted: Option<Counted>,
}

/// A container written header-last: where its body starts and how many items
/// it holds so far. As in rmp-serde, a map's keys and values are counted alike
/// and halved at the end.
struct Counted {
    start: usize,
    items: u32,
}

impl<'s, 'a> Compound<'s, 'a> {
    /// Its header is already written.
    fn known(ser: &'s mut Serializer<'a>) -> Self {
        Compound { ser, counted: None }
    }

    /// Its header is written by `end`, once the items are counted.
    fn counted(ser: &'s mut Serializer<'a>) -> Self {
        let start = ser.out.len();
        Compound {
            ser,
            counted: Some(Counted { start, items: 0 }),
        }
    }

    #[inline]
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)?;
        if let Some(counted) = &mut self.counted {
            counted.items = counted.items.checked_add(1).ok_or_else(|| {
                EncodeError("a sequence or map has more than 2^32-1 items".into())
            })?;
        }
        Ok(())
    }

    #[inline(always)]
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.ser.str(key)?;
        value.serialize(&mut *self.ser)
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        if let Some(Counted { start, items }) = self.counted {
            let header_start = self.ser.out.len();
            self.ser.array_header(items);
            self.ser.move_header_before(start, header_start);
        }
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.item(key)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        if let Some(Counted { start, items }) = self.counted {
            let header_start = self.ser.out.len();
            self.ser.map_header(items / 2);
            self.ser.move_header_before(start, header_start);
        }
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = EncodeError;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    #[inline]
    fn end(self) -> Result<()> {
        Ok(())
    }
}
