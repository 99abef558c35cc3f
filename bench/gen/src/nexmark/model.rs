//! The Nexmark event types exactly as docs/events.md names them: snake_case fields, and on
//! the `nexmark` topic each event externally tagged (`{"person": {...}}`).
//!
//! [`NexmarkEvent`] pairs an event with its event id, which is the record key (decimal
//! ASCII) but not a field of the value. [`EventRef`] is the borrowed form the generator lends
//! out of its reused scratch so the hot path does not allocate.

use serde::{Deserialize, Serialize};

use crate::encode::{EventRecord, write_decimal};

/// A new person registering.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Person {
    /// Person id, at least 1000, dense in event order.
    pub id: u64,
    /// "First Last".
    pub name: String,
    /// `local@domain.com`.
    pub email_address: String,
    /// Four space-separated 4-digit groups.
    pub credit_card: String,
    /// One of 10 US cities.
    pub city: String,
    /// One of 6 two-letter US states (upper or lower case, see the config).
    pub state: String,
    /// Event time, epoch ms.
    pub date_time: i64,
    /// Padding towards the average person size.
    pub extra: String,
}

/// A new auction opening.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Auction {
    /// Auction id, at least 1000, dense in event order.
    pub id: u64,
    /// Short random name.
    pub item_name: String,
    /// Longer random text.
    pub description: String,
    /// Opening price in cents.
    pub initial_bid: u64,
    /// `initial_bid` plus another random price.
    pub reserve: u64,
    /// Event time (the auction opens), epoch ms.
    pub date_time: i64,
    /// When the auction closes, epoch ms (after `date_time`).
    pub expires: i64,
    /// Person id of the seller.
    pub seller: u64,
    /// 10..=14.
    pub category: u64,
    /// Padding towards the average auction size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Bid {
    /// Auction id.
    pub auction: u64,
    /// Person id of the bidder.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// "Google", "Facebook", "Baidu", "Apple" or "channel-N".
    pub channel: String,
    /// `https://www.nexmark.com/a/b/c/item.htm?query=1[&channel_id=K]`.
    pub url: String,
    /// Event time, epoch ms.
    pub date_time: i64,
    /// Padding towards the average bid size.
    pub extra: String,
}

/// One event of the `nexmark` topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A person.
    Person(Person),
    /// An auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event time (`date_time`), epoch ms.
    pub fn timestamp(&self) -> i64 {
        self.as_ref().timestamp()
    }

    /// Borrowed view.
    pub fn as_ref(&self) -> EventRef<'_> {
        match self {
            Event::Person(p) => EventRef::Person(p),
            Event::Auction(a) => EventRef::Auction(a),
            Event::Bid(b) => EventRef::Bid(b),
        }
    }
}

/// A borrowed event; serialises exactly like [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventRef<'a> {
    /// A person.
    Person(&'a Person),
    /// An auction.
    Auction(&'a Auction),
    /// A bid.
    Bid(&'a Bid),
}

impl EventRef<'_> {
    /// The event time (`date_time`), epoch ms.
    pub fn timestamp(&self) -> i64 {
        match self {
            EventRef::Person(p) => p.date_time,
            EventRef::Auction(a) => a.date_time,
            EventRef::Bid(b) => b.date_time,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Event {
        match *self {
            EventRef::Person(p) => Event::Person(p.clone()),
            EventRef::Auction(a) => Event::Auction(a.clone()),
            EventRef::Bid(b) => Event::Bid(b.clone()),
        }
    }
}

/// An event with its event id; the id is the record key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NexmarkEvent {
    /// Event id (unique over all generators of one config).
    pub event_id: u64,
    /// The event.
    pub event: Event,
}

impl Serialize for NexmarkEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.event.serialize(s)
    }
}

impl EventRecord for NexmarkEvent {
    fn write_key(&self, out: &mut Vec<u8>) {
        write_decimal(out, self.event_id);
    }

    fn timestamp(&self) -> i64 {
        self.event.timestamp()
    }
}
