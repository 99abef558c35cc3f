//! The deterministic skeleton of a Nexmark stream (NEXMARK.md §1.4–§1.5): event numbers,
//! the out-of-order shuffle, event id → type, timestamps and id assignment. Plain integer
//! arithmetic; random draws come in through the `Rng` argument only.

use crate::rng::Rng;

/// Persons per block of [`TOTAL_PROPORTION`] events.
pub const PERSON_PROPORTION: u64 = 1;
/// Auctions per block.
pub const AUCTION_PROPORTION: u64 = 3;
/// Bids per block.
pub const BID_PROPORTION: u64 = 46;
/// Events per block.
pub const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;
/// Smallest person id.
pub const FIRST_PERSON_ID: u64 = 1000;
/// Smallest auction id.
pub const FIRST_AUCTION_ID: u64 = 1000;
/// Smallest category.
pub const FIRST_CATEGORY_ID: u64 = 10;
/// Number of categories.
pub const NUM_CATEGORIES: u64 = 5;
/// How many persons past the last one a random person may be.
pub const PERSON_ID_LEAD: u64 = 10;
/// How many auctions past the last one a random auction may be.
pub const AUCTION_ID_LEAD: u64 = 10;
/// Size of the id blocks whose first (seller, auction) or second (bidder) member is hot.
pub const HOT_BLOCK: u64 = 100;

/// Which of the three event types an event id carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Offset 0 of each block of 50.
    Person,
    /// Offsets 1–3.
    Auction,
    /// Offsets 4–49.
    Bid,
}

/// The out-of-order shuffle: `⌊n/G⌋·G + (n·953 mod G)`; the identity for `G = 1`.
#[inline]
pub fn adjusted_event_number(event_number: u64, group: u64) -> u64 {
    (event_number / group) * group + event_number.wrapping_mul(953) % group
}

/// Type of the event with id `event_id`.
#[inline]
pub fn kind_of(event_id: u64) -> Kind {
    let r = event_id % TOTAL_PROPORTION;
    if r < PERSON_PROPORTION {
        Kind::Person
    } else if r < PERSON_PROPORTION + AUCTION_PROPORTION {
        Kind::Auction
    } else {
        Kind::Bid
    }
}

/// `baseTime + trunc(k × delayUs) / 1000`: event time of event number `k`.
#[inline]
pub fn timestamp_for(base_time_ms: i64, delay_us: f64, k: u64) -> i64 {
    base_time_ms + ((k as f64 * delay_us) as i64) / 1000
}

/// Base-0 id of the last person created at or before `event_id`.
#[inline]
pub fn last_person(event_id: u64) -> u64 {
    let epoch = event_id / TOTAL_PROPORTION;
    let off = event_id % TOTAL_PROPORTION;
    // With the standard proportions (one person per block) this is always the block's person.
    let off = if off < PERSON_PROPORTION {
        off
    } else {
        PERSON_PROPORTION - 1
    };
    epoch * PERSON_PROPORTION + off
}

/// Base-0 id of the last auction created at or before `event_id`; −1 for the person that
/// opens block 0 (no auction exists yet).
#[inline]
pub fn last_auction(event_id: u64) -> i64 {
    let epoch = (event_id / TOTAL_PROPORTION) as i64;
    let off = event_id % TOTAL_PROPORTION;
    let a = AUCTION_PROPORTION as i64;
    if off < PERSON_PROPORTION {
        (epoch - 1) * a + (a - 1)
    } else if off >= PERSON_PROPORTION + AUCTION_PROPORTION {
        epoch * a + (a - 1)
    } else {
        epoch * a + (off - PERSON_PROPORTION) as i64
    }
}

/// A random base-0 person among the `active` most recent, up to [`PERSON_ID_LEAD`] ahead.
#[inline]
pub fn random_person(event_id: u64, active_people: u64, rng: &mut Rng) -> u64 {
    let num_people = last_person(event_id) + 1;
    let active = num_people.min(active_people);
    num_people - active + rng.below(active + PERSON_ID_LEAD)
}

