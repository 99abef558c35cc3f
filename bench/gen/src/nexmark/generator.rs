//! One Nexmark generator: generator `index` of `P`, yielding its share of the stream in
//! emission order. Random-access: [`NexmarkGenerator::seek`] jumps to any position, and the
//! event at a position depends only on `(config, index, position)`.
//!
//! The hot path ([`NexmarkGenerator::next_record`]) fills a reused scratch event and encodes
//! it into a reused [`RecordBuf`] without allocating.

use std::sync::Arc;

use crate::GenError;
use crate::encode::{RecordBuf, decimal_str, write_decimal, write_ndjson_parts};
use crate::rng::Rng;

use super::config::{NexmarkConfig, Split};
use super::fields::{self, CITIES, FIRST_NAMES, HOT_CHANNELS, LAST_NAMES, Tables};
use super::model::{Auction, Bid, EventRef, NexmarkEvent, Person};
use super::msgpack;
use super::sequence::{self as seq, Kind};

/// Counter stream of the per-event draws (keyed by event id).
const STREAM_EVENT: u64 = 0x6576_656e; // "even"

/// Generator `index` of the `P = config.num_generators` parallel generators.
#[derive(Debug, Clone)]
pub struct NexmarkGenerator {
    config: NexmarkConfig,
    index: u32,
    split: Split,
    delay_us: f64,
    position: u64,
    tables: Arc<Tables>,
    scratch: Scratch,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    person: Person,
    auction: Auction,
    bid: Bid,
}

impl NexmarkGenerator {
    /// Generator `index` (of `config.num_generators`), positioned at its first event.
    pub fn new(config: NexmarkConfig, index: u32) -> Result<Self, GenError> {
        let tables = Arc::new(Tables::new(config.seed));
        Self::with_tables(config, index, tables)
    }

    /// All `P` generators of `config`, sharing one copy of the per-seed tables.
    pub fn all(config: NexmarkConfig) -> Result<Vec<Self>, GenError> {
        config.validate()?;
        let tables = Arc::new(Tables::new(config.seed));
        (0..config.num_generators)
            .map(|i| Self::with_tables(config.clone(), i, Arc::clone(&tables)))
            .collect()
    }

