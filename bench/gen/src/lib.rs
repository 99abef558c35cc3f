//! Deterministic, seeded event generators for Sluice's tests, benchmarks and demo, and
//! straightforward reference implementations to check the engine's answers against.
//!
//! What lives here:
//! - [`nexmark`]: the Nexmark person/auction/bid generator (NEXMARK.md §1.4–§1.8), split into
//!   `P` parallel generators exactly like the Flink source, and random-access: the `n`-th event
//!   of generator `i` is a pure function of `(config, i, n)`.
//! - [`scenarios`]: the showcase workloads of SCENARIOS.md (UPI payments with injected fraud
//!   and its ground truth, rides, shop, heartbeats, fantasy scores).
//! - [`encode`]: turning any generated event into `(key, timestamp, value)` as MessagePack
//!   (struct-as-map) or as an NDJSON line, into reused buffers.
//! - [`reference`](mod@reference): obviously-correct, slow implementations of the bundled Nexmark queries and
//!   fraud rules, following docs/events.md.
//!
//! Invariant kept across the crate: every random choice is drawn from a counter-based stream
//! ([`rng::Rng`]) keyed by the seed and a position, never from a shared sequential generator,
//! so the same config always yields the same bytes, whatever the split or replay point.
//! This crate depends on nothing in the engine.

pub mod encode;
pub mod error;
pub mod nexmark;
pub mod reference;
pub mod rng;
pub mod scenarios;

pub use encode::{EventRecord, RecordBuf};
pub use error::GenError;
