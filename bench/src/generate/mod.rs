//! Data generation: the knobs of every sluice-gen generator as command-line flags
//! ([`DataArgs`], shared by `generate` and `run`), the resulting [`SourceSpec`], and writing
//! it to disk ([`write`](mod@write)).
//!
//! A flag left out keeps the generator's own default (NEXMARK.md §1.3 for Nexmark, the
//! scenario configs of sluice-gen otherwise), except where noted on the flag.

pub mod source;
pub mod write;

use sluice_gen::nexmark::{NexmarkConfig, StateCase};
use sluice_gen::scenarios::ScenarioConfig;
use sluice_gen::scenarios::heartbeats::HeartbeatsConfig;
use sluice_gen::scenarios::payments::{Injection, PaymentsConfig, VELOCITY_WINDOW_MS};
use sluice_gen::scenarios::rides::RidesConfig;
use sluice_gen::scenarios::scores::ScoresConfig;
use sluice_gen::scenarios::shop::ShopConfig;

pub use source::{RecordStream, SourceKind, SourceSpec};
pub use write::{Format, Manifest, WriteOptions};

use crate::BenchError;

/// Default number of events when `--events` is not given.
pub const DEFAULT_EVENTS: u64 = 1_000_000;
/// Event-time span the payments stream covers by default, so injected fraud patterns (up to
/// the 10 min `two_large` span) fit: the rate defaults to `events / this`.
const PAYMENTS_SPAN_S: u64 = 3_600;
/// Fraud patterns injected into a payments stream unless told otherwise (cycling the three rules).
pub const DEFAULT_FRAUD_PATTERNS: usize = 30;

/// Which Nexmark variant to start from (NEXMARK.md §1.9); single flags override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NexmarkPreset {
    /// Beam/nexmark-bench: ids from 0, fixed base time 2015-07-15, upper-case states.
    #[default]
    Default,
    /// The Flink repo: ids and numbers from 1, +2000 bidder ids.
    Flink,
    /// nexmark-rs/RisingWave: ids from 0, lower-case states.
    Risingwave,
}

/// Case of Nexmark's `state` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaseArg {
    /// `OR`, `CA`, ...
    Upper,
    /// `or`, `ca`, ...
    Lower,
}

/// Generator knobs, as flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DataArgs {
    /// Events to generate (payments: before injected fraud patterns) [default: 1000000].
    #[arg(long)]
    pub events: Option<u64>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Events per second of event time (Nexmark default 10000; payments: events/3600, i.e. one
    /// hour of event time; other scenarios 1000).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Event time of the first event, epoch ms [default: 1436918400000 = 2015-07-15].
    #[arg(long)]
    pub base_time_ms: Option<i64>,

    /// Nexmark: variant to start from.
    #[arg(long, value_enum, default_value_t = NexmarkPreset::Default, help_heading = "Nexmark")]
    pub preset: NexmarkPreset,
    /// Nexmark: parallel generators P (parallel timelines at rate/P each).
    #[arg(long, help_heading = "Nexmark")]
    pub generators: Option<u32>,
    /// Nexmark: out-of-order group size G (1 = in order; Arroyo uses 50).
    #[arg(long, help_heading = "Nexmark")]
    pub out_of_order_group: Option<u64>,
    /// Nexmark: a bid goes to the hot auction with probability 1 - 1/ratio [default: 2].
    #[arg(long, help_heading = "Nexmark")]
    pub hot_auction_ratio: Option<u32>,
    /// Nexmark: a bid comes from the hot bidder with probability 1 - 1/ratio [default: 4].
    #[arg(long, help_heading = "Nexmark")]
    pub hot_bidders_ratio: Option<u32>,
    /// Nexmark: an auction's seller is the hot seller with probability 1 - 1/ratio [default: 4].
    #[arg(long, help_heading = "Nexmark")]
    pub hot_sellers_ratio: Option<u32>,
    /// Nexmark: window of live auction ids random bids choose from [default: 100].
    #[arg(long, help_heading = "Nexmark")]
    pub in_flight_auctions: Option<u64>,
    /// Nexmark: window of active person ids [default: 1000].
    #[arg(long, help_heading = "Nexmark")]
    pub active_people: Option<u64>,
    /// Nexmark: average person size in bytes [default: 200].
    #[arg(long, help_heading = "Nexmark")]
    pub avg_person_bytes: Option<u32>,
    /// Nexmark: average auction size in bytes [default: 500].
    #[arg(long, help_heading = "Nexmark")]
    pub avg_auction_bytes: Option<u32>,
    /// Nexmark: average bid size in bytes [default: 100].
    #[arg(long, help_heading = "Nexmark")]
    pub avg_bid_bytes: Option<u32>,
    /// Nexmark: case of Person.state (the preset's otherwise).
    #[arg(long, value_enum, help_heading = "Nexmark")]
    pub state_case: Option<CaseArg>,
    /// Nexmark: Flink's +2000 bidder-id offset on or off (the preset's otherwise).
    #[arg(long, help_heading = "Nexmark")]
    pub flink_bidder_offset: Option<bool>,
    /// Nexmark: event id of generator 0's first event (the preset's otherwise).
    #[arg(long, help_heading = "Nexmark")]
    pub first_event_id: Option<u64>,
    /// Nexmark: event number of every generator's first event (the preset's otherwise).
    #[arg(long, help_heading = "Nexmark")]
    pub first_event_number: Option<u64>,

    /// Scenarios: number of keys (payers, cells, users, streams, contests).
    #[arg(long, help_heading = "Scenarios")]
    pub keys: Option<u64>,
    /// Scenarios: Zipf exponent of key popularity (0 = uniform).
    #[arg(long, help_heading = "Scenarios")]
    pub skew: Option<f64>,
    /// Scenarios: largest delay of event time behind emission order, ms (out-of-orderness).
    #[arg(long, help_heading = "Scenarios")]
    pub max_delay_ms: Option<u64>,
    /// Payments: fraud patterns to inject, evenly spaced, cycling the three rules
    /// [default: 30; none if the stream is shorter than the longest pattern].
    #[arg(long, help_heading = "Scenarios")]
    pub fraud_patterns: Option<usize>,
}

