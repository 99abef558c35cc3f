//! Idempotent-producer state of one partition: for each producer id, the offsets of its last
//! `PRODUCER_WINDOW` batches, so that a retried batch is acknowledged with its original
//! offsets instead of being written twice.
//!
//! Semantics (per producer id, per partition):
//! - sequences must increase; gaps are allowed, because one producer batch sent to a
//!   topic reaches only the partitions its keys hash to, so a partition sees a subset
//!   of the producer's sequences;
//! - a sequence already appended and still remembered is a duplicate: acknowledged again
//!   with its original offsets (if the record count matches; otherwise `RetryMismatch`);
//! - an older sequence no longer remembered fails with `SequenceTooOld` (not written);
//!
//! Owned by the partition's write state; persisted as a snapshot `<base>.producers` taken
//! when segment `<base>` is created (state as of offset `base`) and written by the next
//! flush, off the writer's thread (a crash before that loses only the shortcut: it is
//! rebuilt from an older snapshot and the records since); rebuilt on open or after
//! truncation by replaying producer tags stored on the records after that snapshot.
//! At most `MAX_PRODUCERS_PER_PARTITION` producers are kept; past that the least recently
//! seen is forgotten and its next batch is treated as a first batch.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use super::codec::ProducerTag;
use super::limits::{MAX_PRODUCERS_PER_PARTITION, PRODUCER_WINDOW};

/// A batch's idempotence identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProducerSeq {
    /// Producer id, chosen by the producer (unique per producer instance).
    pub producer_id: u64,
    /// Batch sequence number: consecutive per producer and partition.
    pub sequence: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Batch {
    sequence: u64,
    base: u64,
    count: u32,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    batches: VecDeque<Batch>,
    last_seen: u64,
}

/// What to do with an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Append it.
    Append,
    /// Already appended at `base..base + count`.
    Duplicate {
        /// First offset of the original.
        base: u64,
        /// Its record count.
        count: u32,
    },
}

/// Why a batch's sequence was refused (turned into a `LogError` by the caller).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Appended before, but its offsets are forgotten.
    TooOld {
        /// Oldest remembered sequence.
        oldest: u64,
        /// Next expected sequence.
        expected: u64,
    },
    /// A retry with another record count.
    Mismatch {
        /// Records in the original.
        original: u32,
    },
}

/// The state of all producers of a partition.
#[derive(Clone, Debug, Default)]
pub struct Producers {
    map: HashMap<u64, Entry>,
    clock: u64,
}

impl Producers {
    /// Decides whether a batch of `count` records with identity `ps` is appended.
    pub fn check(&self, ps: ProducerSeq, count: u32) -> Result<Verdict, Refusal> {
        let Some(e) = self.map.get(&ps.producer_id) else {
            return Ok(Verdict::Append);
        };
        let (Some(first), Some(last)) = (e.batches.front(), e.batches.back()) else {
            return Ok(Verdict::Append);
        };
        let expected = last.sequence.wrapping_add(1);
        if ps.sequence > last.sequence {
            return Ok(Verdict::Append);
        }
        match e.batches.iter().find(|b| b.sequence == ps.sequence) {
            Some(b) if b.count == count => Ok(Verdict::Duplicate {
                base: b.base,
                count: b.count,
            }),
            Some(b) => Err(Refusal::Mismatch { original: b.count }),
            None => Err(Refusal::TooOld {
                oldest: first.sequence,
                expected,
            }),
        }
    }

