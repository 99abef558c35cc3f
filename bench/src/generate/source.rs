//! What to generate: one of sluice-gen's generators with its full configuration
//! ([`SourceSpec`]), and a uniform way to pull its events as log records ([`RecordStream`]),
//! used by `generate` to write files and by systems that feed an engine directly.
//!
//! Invariant: a spec always yields the same records in the same order (sluice-gen is
//! deterministic), so a spec's [`SourceSpec::describe`] string identifies its data exactly
//! and cached files can be reused.

use std::fmt;

use sluice_gen::encode::write_ndjson;
use sluice_gen::nexmark::{NexmarkConfig, NexmarkGenerator};
use sluice_gen::scenarios::heartbeats::{HeartbeatsConfig, HeartbeatsGenerator};
use sluice_gen::scenarios::payments::{PaymentsConfig, PaymentsGenerator};
use sluice_gen::scenarios::rides::{RidesConfig, RidesGenerator};
use sluice_gen::scenarios::scores::{ScoresConfig, ScoresGenerator};
use sluice_gen::scenarios::shop::{ShopConfig, ShopGenerator};
use sluice_gen::{EventRecord, GenError, RecordBuf};

/// The generators `generate` and `run` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SourceKind {
    /// Nexmark persons, auctions and bids (topic `nexmark`).
    Nexmark,
    /// UPI payments with injected fraud patterns (topic `payments`).
    Payments,
    /// Ride requests and driver pings per geo cell (topic `rides`).
    Rides,
    /// Sale-day clicks, carts and orders (topic `shop`).
    Shop,
    /// Live-stream viewer heartbeats (topic `heartbeats`).
    Heartbeats,
    /// Fantasy-sports score events (topic `scores`).
    Scores,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Nexmark => "nexmark",
            SourceKind::Payments => "payments",
            SourceKind::Rides => "rides",
            SourceKind::Shop => "shop",
            SourceKind::Heartbeats => "heartbeats",
            SourceKind::Scores => "scores",
        })
    }
}

/// A generator and everything that determines its output.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// Nexmark.
    Nexmark(NexmarkConfig),
    /// UPI payments.
    Payments(PaymentsConfig),
    /// Rides.
    Rides(RidesConfig),
    /// Shop.
    Shop(ShopConfig),
    /// Heartbeats.
    Heartbeats(HeartbeatsConfig),
    /// Fantasy scores.
    Scores(ScoresConfig),
}

impl SourceSpec {
    /// Which generator.
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceSpec::Nexmark(_) => SourceKind::Nexmark,
            SourceSpec::Payments(_) => SourceKind::Payments,
            SourceSpec::Rides(_) => SourceKind::Rides,
            SourceSpec::Shop(_) => SourceKind::Shop,
            SourceSpec::Heartbeats(_) => SourceKind::Heartbeats,
            SourceSpec::Scores(_) => SourceKind::Scores,
        }
    }

    /// The full configuration as text: equal strings mean byte-identical data.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }

    /// How many records the stream holds (payments: slots plus injected payments).
    pub fn len(&self) -> Result<u64, GenError> {
        Ok(match self {
            SourceSpec::Nexmark(c) => {
                c.validate()?;
                c.max_events()
            }
            SourceSpec::Payments(c) => PaymentsGenerator::new(c.clone())?.total(),
            SourceSpec::Rides(c) => c.scenario.count,
            SourceSpec::Shop(c) => c.scenario.count,
            SourceSpec::Heartbeats(c) => c.scenario.count,
            SourceSpec::Scores(c) => c.scenario.count,
        })
    }

    /// True if the stream holds no record.
    pub fn is_empty(&self) -> Result<bool, GenError> {
        Ok(self.len()? == 0)
    }

    /// A fresh stream positioned at the first record.
    pub fn stream(&self) -> Result<Box<dyn RecordStream>, GenError> {
        Ok(match self {
            SourceSpec::Nexmark(c) => Box::new(NexmarkStream::new(c.clone())?),
            SourceSpec::Payments(c) => {
                Box::new(IterStream::new(PaymentsGenerator::new(c.clone())?))
            }
            SourceSpec::Rides(c) => Box::new(IterStream::new(RidesGenerator::new(c.clone())?)),
            SourceSpec::Shop(c) => Box::new(IterStream::new(ShopGenerator::new(c.clone())?)),
            SourceSpec::Heartbeats(c) => {
                Box::new(IterStream::new(HeartbeatsGenerator::new(c.clone())?))
            }
            SourceSpec::Scores(c) => Box::new(IterStream::new(ScoresGenerator::new(c.clone())?)),
        })
    }
}

