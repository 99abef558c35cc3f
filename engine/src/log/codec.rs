//! The record frame: the one encoding of a record on disk, used by the writer (encode), the
//! readers (decode, zero-copy) and recovery (decode to validate).
//!
//! ```text
//! 0   u32 len            bytes after the crc field (frame length - 8)
//! 4   u32 crc32c         over bytes [8, 8 + len)
//! 8   u64 offset
//! 16  i64 timestamp      event time, epoch milliseconds
//! 24  u16 attributes     bit 0: a producer tag follows the fixed header
//! 26  u16 header_count
//! 28  u32 key_len
//! 32  u32 value_len
//! 36  u32 headers_len    bytes of the headers section
//! 40  [producer tag: u64 producer_id, u64 sequence, u32 batch_count] if bit 0
//!     key, value (MessagePack, opaque here), headers: {u16 name_len, u32 value_len, name, value}*
//! ```
//! All integers little-endian. A zero `len` never starts a frame: it marks the end of the
//! written bytes (preallocated space reads as zeros). Invariant: [`decode`] returns a
//! record only if the checksum matches and every length is consistent, so a view's slices
//! are always inside the frame; it never panics on any input.

use super::limits::MAX_RECORD_BYTES;

/// Bytes of the fixed frame header.
pub const HEADER_BYTES: usize = 40;
/// Bytes of the producer tag carried by the first record of an idempotent batch.
pub const PRODUCER_TAG_BYTES: usize = 20;
const ATTR_PRODUCER: u16 = 1;
const BODY_FIXED: usize = HEADER_BYTES - 8;

/// A record to append. The value is MessagePack bytes, opaque to the log.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Event time, epoch milliseconds.
    pub timestamp: i64,
    /// Partitioning key.
    pub key: &'a [u8],
    /// Payload (MessagePack).
    pub value: &'a [u8],
    /// Name/value pairs.
    pub headers: &'a [(&'a [u8], &'a [u8])],
}

/// The idempotence tag stored on the first record of a producer's batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerTag {
    /// Producer id.
    pub producer_id: u64,
    /// The batch's sequence number.
    pub sequence: u64,
    /// Records in the batch.
    pub count: u32,
}

/// A stored record, borrowed from a segment map.
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    /// Its offset in the partition.
    pub offset: u64,
    /// Event time, epoch milliseconds.
    pub timestamp: i64,
    /// Partitioning key.
    pub key: &'a [u8],
    /// Payload (MessagePack).
    pub value: &'a [u8],
    headers: &'a [u8],
    header_count: u16,
    producer: Option<ProducerTag>,
}

impl<'a> RecordView<'a> {
    /// The record's headers, in the order they were appended.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.headers,
            left: self.header_count,
        }
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The idempotence tag, on the first record of a producer's batch.
    pub fn producer(&self) -> Option<ProducerTag> {
        self.producer
    }
}

/// Iterator over a record's `(name, value)` headers.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        // `decode` validated the section, so `split_header` cannot fail here.
        let (name, value, rest) = split_header(self.rest)?;
        self.rest = rest;
        self.left -= 1;
        Some((name, value))
    }
}

fn split_header(b: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let nl = u16::from_le_bytes(b.get(0..2)?.try_into().ok()?) as usize;
    let vl = u32::from_le_bytes(b.get(2..6)?.try_into().ok()?) as usize;
    let rest = b.get(6..)?;
    if rest.len() < nl || rest.len() - nl < vl {
        return None;
    }
    let (name, rest) = rest.split_at(nl);
    let (value, rest) = rest.split_at(vl);
    Some((name, value, rest))
}

/// Encoded size of `rec` (with a producer tag if `tagged`).
pub fn encoded_len(rec: &Record<'_>, tagged: bool) -> usize {
    let headers: usize = rec.headers.iter().map(|(n, v)| 6 + n.len() + v.len()).sum();
    HEADER_BYTES
        + if tagged { PRODUCER_TAG_BYTES } else { 0 }
        + rec.key.len()
        + rec.value.len()
        + headers
}

