//! `window`: event-time windows driven by the engine's watermark.
//!
//! Three helpers keep per-(window, key) accumulators inside the operator struct
//! (so they are snapshotted with it):
//!
//! - [`TumblingWindows`]: fixed `size`, epoch-aligned, `[start, start + size)`.
//! - [`SlidingWindows`]: fixed `size` every `slide` (hopping), epoch-aligned.
//! - [`SessionWindows`]: per key, events closer than `gap` share a session
//!   `[first event, last event + gap)`.
//!
//! The contract, shared by all three:
//!
//! - `add` puts an event into every window it belongs to whose end plus the
//!   allowed lateness is still after the watermark; if there is none, the event
//!   is *late* and nothing changes. `add_record` also sends a late record
//!   unchanged to the `late` output and counts it in `late_events`.
//! - A window is due once the watermark reaches its end (`wm >= end`); `fire`
//!   passes due windows to a callback in `(end, start, key)` order, then forgets
//!   them — or, with allowed lateness, keeps them until `wm >= end + lateness`
//!   and fires again the entries late events changed.
//! - The helpers set a timer at each window's end, so the host calls
//!   `on_watermark` when a window is due; call `fire` there.
//! - All state is in ordered maps: iteration, output order and snapshot bytes
//!   are deterministic.

mod aligned;
mod session;

pub use aligned::{Sliding, SlidingWindows, Tumbling, TumblingWindows, WindowKeys, Windows};
pub use session::SessionWindows;

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize, Serializer};

use crate::ctx::Ctx;
use crate::error::Error;
use crate::record::Record;

/// A half-open event-time interval `[start, end)`, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond in the window.
    pub start: i64,
    /// First millisecond after the window.
    pub end: i64,
}

impl Window {
    /// Whether `ts` lies in `[start, end)`.
    pub fn contains(&self, ts: i64) -> bool {
        self.start <= ts && ts < self.end
    }

    /// The last millisecond in the window (`end - 1`): the event time the
    /// bundled plugins give a window's result record.
    pub fn max_timestamp(&self) -> i64 {
        self.end.saturating_sub(1)
    }
}

/// What `add` did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a late event is not in any window; send it to the `late` output (add_record does)"]
pub enum Admit {
    /// The event is in at least one open window.
    Added,
    /// Every window of the event is already closed; nothing changed.
    Late,
}

/// Combines two accumulators of sessions that an event joined into one.
pub trait Merge {
    /// Folds `other` (the later session) into `self`.
    fn merge(&mut self, other: Self);
}

macro_rules! merge_by_adding {
    ($($t:ty),*) => {$(
        /// Integers merge by adding: the natural choice for counts and sums.
        impl Merge for $t {
            fn merge(&mut self, other: Self) {
                *self = self.saturating_add(other);
            }
        }
    )*};
}
merge_by_adding!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl<T> Merge for Vec<T> {
    /// Vectors merge by appending.
    fn merge(&mut self, mut other: Self) {
        self.append(&mut other);
    }
}

/// What `add_record` does with the outcome of `add`: a late record goes
/// unchanged to the `late` output (counted in `late_events`). Returns whether
/// the record was added.
fn route_late(admit: Admit, rec: &Record<'_>, ctx: &mut Ctx) -> Result<bool, Error> {
    match admit {
        Admit::Added => Ok(true),
        Admit::Late => {
            ctx.late(rec)?;
            Ok(false)
        }
    }
}

/// Keys held in a hash map (one lookup per event, the hot path), written as a map in
/// key order, so a snapshot does not depend on how the map grew and reads back into
/// the same state: the bytes an ordered map would give.
fn in_key_order<K, V, S>(map: &HashMap<K, V, FxBuildHasher>, s: S) -> Result<S::Ok, S::Error>
where
    K: Serialize + Ord,
    V: Serialize,
    S: Serializer,
{
    s.collect_map(by_key(map))
}

/// The entries of a hash map in key order.
fn by_key<K: Ord, V>(map: &HashMap<K, V, FxBuildHasher>) -> Vec<(&K, &V)> {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}

/// The last window start at or before `ts` on a grid of `step` from the epoch.
fn align(ts: i64, step: i64) -> i64 {
    ts - ts.rem_euclid(step)
}

#[cfg(test)]
mod tests;
