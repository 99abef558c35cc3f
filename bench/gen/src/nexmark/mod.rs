//! The Nexmark generator (NEXMARK.md §1): persons, auctions and bids with the Beam/Flink
//! sequencing, id assignment and value distributions, and a counter-based RNG per event id.
//!
//! Split like Flink: generator `i` of `P` owns a disjoint block of event ids and runs on a
//! parallel timeline at `rate / P` (all `P` share the same timestamps). Every field except
//! `date_time` and `expires` is a function of `(seed, event id)` alone, so the union of the
//! `P` generators holds the same events as one generator, up to those two time fields.
//! Compatibility switches: [`StateCase`], `flink_bidder_offset`, and
//! `first_event_id`/`first_event_number` (1/1 in Flink, 0/0 by default).

mod config;
mod fields;
mod generator;
mod model;
mod msgpack;
pub mod sequence;

pub use config::{DEFAULT_BASE_TIME_MS, MAX_AVG_BYTES, NexmarkConfig, Split, StateCase};
pub use fields::{
    CHANNELS_NUMBER, CITIES, FIRST_NAMES, HOT_CHANNELS, LAST_NAMES, STATES_LOWER, STATES_UPPER,
};
pub use generator::NexmarkGenerator;
pub use model::{Auction, Bid, Event, EventRef, NexmarkEvent, Person};
pub use msgpack::write_event as write_event_msgpack;