/// Appends the frame of `rec` at `offset` to `buf`. The caller has checked the record
/// against the limits (`encoded_len <= MAX_RECORD_BYTES`, header count and name sizes).
pub fn encode(buf: &mut Vec<u8>, offset: u64, rec: &Record<'_>, tag: Option<ProducerTag>) {
    let start = buf.len();
    let headers_len: usize = rec.headers.iter().map(|(n, v)| 6 + n.len() + v.len()).sum();
    debug_assert!(encoded_len(rec, tag.is_some()) <= MAX_RECORD_BYTES);
    debug_assert!(rec.headers.len() <= u16::MAX as usize);
    // The fixed header (and tag) is assembled on the stack and copied once.
    let mut head = [0u8; HEADER_BYTES + PRODUCER_TAG_BYTES];
    head[8..16].copy_from_slice(&offset.to_le_bytes());
    head[16..24].copy_from_slice(&rec.timestamp.to_le_bytes());
    let attrs = if tag.is_some() { ATTR_PRODUCER } else { 0 };
    head[24..26].copy_from_slice(&attrs.to_le_bytes());
    head[26..28].copy_from_slice(&(rec.headers.len() as u16).to_le_bytes());
    head[28..32].copy_from_slice(&(rec.key.len() as u32).to_le_bytes());
    head[32..36].copy_from_slice(&(rec.value.len() as u32).to_le_bytes());
    head[36..40].copy_from_slice(&(headers_len as u32).to_le_bytes());
    let mut head_len = HEADER_BYTES;
    if let Some(t) = tag {
        head[40..48].copy_from_slice(&t.producer_id.to_le_bytes());
        head[48..56].copy_from_slice(&t.sequence.to_le_bytes());
        head[56..60].copy_from_slice(&t.count.to_le_bytes());
        head_len += PRODUCER_TAG_BYTES;
    }
    buf.reserve(head_len + rec.key.len() + rec.value.len() + headers_len);
    buf.extend_from_slice(&head[..head_len]);
    buf.extend_from_slice(rec.key);
    buf.extend_from_slice(rec.value);
    for (n, v) in rec.headers {
        buf.extend_from_slice(&(n.len() as u16).to_le_bytes());
        buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        buf.extend_from_slice(n);
        buf.extend_from_slice(v);
    }
    let len = (buf.len() - start - 8) as u32;
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What starts at a position in a segment.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A valid record whose frame is `len` bytes long.
    Record {
        /// The record.
        view: RecordView<'a>,
        /// Frame length in bytes.
        len: usize,
    },
    /// No record starts here: a zero length, or fewer than 4 bytes left.
    End,
    /// A plausible length that runs past the available bytes: a write cut short.
    Torn,
    /// Checksum or layout mismatch.
    Bad(&'static str),
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Frame length and stored offset of the frame at the start of `b`, without checking the
/// checksum (for skipping over records while seeking). `None` if no plausible frame starts
/// there.
#[inline]
pub fn peek(b: &[u8]) -> Option<(usize, u64)> {
    if b.len() < HEADER_BYTES {
        return None;
    }
    let len = u32_at(b, 0) as usize;
    if !(BODY_FIXED..=MAX_RECORD_BYTES - 8).contains(&len) || len + 8 > b.len() {
        return None;
    }
    Some((len + 8, u64_at(b, 8)))
}

/// Decodes and checks the frame at the start of `b`.
#[inline]
pub fn decode(b: &[u8]) -> Frame<'_> {
    decode_with(b, true)
}

/// [`decode`], optionally without the checksum check: only for bytes this
/// process wrote itself (see `Segment::trusted_from`). Every other check
/// still runs, so a bad frame is still never served.
pub fn decode_with(b: &[u8], verify_crc: bool) -> Frame<'_> {
    if b.len() < 4 {
        return Frame::End;
    }
    let len = u32_at(b, 0) as usize;
    if len == 0 {
        return Frame::End;
    }
    if !(BODY_FIXED..=MAX_RECORD_BYTES - 8).contains(&len) {
        return Frame::Bad("frame length out of bounds");
    }
    if b.len() < 8 || b.len() - 8 < len {
        return Frame::Torn;
    }
    let frame = &b[..8 + len];
    if verify_crc && crc32c::crc32c(&frame[8..]) != u32_at(frame, 4) {
        return Frame::Bad("checksum mismatch");
    }
    let offset = u64_at(frame, 8);
    let timestamp = u64_at(frame, 16) as i64;
    let attrs = u16::from_le_bytes([frame[24], frame[25]]);
    let header_count = u16::from_le_bytes([frame[26], frame[27]]);
    let key_len = u32_at(frame, 28) as usize;
    let value_len = u32_at(frame, 32) as usize;
    let headers_len = u32_at(frame, 36) as usize;
    if attrs & !ATTR_PRODUCER != 0 {
        return Frame::Bad("unknown attribute bits");
    }
    let tag_len = if attrs & ATTR_PRODUCER != 0 {
        PRODUCER_TAG_BYTES
    } else {
        0
    };
    // Lengths are each < 4 MiB after the bound on `len`, so the sum cannot overflow.
    if HEADER_BYTES + tag_len + key_len + value_len + headers_len != frame.len() {
        return Frame::Bad("field lengths do not add up to the frame length");
    }
    let producer = (tag_len != 0).then(|| ProducerTag {
        producer_id: u64_at(frame, HEADER_BYTES),
        sequence: u64_at(frame, HEADER_BYTES + 8),
        count: u32_at(frame, HEADER_BYTES + 16),
    });
    let key_at = HEADER_BYTES + tag_len;
    let value_at = key_at + key_len;
    let headers_at = value_at + value_len;
    let headers = &frame[headers_at..];
    if header_count != 0 || !headers.is_empty() {
        let mut rest = headers;
        for _ in 0..header_count {
            match split_header(rest) {
                Some((_, _, r)) => rest = r,
                None => return Frame::Bad("headers section is malformed"),
            }
        }
        if !rest.is_empty() {
            return Frame::Bad("headers section is longer than its headers");
        }
    }
    Frame::Record {
        view: RecordView {
            offset,
            timestamp,
            key: &frame[key_at..value_at],
            value: &frame[value_at..headers_at],
            headers,
            header_count,
            producer,
        },
        len: frame.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn record_round_trips_with_headers_and_tag() {
        let hdrs: &[(&[u8], &[u8])] = &[(b"trace", b"abc"), (b"", b"")];
        let rec = Record {
            timestamp: -5,
            key: b"k1",
            value: b"\x81\xa1a\x01",
            headers: hdrs,
        };
        let tag = ProducerTag {
            producer_id: 7,
            sequence: 9,
            count: 1,
        };
        let mut buf = Vec::new();
        encode(&mut buf, 42, &rec, Some(tag));
        assert_eq!(buf.len(), encoded_len(&rec, true));
        buf.extend_from_slice(&[0; 16]);
        match decode(&buf) {
            Frame::Record { view, len } => {
                assert_eq!(len, encoded_len(&rec, true));
                assert_eq!((view.offset, view.timestamp), (42, -5));
                assert_eq!((view.key, view.value), (&b"k1"[..], &b"\x81\xa1a\x01"[..]));
                assert_eq!(view.headers().collect::<Vec<_>>(), hdrs.to_vec());
                assert_eq!(view.producer(), Some(tag));
                assert!(matches!(decode(&buf[len..]), Frame::End));
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn flipped_bit_is_reported_not_decoded() {
        let rec = Record {
            timestamp: 1,
            key: b"k",
            value: b"v",
            headers: &[],
        };
        let mut buf = Vec::new();
        encode(&mut buf, 0, &rec, None);
        for i in 8..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(matches!(decode(&b), Frame::Bad(_)), "byte {i}");
        }
        assert!(matches!(decode(&buf[..buf.len() - 1]), Frame::Torn));
    }

    proptest! {
        // Fuzz: arbitrary bytes never panic the decoder, and anything it accepts is in bounds.
        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Frame::Record { view, len } = decode(&bytes) {
                prop_assert!(len <= bytes.len());
                let n: usize = view.headers().map(|(a, b)| a.len() + b.len()).sum();
                prop_assert!(n <= len);
            }
            let _ = peek(&bytes);
        }

        // Fuzz with valid framing and checksum but arbitrary field lengths.
        #[test]
        fn decoder_checks_lengths_behind_a_valid_checksum(
            body in proptest::collection::vec(any::<u8>(), 32..200)
        ) {
            let mut b = Vec::with_capacity(body.len() + 8);
            b.extend_from_slice(&(body.len() as u32).to_le_bytes());
            b.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
            b.extend_from_slice(&body);
            if let Frame::Record { view, len } = decode(&b) {
                prop_assert_eq!(len, b.len());
                prop_assert!(view.key.len() + view.value.len() <= len);
                prop_assert_eq!(view.headers().count(), view.header_count());
            }
        }
    }
}