/// A generated stream pulled one record at a time into reused buffers.
pub trait RecordStream {
    /// Encodes the next record (MessagePack value) into `rec`; false at the end.
    fn next_record(&mut self, rec: &mut RecordBuf) -> Result<bool, GenError>;
    /// Appends the next record as an NDJSON ingest line to `out`; false at the end.
    fn next_ndjson(&mut self, out: &mut Vec<u8>) -> Result<bool, GenError>;
}

/// All `P` Nexmark generators of a config, interleaved by position: generator `i`'s `n`-th
/// event follows generator `i − 1`'s `n`-th. The `P` timelines share their timestamps, so
/// the interleaving is in event-time order (up to the configured out-of-order groups).
struct NexmarkStream {
    generators: Vec<NexmarkGenerator>,
    next: usize,
}

impl NexmarkStream {
    fn new(config: NexmarkConfig) -> Result<Self, GenError> {
        Ok(NexmarkStream {
            generators: NexmarkGenerator::all(config)?,
            next: 0,
        })
    }

    /// The generator due next that still has events, advancing the round-robin cursor.
    fn due(&mut self) -> Option<&mut NexmarkGenerator> {
        let p = self.generators.len();
        for _ in 0..p {
            let i = self.next;
            self.next = (self.next + 1) % p;
            if self.generators[i].position() < self.generators[i].len() {
                return Some(&mut self.generators[i]);
            }
        }
        None
    }
}

impl RecordStream for NexmarkStream {
    fn next_record(&mut self, rec: &mut RecordBuf) -> Result<bool, GenError> {
        match self.due() {
            Some(g) => g.next_record(rec),
            None => Ok(false),
        }
    }

    fn next_ndjson(&mut self, out: &mut Vec<u8>) -> Result<bool, GenError> {
        match self.due() {
            Some(g) => g.next_ndjson(out),
            None => Ok(false),
        }
    }
}

/// Any scenario generator (an iterator of events that know their key and time).
struct IterStream<I> {
    events: I,
    scratch: Vec<u8>,
}

impl<I> IterStream<I> {
    fn new(events: I) -> Self {
        IterStream {
            events,
            scratch: Vec::new(),
        }
    }
}

impl<I, E> RecordStream for IterStream<I>
where
    I: Iterator<Item = E>,
    E: EventRecord,
{
    fn next_record(&mut self, rec: &mut RecordBuf) -> Result<bool, GenError> {
        match self.events.next() {
            Some(e) => rec.fill(&e).map(|()| true),
            None => Ok(false),
        }
    }

    fn next_ndjson(&mut self, out: &mut Vec<u8>) -> Result<bool, GenError> {
        match self.events.next() {
            Some(e) => write_ndjson(&e, &mut self.scratch, out).map(|()| true),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nexmark_stream_interleaves_generators_in_time_order() {
        let spec = SourceSpec::Nexmark(NexmarkConfig {
            num_events: 1_001,
            num_generators: 4,
            ..NexmarkConfig::default()
        });
        let mut stream = spec.stream().unwrap();
        let mut rec = RecordBuf::default();
        let (mut n, mut last) = (0u64, i64::MIN);
        while stream.next_record(&mut rec).unwrap() {
            assert!(rec.timestamp >= last, "record {n} goes back in time");
            last = rec.timestamp;
            n += 1;
        }
        assert_eq!(n, spec.len().unwrap());
    }
}