/// A random base-0 auction among the `in_flight` most recent, up to [`AUCTION_ID_LEAD`]
/// ahead. Only called for auctions and bids, where an auction exists.
#[inline]
pub fn random_auction(event_id: u64, in_flight: u64, rng: &mut Rng) -> u64 {
    let hi = last_auction(event_id).max(0) as u64;
    let lo = hi.saturating_sub(in_flight);
    lo + rng.below(hi - lo + 1 + AUCTION_ID_LEAD)
}

/// The hot seller of the current person block (its first person), base 0.
#[inline]
pub fn hot_seller(event_id: u64) -> u64 {
    last_person(event_id) / HOT_BLOCK * HOT_BLOCK
}

/// The hot bidder of the current person block (its second person), base 0.
#[inline]
pub fn hot_bidder(event_id: u64) -> u64 {
    hot_seller(event_id) + 1
}

/// The hot auction of the current auction block (its first auction), base 0.
#[inline]
pub fn hot_auction(event_id: u64) -> u64 {
    last_auction(event_id).max(0) as u64 / HOT_BLOCK * HOT_BLOCK
}

/// Events until `num_in_flight_auctions` more auctions exist: `⌊in_flight × 50 / 3⌋`.
#[inline]
pub fn events_for_auctions(in_flight: u64) -> u64 {
    in_flight * TOTAL_PROPORTION / AUCTION_PROPORTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_fifty_hold_one_person_three_auctions_then_bids() {
        assert_eq!(kind_of(0), Kind::Person);
        assert_eq!(kind_of(1), Kind::Auction);
        assert_eq!(kind_of(3), Kind::Auction);
        assert_eq!(kind_of(4), Kind::Bid);
        assert_eq!(kind_of(49), Kind::Bid);
        assert_eq!(kind_of(50), Kind::Person);
        assert_eq!(kind_of(102), Kind::Auction);
    }

    #[test]
    fn out_of_order_groups_permute_within_the_group() {
        assert_eq!(adjusted_event_number(12345, 1), 12345);
        // G = 50: 953 mod 50 = 3, so offsets go 0, 3, 6, ... within each group of 50.
        assert_eq!(adjusted_event_number(0, 50), 0);
        assert_eq!(adjusted_event_number(1, 50), 3);
        assert_eq!(adjusted_event_number(17, 50), 1); // 17·953 = 16201 ≡ 1
        assert_eq!(adjusted_event_number(51, 50), 53);
        let mut group: Vec<u64> = (100..150).map(|n| adjusted_event_number(n, 50)).collect();
        group.sort_unstable();
        assert_eq!(group, (100..150).collect::<Vec<_>>());
    }

    #[test]
    fn last_ids_follow_the_block_layout() {
        // Block 2 = events 100..150: person 2 at 100, auctions 6, 7, 8 at 101..103.
        assert_eq!(last_person(100), 2);
        assert_eq!(last_person(149), 2);
        assert_eq!(last_auction(100), 5);
        assert_eq!(last_auction(101), 6);
        assert_eq!(last_auction(103), 8);
        assert_eq!(last_auction(104), 8);
        assert_eq!(last_auction(0), -1);
        // Hot ids change every 100 persons (5,000 events) and 100 auctions (~1,667 events).
        assert_eq!(hot_seller(4_999), 0); // last person 99
        assert_eq!(hot_seller(5_000), 100); // person 100 opens the next hot block
        assert_eq!(hot_bidder(5_000), 101);
        assert_eq!(hot_auction(1_650), 0); // last auction 98
        assert_eq!(hot_auction(1_651), 0); // auction 99 opens
        assert_eq!(hot_auction(1_652), 100); // auction 100 opens the next hot block
        assert_eq!(hot_auction(1_704), 100); // block 34: auctions 102..104
    }

    #[test]
    fn timestamps_truncate_the_product_then_divide() {
        // 3 generators at 10,000 ev/s: delay 300 µs.
        assert_eq!(timestamp_for(1000, 300.0, 3), 1000);
        assert_eq!(timestamp_for(1000, 300.0, 4), 1001);
        assert_eq!(timestamp_for(1000, 300.0, 10), 1003);
        // 1e6/7 µs = 142857.142.. µs: trunc(3 × 142857.142..) = 428571 → 428 ms.
        assert_eq!(timestamp_for(0, 1_000_000.0 / 7.0, 3), 428);
    }
}
