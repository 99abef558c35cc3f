//! Session windows: per key, events less than `gap` apart share a session
//! `[first event, last event + gap)`; an event that bridges two sessions merges
//! them (their accumulators through [`Merge`]).
//!
//! State is `key → sessions` (sorted by start, never overlapping; keys in a hash
//! map, written in key order in snapshots) plus a lazy
//! index of `(check time, key)`: a session's end only grows, so an index entry
//! made when the session was created stays at or before its end, and `fire`
//! re-queues sessions that turn out to have grown. Invariants: every session
//! has an index entry at or before its next event (end, or end + lateness once
//! fired); `entries` equals the number of sessions held.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::{Admit, Merge, Window, route_late};
use crate::ctx::Ctx;
use crate::error::Error;
use crate::limits::DEFAULT_MAX_KEYS;
use crate::record::Record;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session<A> {
    start: i64,
    end: i64,
    acc: A,
    fired: bool,
    changed: bool,
}

/// Per-key session windows with a fixed inactivity gap; see the
/// [module docs](crate::window) for the contract.
///
/// Two events of a key are in one session when they are less than `gap` apart
/// (an event exactly `gap` after the last one starts a new session).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord, A: Serialize",
    deserialize = "K: Deserialize<'de> + Ord + Hash, A: Deserialize<'de>"
))]
pub struct SessionWindows<K, A> {
    gap: i64,
    lateness: i64,
    max_entries: usize,
    entries: usize,
    #[serde(serialize_with = "super::in_key_order")]
    sessions: HashMap<K, Vec<Session<A>>, FxBuildHasher>,
    checks: BTreeSet<(i64, K)>,
}

impl<K: Ord + Hash, A: PartialEq> PartialEq for SessionWindows<K, A> {
    fn eq(&self, other: &Self) -> bool {
        self.gap == other.gap
            && self.lateness == other.lateness
            && self.max_entries == other.max_entries
            && self.entries == other.entries
            && self.sessions == other.sessions
            && self.checks == other.checks
    }
}

impl<K: Ord + Hash + Clone, A: Merge + Default> SessionWindows<K, A> {
    /// Sessions closed by `gap_ms` of inactivity.
    ///
    /// # Panics
    /// If `gap_ms` is not positive (a programming error).
    pub fn new(gap_ms: i64) -> Self {
        assert!(gap_ms > 0, "session gap must be positive, got {gap_ms}");
        SessionWindows {
            gap: gap_ms,
            lateness: 0,
            max_entries: DEFAULT_MAX_KEYS,
            entries: 0,
            sessions: HashMap::default(),
            checks: BTreeSet::new(),
        }
    }

