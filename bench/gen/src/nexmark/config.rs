//! Nexmark generator configuration (NEXMARK.md §1.3) and its split into `P` generators.
//!
//! Defaults follow Beam/nexmark-bench (fixed base time 2015-07-15, first id and number 0,
//! upper-case states, bidder ids offset by 1000 once); [`NexmarkConfig::flink`] and
//! [`NexmarkConfig::risingwave`] switch on the other variants.

use crate::GenError;

/// Beam's fixed base time, 2015-07-15T00:00:00Z, in epoch ms.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;

/// Largest accepted average event size (drives `extra` padding); the padding pool is
/// sized from it.
pub const MAX_AVG_BYTES: u32 = 64 * 1024;

/// Case of the `state` field: Flink/Beam write `OR`, nexmark-rs/RisingWave write `or`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCase {
    /// `AZ`, `CA`, ... (Flink, Beam, Arroyo).
    Upper,
    /// `az`, `ca`, ... (nexmark-rs, RisingWave).
    Lower,
}

/// Everything that determines a Nexmark event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    /// Global seed of every random draw.
    pub seed: u64,
    /// Event time of event number 0, epoch ms.
    pub base_time_ms: i64,
    /// Event id of the first event of generator 0 (Flink: 1).
    pub first_event_id: u64,
    /// Event number of every generator's first event (Flink: 1); drives timestamps.
    pub first_event_number: u64,
    /// Events per second of event time, summed over all generators.
    pub event_rate: u64,
    /// Events in total over all generators; 0 = unbounded (Flink's cap).
    pub num_events: u64,
    /// Number of parallel generators `P` (Flink: the source parallelism).
    pub num_generators: u32,
    /// Out-of-order group size `G` (1 = in order; Arroyo uses 50).
    pub out_of_order_group_size: u64,
    /// A bid goes to the hot auction with probability `1 - 1/ratio`.
    pub hot_auction_ratio: u32,
    /// A bid comes from the hot bidder with probability `1 - 1/ratio`.
    pub hot_bidders_ratio: u32,
    /// An auction's seller is the hot seller with probability `1 - 1/ratio`.
    pub hot_sellers_ratio: u32,
    /// Window of "live" auction ids random bids choose from.
    pub num_in_flight_auctions: u64,
    /// Window of "active" person ids random sellers and bidders choose from.
    pub num_active_people: u64,
    /// Average person size in bytes (drives `extra`).
    pub avg_person_bytes: u32,
    /// Average auction size in bytes.
    pub avg_auction_bytes: u32,
    /// Average bid size in bytes.
    pub avg_bid_bytes: u32,
    /// Case of `Person.state`.
    pub state_case: StateCase,
    /// Flink's bug since 2021: bidder ids get `FIRST_PERSON_ID` added twice (+2000).
    pub flink_bidder_offset: bool,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            seed: 0,
            base_time_ms: DEFAULT_BASE_TIME_MS,
            first_event_id: 0,
            first_event_number: 0,
            event_rate: 10_000,
            num_events: 0,
            num_generators: 1,
            out_of_order_group_size: 1,
            hot_auction_ratio: 2,
            hot_bidders_ratio: 4,
            hot_sellers_ratio: 4,
            num_in_flight_auctions: 100,
            num_active_people: 1000,
            avg_person_bytes: 200,
            avg_auction_bytes: 500,
            avg_bid_bytes: 100,
            state_case: StateCase::Upper,
            flink_bidder_offset: false,
        }
    }
}

impl NexmarkConfig {
    /// The Flink repo's variant: first id and number 1, upper-case states, +2000 bidders.
    pub fn flink() -> Self {
        NexmarkConfig {
            first_event_id: 1,
            first_event_number: 1,
            flink_bidder_offset: true,
            ..Self::default()
        }
    }

    /// nexmark-rs / RisingWave's variant: ids from 0, lower-case states.
    pub fn risingwave() -> Self {
        NexmarkConfig {
            state_case: StateCase::Lower,
            ..Self::default()
        }
    }

    /// Checks every field; the error names the field and the accepted range.
    pub fn validate(&self) -> Result<(), GenError> {
        let bad =
            |field, problem: String, fix| Err(GenError::config("nexmark", field, problem, fix));
        if self.event_rate == 0 {
            return bad(
                "event_rate",
                "is 0".into(),
                "give events per second of event time, at least 1",
            );
        }
        if self.num_generators == 0 {
            return bad("num_generators", "is 0".into(), "use at least 1 generator");
        }
        if self.out_of_order_group_size == 0 {
            return bad(
                "out_of_order_group_size",
                "is 0".into(),
                "use 1 for in-order events",
            );
        }
        for (field, v) in [
            ("hot_auction_ratio", self.hot_auction_ratio),
            ("hot_bidders_ratio", self.hot_bidders_ratio),
            ("hot_sellers_ratio", self.hot_sellers_ratio),
        ] {
            if v == 0 {
                return bad(
                    field,
                    "is 0".into(),
                    "use a ratio of at least 1 (1 = never hot)",
                );
            }
        }
        if self.num_in_flight_auctions == 0 || self.num_active_people == 0 {
            return bad(
                "num_in_flight_auctions/num_active_people",
                format!(
                    "is {}/{}",
                    self.num_in_flight_auctions, self.num_active_people
                ),
                "use at least 1 (defaults 100 and 1000)",
            );
        }
        for (field, v) in [
            ("avg_person_bytes", self.avg_person_bytes),
            ("avg_auction_bytes", self.avg_auction_bytes),
            ("avg_bid_bytes", self.avg_bid_bytes),
        ] {
            if v > MAX_AVG_BYTES {
                return bad(
                    field,
                    format!("is {v}, above MAX_AVG_BYTES = {MAX_AVG_BYTES}"),
                    "use a smaller average size",
                );
            }
        }
        if self.num_events != 0 && self.num_events < u64::from(self.num_generators) {
            return bad(
                "num_events",
                format!(
                    "is {} but num_generators is {}",
                    self.num_events, self.num_generators
                ),
                "give every generator at least one event, or 0 for unbounded",
            );
        }
        Ok(())
    }

    /// Total events over all generators (Flink's cap when `num_events` is 0).
    pub fn max_events(&self) -> u64 {
        if self.num_events == 0 {
            let biggest = self
                .avg_person_bytes
                .max(self.avg_auction_bytes)
                .max(self.avg_bid_bytes)
                .max(1);
            i64::MAX as u64 / (super::sequence::TOTAL_PROPORTION * u64::from(biggest))
        } else {
            self.num_events
        }
    }

    /// Microseconds of event time between two events of one generator:
    /// `1e6 / event_rate × P` (each of the `P` parallel timelines runs at `rate / P`).
    pub fn inter_event_delay_us(&self) -> f64 {
        1_000_000.0 / self.event_rate as f64 * f64::from(self.num_generators)
    }

    /// Generator `index`'s share, as Flink splits it: a disjoint block of event ids starting at
    /// `first_event_id + index × ⌊N/P⌋`, with `⌊N/P⌋` events (the last takes the remainder).
    pub fn split(&self, index: u32) -> Split {
        let p = u64::from(self.num_generators);
        let n = self.max_events();
        let per = n / p;
        let i = u64::from(index);
        let count = if i + 1 == p { n - per * (p - 1) } else { per };
        Split {
            first_event_id: self.first_event_id + i * per,
            num_events: count,
        }
    }
}

/// One generator's share of the event id space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// `firstEventId` of this generator.
    pub first_event_id: u64,
    /// How many events it yields.
    pub num_events: u64,
}