    fn with_tables(
        config: NexmarkConfig,
        index: u32,
        tables: Arc<Tables>,
    ) -> Result<Self, GenError> {
        config.validate()?;
        if index >= config.num_generators {
            return Err(GenError::config(
                "nexmark",
                "index",
                format!("is {index} but num_generators is {}", config.num_generators),
                "use an index in 0..num_generators",
            ));
        }
        Ok(NexmarkGenerator {
            split: config.split(index),
            delay_us: config.inter_event_delay_us(),
            config,
            index,
            position: 0,
            tables,
            scratch: Scratch::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// This generator's index in `0..P`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// This generator's share of the id space.
    pub fn split(&self) -> Split {
        self.split
    }

    /// Events this generator yields in total.
    pub fn len(&self) -> u64 {
        self.split.num_events
    }

    /// True if it yields no event.
    pub fn is_empty(&self) -> bool {
        self.split.num_events == 0
    }

    /// Events emitted so far (the position of the next one).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Moves to position `n` (clamped to the end); the next event is the `n`-th.
    pub fn seek(&mut self, n: u64) {
        self.position = n.min(self.split.num_events);
    }

    /// Event number of position `n`: `firstEventNumber + n`.
    pub fn event_number(&self, n: u64) -> u64 {
        self.config.first_event_number + n
    }

    /// Event number after the out-of-order shuffle.
    pub fn adjusted_event_number(&self, n: u64) -> u64 {
        seq::adjusted_event_number(self.event_number(n), self.config.out_of_order_group_size)
    }

    /// Event id of position `n`: `firstEventId(i) + adjusted`.
    pub fn event_id_at(&self, n: u64) -> u64 {
        self.split.first_event_id + self.adjusted_event_number(n)
    }

    /// Event time of position `n` (`ts(adjusted)`).
    pub fn timestamp_at(&self, n: u64) -> i64 {
        self.ts(self.adjusted_event_number(n))
    }

    /// A time no later event of this generator precedes: `ts(⌊number/G⌋·G)`.
    pub fn watermark_hint_at(&self, n: u64) -> i64 {
        let g = self.config.out_of_order_group_size;
        self.ts(self.event_number(n) / g * g)
    }

    /// Event-time offset from the base at which position `n` is due when rate-limited
    /// (`ts(number) − baseTime`); add the wall clock of the first emission.
    pub fn due_offset_ms(&self, n: u64) -> i64 {
        self.ts(self.event_number(n)) - self.config.base_time_ms
    }

    fn ts(&self, k: u64) -> i64 {
        seq::timestamp_for(self.config.base_time_ms, self.delay_us, k)
    }

    /// Generates the next event into the reused scratch and lends it with its event id.
    pub fn next_ref(&mut self) -> Option<(u64, EventRef<'_>)> {
        if self.position >= self.split.num_events {
            return None;
        }
        let n = self.position;
        self.position += 1;
        let id = self.event_id_at(n);
        let adjusted = self.adjusted_event_number(n);
        let ts = self.ts(adjusted);
        let mut rng = Rng::new(self.config.seed, STREAM_EVENT, id);
        let event = match seq::kind_of(id) {
            Kind::Person => {
                self.fill_person(id, ts, &mut rng);
                EventRef::Person(&self.scratch.person)
            }
            Kind::Auction => {
                let horizon = self
                    .ts(adjusted + seq::events_for_auctions(self.config.num_in_flight_auctions))
                    - ts;
                self.fill_auction(id, ts, horizon, &mut rng);
                EventRef::Auction(&self.scratch.auction)
            }
            Kind::Bid => {
                self.fill_bid(id, ts, &mut rng);
                EventRef::Bid(&self.scratch.bid)
            }
        };
        Some((id, event))
    }

    /// Encodes the next event as MessagePack into `rec`; false at the end of the stream.
    pub fn next_record(&mut self, rec: &mut RecordBuf) -> Result<bool, GenError> {
        let Some((id, event)) = self.next_ref() else {
            return Ok(false);
        };
        rec.key.clear();
        write_decimal(&mut rec.key, id);
        rec.timestamp = event.timestamp();
        rec.value.clear();
        msgpack::write_event(event, &mut rec.value)?;
        Ok(true)
    }

    /// Appends the next event as an NDJSON line to `out`; false at the end of the stream.
    pub fn next_ndjson(&mut self, out: &mut Vec<u8>) -> Result<bool, GenError> {
        let Some((id, event)) = self.next_ref() else {
            return Ok(false);
        };
        let mut digits = [0u8; 20];
        write_ndjson_parts(decimal_str(id, &mut digits), event.timestamp(), &event, out)?;
        Ok(true)
    }

    fn fill_person(&mut self, id: u64, ts: i64, rng: &mut Rng) {
        let p = &mut self.scratch.person;
        p.id = seq::FIRST_PERSON_ID + seq::last_person(id);
        p.name.clear();
        p.name
            .push_str(FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize]);
        p.name.push(' ');
        p.name
            .push_str(LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize]);
        p.email_address.clear();
        fields::next_string(rng, 7, b' ', &mut p.email_address);
        p.email_address.push('@');
        fields::next_string(rng, 5, b' ', &mut p.email_address);
        p.email_address.push_str(".com");
        p.credit_card.clear();
        fields::credit_card(rng, &mut p.credit_card);
        p.city.clear();
        p.city
            .push_str(CITIES[rng.below(CITIES.len() as u64) as usize]);
        let states = fields::states(self.config.state_case);
        p.state.clear();
        p.state
            .push_str(states[rng.below(states.len() as u64) as usize]);
        p.date_time = ts;
        let current = 8
            + p.name.len()
            + p.email_address.len()
            + p.credit_card.len()
            + p.city.len()
            + p.state.len();
        let len = fields::extra_len(rng, current as u64, u64::from(self.config.avg_person_bytes));
        p.extra.clear();
        self.tables.extra(rng, len, &mut p.extra);
    }

    fn fill_auction(&mut self, id: u64, ts: i64, horizon_ms: i64, rng: &mut Rng) {
        let cfg = &self.config;
        let a = &mut self.scratch.auction;
        a.id = seq::FIRST_AUCTION_ID + seq::last_auction(id).max(0) as u64;
        let seller = if rng.below(u64::from(cfg.hot_sellers_ratio)) > 0 {
            seq::hot_seller(id)
        } else {
            seq::random_person(id, cfg.num_active_people, rng)
        };
        a.seller = seller + seq::FIRST_PERSON_ID;
        a.category = seq::FIRST_CATEGORY_ID + rng.below(seq::NUM_CATEGORIES);
        a.initial_bid = fields::price(rng);
        a.date_time = ts;
        a.expires = ts + 1 + rng.below((horizon_ms * 2).max(1) as u64) as i64;
        a.item_name.clear();
        fields::next_string(rng, 20, b' ', &mut a.item_name);
        a.description.clear();
        fields::next_string(rng, 100, b' ', &mut a.description);
        a.reserve = a.initial_bid + fields::price(rng);
        let current = 8 + a.item_name.len() + a.description.len() + 40;
        let len = fields::extra_len(rng, current as u64, u64::from(cfg.avg_auction_bytes));
        a.extra.clear();
        self.tables.extra(rng, len, &mut a.extra);
    }

    fn fill_bid(&mut self, id: u64, ts: i64, rng: &mut Rng) {
        let cfg = &self.config;
        let b = &mut self.scratch.bid;
        let auction = if rng.below(u64::from(cfg.hot_auction_ratio)) > 0 {
            seq::hot_auction(id)
        } else {
            seq::random_auction(id, cfg.num_in_flight_auctions, rng)
        };
        b.auction = auction + seq::FIRST_AUCTION_ID;
        let bidder = if rng.below(u64::from(cfg.hot_bidders_ratio)) > 0 {
            seq::hot_bidder(id)
        } else {
            seq::random_person(id, cfg.num_active_people, rng)
        };
        let offset = if cfg.flink_bidder_offset { 2 } else { 1 } * seq::FIRST_PERSON_ID;
        b.bidder = bidder + offset;
        b.price = fields::price(rng);
        b.channel.clear();
        b.url.clear();
        if rng.below(fields::HOT_CHANNELS_RATIO) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            b.channel.push_str(HOT_CHANNELS[i]);
            b.url.push_str(&self.tables.hot_urls[i]);
        } else {
            let n = rng.below(fields::CHANNELS_NUMBER) as usize;
            let (channel, url) = self.tables.channel(n);
            b.channel.push_str(channel);
            b.url.push_str(url);
        }
        b.date_time = ts;
        let len = fields::extra_len(rng, 32, u64::from(cfg.avg_bid_bytes));
        b.extra.clear();
        self.tables.extra(rng, len, &mut b.extra);
    }
}

impl Iterator for NexmarkGenerator {
    type Item = NexmarkEvent;

    fn next(&mut self) -> Option<NexmarkEvent> {
        let (event_id, event) = self.next_ref()?;
        Some(NexmarkEvent {
            event_id,
            event: event.to_owned(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.split.num_events - self.position).min(usize::MAX as u64) as usize;
        (left, Some(left))
    }
}