impl DataArgs {
    /// Events to generate.
    pub fn events(&self) -> u64 {
        self.events.unwrap_or(DEFAULT_EVENTS)
    }

    /// The spec of generator `kind` with these knobs.
    pub fn spec(&self, kind: SourceKind) -> Result<SourceSpec, BenchError> {
        if self.events() == 0 {
            return Err(BenchError::usage(
                "--events",
                "is 0",
                "give the number of events to generate, at least 1",
            ));
        }
        let spec = match kind {
            SourceKind::Nexmark => SourceSpec::Nexmark(self.nexmark()),
            SourceKind::Payments => SourceSpec::Payments(self.payments()),
            SourceKind::Rides => SourceSpec::Rides(RidesConfig {
                scenario: self.scenario(RidesConfig::default().scenario),
                ..RidesConfig::default()
            }),
            SourceKind::Shop => SourceSpec::Shop(ShopConfig {
                scenario: self.scenario(ShopConfig::default().scenario),
                ..ShopConfig::default()
            }),
            SourceKind::Heartbeats => SourceSpec::Heartbeats(HeartbeatsConfig {
                scenario: self.scenario(HeartbeatsConfig::default().scenario),
                ..HeartbeatsConfig::default()
            }),
            SourceKind::Scores => SourceSpec::Scores(ScoresConfig {
                scenario: self.scenario(ScoresConfig::default().scenario),
                ..ScoresConfig::default()
            }),
        };
        spec.len()?; // validates the config
        Ok(spec)
    }

    fn nexmark(&self) -> NexmarkConfig {
        let mut c = match self.preset {
            NexmarkPreset::Default => NexmarkConfig::default(),
            NexmarkPreset::Flink => NexmarkConfig::flink(),
            NexmarkPreset::Risingwave => NexmarkConfig::risingwave(),
        };
        c.seed = self.seed;
        c.num_events = self.events();
        set(&mut c.event_rate, self.rate);
        set(&mut c.base_time_ms, self.base_time_ms);
        set(&mut c.num_generators, self.generators);
        set(&mut c.out_of_order_group_size, self.out_of_order_group);
        set(&mut c.hot_auction_ratio, self.hot_auction_ratio);
        set(&mut c.hot_bidders_ratio, self.hot_bidders_ratio);
        set(&mut c.hot_sellers_ratio, self.hot_sellers_ratio);
        set(&mut c.num_in_flight_auctions, self.in_flight_auctions);
        set(&mut c.num_active_people, self.active_people);
        set(&mut c.avg_person_bytes, self.avg_person_bytes);
        set(&mut c.avg_auction_bytes, self.avg_auction_bytes);
        set(&mut c.avg_bid_bytes, self.avg_bid_bytes);
        set(&mut c.flink_bidder_offset, self.flink_bidder_offset);
        set(&mut c.first_event_id, self.first_event_id);
        set(&mut c.first_event_number, self.first_event_number);
        if let Some(case) = self.state_case {
            c.state_case = match case {
                CaseArg::Upper => StateCase::Upper,
                CaseArg::Lower => StateCase::Lower,
            };
        }
        c
    }

    /// The shared scenario knobs over a scenario's own defaults.
    fn scenario(&self, mut s: ScenarioConfig) -> ScenarioConfig {
        s.seed = self.seed;
        s.count = self.events();
        set(&mut s.rate, self.rate);
        set(&mut s.base_time_ms, self.base_time_ms);
        set(&mut s.keys, self.keys);
        set(&mut s.skew, self.skew);
        set(&mut s.max_delay_ms, self.max_delay_ms);
        s
    }

    /// Payments: by default one hour of event time, with enough payers that normal traffic
    /// stays well under the velocity rule (4× headroom), and fraud patterns that fit.
    fn payments(&self) -> PaymentsConfig {
        let base = PaymentsConfig::default();
        let mut scenario = self.scenario(base.scenario.clone());
        if self.rate.is_none() {
            scenario.rate = (scenario.count / PAYMENTS_SPAN_S).max(1);
        }
        if self.keys.is_none() {
            let per_window = scenario.rate * VELOCITY_WINDOW_MS as u64 / 1000;
            let velocity_max = u64::from(base.rules.velocity_max);
            scenario.keys = scenario.keys.max(per_window * 4 / velocity_max + 1);
        }
        let longest = base.rules.span_ms.max(VELOCITY_WINDOW_MS);
        let fits = scenario.end_time() - scenario.base_time_ms > longest;
        let patterns = self.fraud_patterns.unwrap_or(DEFAULT_FRAUD_PATTERNS);
        let injections = if fits {
            Injection::evenly_spaced(patterns, &scenario, &base.rules)
        } else {
            Vec::new()
        };
        PaymentsConfig {
            scenario,
            injections,
            ..base
        }
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}