    /// Keeps sessions `lateness_ms` after their end for late events, which
    /// update (or merge) them and make them fire again.
    pub fn with_allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.lateness = lateness_ms.max(0);
        self
    }

    /// Bounds the number of sessions held at once; one more fails with
    /// [`Error::Limit`].
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Adds an event at `ts` for `key` to its session (creating or merging
    /// sessions as needed) and runs `update` on the session's accumulator.
    /// Returns [`Admit::Late`] if the resulting session is already closed.
    pub fn add<Q>(
        &mut self,
        ctx: &mut Ctx,
        ts: i64,
        key: &Q,
        update: impl FnOnce(&mut A),
    ) -> Result<Admit, Error>
    where
        K: Borrow<Q>,
        Q: Ord + Hash + ToOwned<Owned = K> + ?Sized,
    {
        let wm = ctx.watermark();
        let (start, end) = (ts, ts.saturating_add(self.gap));
        let overlaps = |s: &Session<A>| s.start < end && start < s.end;
        let list = self.sessions.get_mut(key);
        let first = list.as_ref().and_then(|l| l.iter().position(overlaps));
        let (Some(list), Some(first)) = (list, first) else {
            // A new session.
            if end.saturating_add(self.lateness) <= wm {
                return Ok(Admit::Late);
            }
            if self.entries >= self.max_entries {
                return Err(Error::Limit {
                    limit: "SessionWindows::max_entries",
                    max: self.max_entries as u64,
                    what: format!("a new session starting at {ts}"),
                });
            }
            ctx.set_timer(end)?;
            let mut acc = A::default();
            update(&mut acc);
            let session = Session {
                start,
                end,
                acc,
                fired: false,
                changed: true,
            };
            let list = match self.sessions.get_mut(key) {
                Some(list) => list,
                None => self.sessions.entry(key.to_owned()).or_default(),
            };
            let at = list.partition_point(|s| s.start < start);
            list.insert(at, session);
            self.entries += 1;
            self.checks.insert((end, key.to_owned()));
            return Ok(Admit::Added);
        };
        let last = list.iter().rposition(overlaps).unwrap_or(first);
        let merged_end = list[first..=last]
            .iter()
            .map(|s| s.end)
            .max()
            .unwrap_or(end)
            .max(end);
        if merged_end.saturating_add(self.lateness) <= wm {
            return Ok(Admit::Late);
        }
        // Sessions never overlap each other, so the overlapping ones are
        // consecutive: fold first+1..=last into first. Usually there is just
        // one (the event extends its session), and nothing to fold.
        if last > first {
            let absorbed: Vec<Session<A>> = list.drain(first + 1..=last).collect();
            self.entries -= absorbed.len();
            let session = &mut list[first];
            for other in absorbed {
                session.acc.merge(other.acc);
                session.fired |= other.fired;
            }
        }
        let session = &mut list[first];
        session.start = session.start.min(start);
        session.end = merged_end;
        update(&mut session.acc);
        session.changed = true;
        if session.fired {
            // Fire the updated session again at the next watermark.
            ctx.set_timer(wm.saturating_add(1))?;
            self.checks.insert((wm.saturating_add(1), key.to_owned()));
        }
        Ok(Admit::Added)
    }

    /// [`SessionWindows::add`] for an input record at its own timestamp; a late
    /// record goes unchanged to the `late` output and counts in `late_events`.
    /// Returns whether the record was added.
    pub fn add_record<Q>(
        &mut self,
        rec: &Record<'_>,
        ctx: &mut Ctx,
        key: &Q,
        update: impl FnOnce(&mut A),
    ) -> Result<bool, Error>
    where
        K: Borrow<Q>,
        Q: Ord + Hash + ToOwned<Owned = K> + ?Sized,
    {
        let admit = self.add(ctx, rec.timestamp(), key, update)?;
        route_late(admit, rec, ctx)
    }

    /// Passes every due session (`end <= ctx.watermark()`) to `emit` in
    /// `(end, start, key)` order, then closes them (or keeps them for the
    /// allowed lateness). If `emit` fails, nothing changes. Call it from
    /// [`crate::Operator::on_watermark`].
    pub fn fire(
        &mut self,
        ctx: &mut Ctx,
        mut emit: impl FnMut(&mut Ctx, &K, Window, &A) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let wm = ctx.watermark();
        let mut popped = Vec::new();
        while let Some((at, _)) = self.checks.first() {
            if *at > wm {
                break;
            }
            popped.extend(self.checks.pop_first());
        }
        let mut keys: Vec<&K> = popped.iter().map(|(_, k)| k).collect();
        keys.sort();
        keys.dedup();

        let mut due: Vec<(i64, i64, &K, &A)> = Vec::new();
        for &key in &keys {
            for s in self.sessions.get(key).into_iter().flatten() {
                if s.end <= wm && (!s.fired || s.changed) {
                    due.push((s.end, s.start, key, &s.acc));
                }
            }
        }
        due.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        for &(end, start, key, acc) in &due {
            if let Err(err) = emit(ctx, key, Window { start, end }, acc) {
                self.checks.extend(popped);
                return Err(err);
            }
        }
        drop(due);

        let lateness = self.lateness;
        let mut requeue = Vec::new();
        for key in keys {
            let Some(list) = self.sessions.get_mut(key) else {
                continue;
            };
            let before = list.len();
            list.retain_mut(|s| {
                if s.end <= wm {
                    s.fired = true;
                    s.changed = false;
                }
                s.end.saturating_add(lateness) > wm
            });
            self.entries -= before - list.len();
            for s in list.iter() {
                requeue.push(if s.fired {
                    s.end.saturating_add(lateness)
                } else {
                    s.end
                });
            }
            if list.is_empty() {
                self.sessions.remove(key);
            } else {
                for &at in &requeue {
                    self.checks.insert((at, key.clone()));
                }
            }
            requeue.clear();
        }
        // Sessions that grew since their index entry need a timer at their
        // new check time; the earliest one is enough, its firing sets the next.
        match self.checks.first() {
            Some(&(at, _)) => ctx.set_timer(at),
            None => Ok(()),
        }
    }
}
