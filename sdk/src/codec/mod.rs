//! `codec`: the SDK's one MessagePack encoding and decoding path.
//!
//! Values are decoded with serde straight from the batch buffer, so `&str` and
//! `&[u8]` fields borrow from it; values are encoded with field names (a map per
//! struct), the shape the JSON ingest of the same object produces (docs/events.md).
//! Decoding uses the SDK's own slice deserializer ([`Deserializer`]), encoding
//! its own `Vec` serializer ([`Serializer`]), which writes exactly the bytes
//! `rmp-serde` would (the tests compare them).
//! Called by `Record::value`, the output buffers, the snapshot code and the
//! test harness.

mod de;
mod ser;

use serde::{Deserialize, Serialize};

pub use de::{DecodeError, Deserializer, MAX_DEPTH};
pub use ser::{EncodeError, Serializer};

use crate::error::Error;

/// Decodes one MessagePack value, borrowing strings and bytes from `bytes`.
///
/// Bytes after the value are refused: a record value is exactly one value.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    let mut de = Deserializer::new(bytes);
    let decoded = T::deserialize(&mut de).and_then(|value| match de.remaining() {
        0 => Ok(value),
        rest => Err(DecodeError::new(format!("{rest} bytes follow the value"))),
    });
    decoded.map_err(|e| Error::Decode {
        type_name: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Appends the MessagePack encoding of `value` to `out` (structs as maps with
/// field names). On error `out` is left as it was.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    let start = out.len();
    value.serialize(&mut Serializer::new(out)).map_err(|e| {
        out.truncate(start);
        Error::Encode {
            type_name: std::any::type_name::<T>(),
            reason: e.to_string(),
        }
    })
}

/// The MessagePack encoding of `value` in a new buffer.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode_into(&mut out, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Bid<'a> {
        auction: u64,
        url: &'a str,
    }

    #[test]
    fn decoded_strings_borrow_from_the_input() {
        let bytes = encode(&Bid {
            auction: 7,
            url: "https://x",
        })
        .unwrap();
        let bid: Bid<'_> = decode(&bytes).unwrap();
        assert_eq!(
            bid,
            Bid {
                auction: 7,
                url: "https://x"
            }
        );
        let range = bytes.as_ptr_range();
        assert!(
            range.contains(&bid.url.as_ptr()),
            "url was copied, not borrowed"
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&1u64).unwrap();
        bytes.push(0xc0);
        let err = decode::<u64>(&bytes).unwrap_err().to_string();
        assert!(err.contains("1 bytes follow the value"), "{err}");
    }

    #[test]
    fn structs_encode_as_maps_with_field_names() {
        let bytes = encode(&Bid {
            auction: 1,
            url: "u",
        })
        .unwrap();
        assert_eq!(bytes[0], 0x82, "a fixmap of two entries");
    }
}

#[cfg(test)]
mod roundtrip_tests;

#[cfg(test)]
mod ser_tests;
