//! `timers`: event-time timers that carry a key.
//!
//! [`Ctx::set_timer`] wakes the operator at a time; [`KeyedTimers`] remembers,
//! inside the operator's state, *which keys* are due then (expire a payer's
//! state, close a user's session). It registers each time with the host
//! through the context, and `pop_due` hands due `(time, key)` pairs back in
//! `(time, key)` order. Snapshotted with the operator; deterministic.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::limits::DEFAULT_MAX_KEYS;

/// Pending `(time, key)` timers, in time then key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord",
    deserialize = "K: Deserialize<'de> + Ord"
))]
pub struct KeyedTimers<K> {
    pending: BTreeSet<(i64, K)>,
    max_timers: usize,
}

impl<K: Ord + Clone> Default for KeyedTimers<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Clone> KeyedTimers<K> {
    /// No timers, bounded by [`DEFAULT_MAX_KEYS`].
    pub fn new() -> Self {
        Self::with_max_timers(DEFAULT_MAX_KEYS)
    }

    /// No timers; at most `max_timers` pending at once.
    pub fn with_max_timers(max_timers: usize) -> Self {
        KeyedTimers {
            pending: BTreeSet::new(),
            max_timers,
        }
    }

    /// Asks for `key` to be due once the watermark reaches `ts` (and for the
    /// host to call `on_timer`/`on_watermark` then). Returns false if that
    /// timer was already set.
    pub fn set(&mut self, ctx: &mut Ctx, ts: i64, key: K) -> Result<bool, Error> {
        if self.pending.len() >= self.max_timers {
            return Err(Error::Limit {
                limit: "KeyedTimers::max_timers",
                max: self.max_timers as u64,
                what: format!("a timer at {ts}"),
            });
        }
        ctx.set_timer(ts)?;
        Ok(self.pending.insert((ts, key)))
    }

    /// Cancels the timer of `key` at `ts`; returns whether it was pending.
    pub fn cancel(&mut self, ts: i64, key: &K) -> bool {
        // Removing needs an owned pair; keys are cheap to clone where timers are used.
        self.pending.remove(&(ts, key.clone()))
    }

    /// Removes and returns the earliest timer at or before `wm`. Call it in a
    /// loop from `on_watermark` (or `on_timer`).
    pub fn pop_due(&mut self, wm: i64) -> Option<(i64, K)> {
        match self.pending.first() {
            Some((ts, _)) if *ts <= wm => self.pending.pop_first(),
            _ => None,
        }
    }

    /// The earliest pending timer.
    pub fn next(&self) -> Option<&(i64, K)> {
        self.pending.first()
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_back_in_time_then_key_order_and_register_with_the_host() {
        let mut ctx = Ctx::new();
        let mut timers = KeyedTimers::<String>::new();
        for (ts, key) in [(20, "b"), (10, "z"), (20, "a"), (30, "c")] {
            assert!(timers.set(&mut ctx, ts, key.to_owned()).unwrap());
        }
        assert!(
            !timers.set(&mut ctx, 10, "z".to_owned()).unwrap(),
            "already set"
        );
        assert_eq!(ctx.next_timer(), Some(10));
        assert!(timers.cancel(30, &"c".to_owned()));
        let mut due = Vec::new();
        while let Some(timer) = timers.pop_due(25) {
            due.push(timer);
        }
        assert_eq!(
            due,
            vec![(10, "z".into()), (20, "a".into()), (20, "b".into())]
        );
        assert!(timers.is_empty());
    }

    #[test]
    fn the_bound_is_named_when_hit() {
        let mut ctx = Ctx::new();
        let mut timers = KeyedTimers::<u64>::with_max_timers(1);
        timers.set(&mut ctx, 1, 1).unwrap();
        let err = timers.set(&mut ctx, 2, 2).unwrap_err().to_string();
        assert!(err.contains("KeyedTimers::max_timers"), "{err}");
    }
}