    /// Records an appended (or replayed) batch.
    pub fn record(&mut self, tag: ProducerTag, base: u64) {
        self.clock += 1;
        let e = self.map.entry(tag.producer_id).or_default();
        e.last_seen = self.clock;
        e.batches.push_back(Batch {
            sequence: tag.sequence,
            base,
            count: tag.count,
        });
        while e.batches.len() > PRODUCER_WINDOW {
            e.batches.pop_front();
        }
        if self.map.len() > MAX_PRODUCERS_PER_PARTITION
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(id, _)| *id)
        {
            self.map.remove(&oldest);
        }
    }

    /// The snapshot file's bytes (as of offset `as_of`), checksummed.
    pub fn encode(&self, as_of: u64) -> Vec<u8> {
        let mut b = Vec::with_capacity(24 + self.map.len() * (24 + PRODUCER_WINDOW * 20));
        b.extend_from_slice(SNAP_MAGIC);
        b.extend_from_slice(&as_of.to_le_bytes());
        b.extend_from_slice(&(self.map.len() as u32).to_le_bytes());
        let mut entries: Vec<_> = self.map.iter().collect();
        entries.sort_by_key(|(_, e)| e.last_seen);
        for (id, e) in entries {
            b.extend_from_slice(&id.to_le_bytes());
            b.push(e.batches.len() as u8);
            for x in &e.batches {
                b.extend_from_slice(&x.sequence.to_le_bytes());
                b.extend_from_slice(&x.base.to_le_bytes());
                b.extend_from_slice(&x.count.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Loads a snapshot written for offset `as_of`. `Err` says why it cannot be used.
    pub fn load(path: &Path, as_of: u64) -> Result<Producers, String> {
        let b = std::fs::read(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
        if b.len() < 20 || &b[..4] != SNAP_MAGIC {
            return Err("not a producer snapshot".into());
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err("checksum mismatch".into());
        }
        let mut r = Reader { b: &body[4..] };
        if r.u64()? != as_of {
            return Err("snapshot is for another offset".into());
        }
        let n = r.u32()?;
        let mut p = Producers::default();
        for _ in 0..n {
            let id = r.u64()?;
            let k = r.u8()?;
            for _ in 0..k {
                let (sequence, base, count) = (r.u64()?, r.u64()?, r.u32()?);
                p.record(
                    ProducerTag {
                        producer_id: id,
                        sequence,
                        count,
                    },
                    base,
                );
            }
        }
        if !r.b.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(p)
    }
}

const SNAP_MAGIC: &[u8; 4] = b"SLPS";

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.b.len() < N {
            return Err("truncated".into());
        }
        let (h, t) = self.b.split_at(N);
        self.b = t;
        let mut a = [0u8; N];
        a.copy_from_slice(h);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(seq: u64, count: u32) -> ProducerTag {
        ProducerTag {
            producer_id: 1,
            sequence: seq,
            count,
        }
    }
    fn ps(seq: u64) -> ProducerSeq {
        ProducerSeq {
            producer_id: 1,
            sequence: seq,
        }
    }

    #[test]
    fn sequences_are_checked_against_the_window() {
        let mut p = Producers::default();
        assert_eq!(p.check(ps(5), 2), Ok(Verdict::Append));
        p.record(tag(5, 2), 0);
        assert_eq!(p.check(ps(6), 1), Ok(Verdict::Append));
        assert_eq!(
            p.check(ps(5), 2),
            Ok(Verdict::Duplicate { base: 0, count: 2 })
        );
        assert_eq!(p.check(ps(5), 3), Err(Refusal::Mismatch { original: 2 }));
        assert_eq!(p.check(ps(8), 1), Ok(Verdict::Append), "gaps are allowed");
        for s in 6..6 + PRODUCER_WINDOW as u64 {
            p.record(tag(s, 1), s);
        }
        assert!(matches!(
            p.check(ps(5), 2),
            Err(Refusal::TooOld { expected: 14, .. })
        ));
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let mut p = Producers::default();
        for s in 0..20 {
            p.record(tag(s, 3), s * 3);
        }
        std::fs::write(&path, p.encode(60)).unwrap();
        let q = Producers::load(&path, 60).unwrap();
        assert_eq!(
            q.check(ps(19), 3),
            Ok(Verdict::Duplicate { base: 57, count: 3 })
        );
        assert!(Producers::load(&path, 61).is_err());
    }
}
