//! `board`: a group's standings — every entry's score and rank — and the
//! ranking both modes share.
//!
//! Ranks are ordinal: entries sorted by score, highest first, ties broken by
//! key (ascending), rank = position (1 = best). That is exactly the order of
//! a view queried with `sort=<score field>` over one group's rows, so a rank
//! here and `rank_of` there agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Total score.
    pub score: i64,
    /// Rank when last reported (0: never reported).
    pub rank: u64,
}

/// Entries sorted best first: `(key, score)`.
pub fn ranked<'a>(entries: impl Iterator<Item = (&'a String, i64)>) -> Vec<(&'a String, i64)> {
    let mut all: Vec<(&String, i64)> = entries.collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all
}

/// A group's running standings.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Board {
    entries: BTreeMap<String, Standing>,
}

/// An entry whose score or rank changed when a window was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The entry.
    pub key: String,
    /// Its total score.
    pub score: i64,
    /// Its new rank.
    pub rank: u64,
}

impl Board {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the board has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` has an entry.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Adds a window's score deltas, re-ranks, and returns the entries whose
    /// score or rank changed (new entries included), best first.
    pub fn apply(&mut self, deltas: &BTreeMap<String, i64>) -> Vec<Change> {
        let mut touched = Vec::with_capacity(deltas.len());
        for (key, delta) in deltas {
            let standing = self
                .entries
                .entry(key.clone())
                .or_insert(Standing { score: 0, rank: 0 });
            let before = standing.score;
            standing.score = standing.score.saturating_add(*delta);
            if standing.score != before || standing.rank == 0 {
                touched.push(key.as_str());
            }
        }
        touched.sort_unstable();
        let order: Vec<(String, i64)> = ranked(self.entries.iter().map(|(k, s)| (k, s.score)))
            .into_iter()
            .map(|(k, s)| (k.clone(), s))
            .collect();
        let mut changes = Vec::new();
        for (i, (key, score)) in order.into_iter().enumerate() {
            let rank = i as u64 + 1;
            let Some(standing) = self.entries.get_mut(&key) else {
                continue;
            };
            if standing.rank != rank || touched.binary_search(&key.as_str()).is_ok() {
                standing.rank = rank;
                changes.push(Change { key, score, rank });
            }
        }
        changes
    }

    /// The best `n` entries: `(key, score)`, best first.
    pub fn top(&self, n: usize) -> Vec<(&String, i64)> {
        let mut all = ranked(self.entries.iter().map(|(k, s)| (k, s.score)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deltas(d: &[(&str, i64)]) -> BTreeMap<String, i64> {
        d.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn keys(changes: &[Change]) -> Vec<(&str, i64, u64)> {
        changes
            .iter()
            .map(|c| (c.key.as_str(), c.score, c.rank))
            .collect()
    }

    #[test]
    fn ranks_are_ordinal_with_ties_broken_by_key_and_only_changes_are_reported() {
        let mut b = Board::default();
        let c = b.apply(&deltas(&[("bo", 5), ("al", 5), ("cy", 9)]));
        assert_eq!(keys(&c), [("cy", 9, 1), ("al", 5, 2), ("bo", 5, 3)]);
        // bo overtakes cy; al's rank moves without a score change; a zero
        // delta for cy changes nothing of cy's but its rank.
        let c = b.apply(&deltas(&[("bo", 5), ("cy", 0)]));
        assert_eq!(keys(&c), [("bo", 10, 1), ("cy", 9, 2), ("al", 5, 3)]);
        let c = b.apply(&deltas(&[("al", 0)]));
        assert!(c.is_empty());
        assert_eq!(b.top(2), [(&"bo".to_string(), 10), (&"cy".to_string(), 9)]);
    }
}
