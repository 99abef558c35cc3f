//! Tumbling and sliding windows: fixed-size, epoch-aligned windows that differ
//! only in how an event time maps to window starts ([`Tumbling`], [`Sliding`]).
//!
//! State is `(end, start) → key → accumulator`: windows in an ordered map, the
//! keys of a window in a hash map (one lookup per event and window, the hot
//! path), sorted when the window fires, so `fire` walks due windows in
//! `(end, start, key)` order and snapshots list keys in order. Invariant:
//! `entries` equals the number of (window, key) accumulators held.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::{Admit, Window, align, route_late};
use crate::ctx::Ctx;
use crate::error::Error;
use crate::limits::DEFAULT_MAX_KEYS;
use crate::record::Record;

/// Window assignment of tumbling windows: one window of `size` per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tumbling {
    size: i64,
}

/// Window assignment of sliding (hopping) windows: windows of `size` starting
/// every `slide`, so an event is in about `size / slide` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sliding {
    size: i64,
    slide: i64,
}

/// How an event time maps to window starts.
pub trait Assign {
    /// The window size in milliseconds.
    fn size(&self) -> i64;
    /// The distance between consecutive window starts.
    fn step(&self) -> i64;
}

impl Assign for Tumbling {
    fn size(&self) -> i64 {
        self.size
    }
    fn step(&self) -> i64 {
        self.size
    }
}

impl Assign for Sliding {
    fn size(&self) -> i64 {
        self.size
    }
    fn step(&self) -> i64 {
        self.slide
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry<A> {
    acc: A,
    /// Changed since the window last fired (only matters with allowed lateness).
    changed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord, A: Serialize",
    deserialize = "K: Deserialize<'de> + Ord + Hash, A: Deserialize<'de>"
))]
struct Slot<K, A> {
    fired: bool,
    #[serde(serialize_with = "super::in_key_order")]
    keys: HashMap<K, Entry<A>, FxBuildHasher>,
}

impl<K: Eq + Hash, A: PartialEq> PartialEq for Slot<K, A> {
    fn eq(&self, other: &Self) -> bool {
        self.fired == other.fired && self.keys == other.keys
    }
}

impl<K: Ord, A> Slot<K, A> {
    fn new() -> Self {
        Slot {
            fired: false,
            keys: HashMap::default(),
        }
    }

    /// The keys and entries in key order.
    fn sorted(&self) -> Vec<(&K, &Entry<A>)> {
        super::by_key(&self.keys)
    }
}

/// Per-(window, key) accumulators of fixed-size windows; see the
/// [module docs](crate::window) for the contract. Use the aliases
/// [`TumblingWindows`] and [`SlidingWindows`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord, A: Serialize, S: Serialize",
    deserialize = "K: Deserialize<'de> + Ord + Hash, A: Deserialize<'de>, S: Deserialize<'de>"
))]
pub struct Windows<K, A, S> {
    assign: S,
    lateness: i64,
    max_entries: usize,
    entries: usize,
    /// `(end, start)` → key → accumulator.
    windows: BTreeMap<(i64, i64), Slot<K, A>>,
}

impl<K: Eq + Hash, A: PartialEq, S: PartialEq> PartialEq for Windows<K, A, S> {
    fn eq(&self, other: &Self) -> bool {
        self.assign == other.assign
            && self.lateness == other.lateness
            && self.max_entries == other.max_entries
            && self.entries == other.entries
            && self.windows == other.windows
    }
}

/// Tumbling windows of a fixed size: `TumblingWindows::<Key, Acc>::new(10_000)`.
pub type TumblingWindows<K, A> = Windows<K, A, Tumbling>;
/// Sliding windows: `SlidingWindows::<Key, Acc>::new(10_000, 2_000)`.
pub type SlidingWindows<K, A> = Windows<K, A, Sliding>;

impl<K: Ord + Hash, A> Windows<K, A, Tumbling> {
    /// Tumbling windows `[n·size, (n+1)·size)`.
    ///
    /// # Panics
    /// If `size_ms` is not positive (a programming error, not an input error).
    pub fn new(size_ms: i64) -> Self {
        assert!(size_ms > 0, "window size must be positive, got {size_ms}");
        Self::with_assign(Tumbling { size: size_ms })
    }
}

impl<K: Ord + Hash, A> Windows<K, A, Sliding> {
    /// Windows of `size_ms` starting every `slide_ms`: `[n·slide, n·slide + size)`.
    ///
    /// # Panics
    /// Unless `0 < slide_ms <= size_ms` (every event time is in some window).
    pub fn new(size_ms: i64, slide_ms: i64) -> Self {
        assert!(
            0 < slide_ms && slide_ms <= size_ms,
            "sliding windows need 0 < slide <= size, got size {size_ms} and slide {slide_ms}"
        );
        Self::with_assign(Sliding {
            size: size_ms,
            slide: slide_ms,
        })
    }
}

impl<K: Ord + Hash, A, S: Assign> Windows<K, A, S> {
    fn with_assign(assign: S) -> Self {
        Windows {
            assign,
            lateness: 0,
            max_entries: DEFAULT_MAX_KEYS,
            entries: 0,
            windows: BTreeMap::new(),
        }
    }

    /// Keeps windows open `lateness_ms` after their end: late events within it
    /// update the window and it fires again with the changed entries.
    pub fn with_allowed_lateness(mut self, lateness_ms: i64) -> Self {
        self.lateness = lateness_ms.max(0);
        self
    }

    /// Bounds the number of (window, key) accumulators held at once; adding
    /// one more fails with [`Error::Limit`].
    pub fn with_max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Number of (window, key) accumulators held.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether no window holds anything.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The windows an event at `ts` belongs to, latest first.
    pub fn windows_of(&self, ts: i64) -> impl Iterator<Item = Window> + use<K, A, S> {
        let (size, step) = (self.assign.size(), self.assign.step());
        let last = align(ts, step);
        (0..)
            .map(move |n: i64| last.saturating_sub(n.saturating_mul(step)))
            .take_while(move |start| start.saturating_add(size) > ts)
            .map(move |start| Window {
                start,
                end: start.saturating_add(size),
            })
    }

    /// Adds an event at `ts` for `key`: `update` runs on the accumulator of
    /// each open window the event belongs to (starting from `A::default()`).
    /// Returns [`Admit::Late`] when all of them are closed.
    pub fn add<Q>(
        &mut self,
        ctx: &mut Ctx,
        ts: i64,
        key: &Q,
        mut update: impl FnMut(&mut A),
    ) -> Result<Admit, Error>
    where
        K: Borrow<Q>,
        Q: Ord + Hash + ToOwned<Owned = K> + ?Sized,
        A: Default,
    {
        let wm = ctx.watermark();
        let mut admit = Admit::Late;
        for window in self.windows_of(ts) {
            if window.end.saturating_add(self.lateness) <= wm {
                continue;
            }
            let slot = match self.windows.get_mut(&(window.end, window.start)) {
                Some(slot) => slot,
                None => {
                    ctx.set_timer(window.end)?;
                    if self.lateness > 0 {
                        ctx.set_timer(window.end.saturating_add(self.lateness))?;
                    }
                    self.windows
                        .entry((window.end, window.start))
                        .or_insert_with(Slot::new)
                }
            };
            let entry = match slot.keys.get_mut(key) {
                Some(entry) => entry,
                None => {
                    if self.entries >= self.max_entries {
                        return Err(Error::Limit {
                            limit: "Windows::max_entries",
                            max: self.max_entries as u64,
                            what: format!("a new key in window [{}, {})", window.start, window.end),
                        });
                    }
                    self.entries += 1;
                    slot.keys.entry(key.to_owned()).or_insert(Entry {
                        acc: A::default(),
                        changed: false,
                    })
                }
            };
            update(&mut entry.acc);
            entry.changed = true;
            if slot.fired {
                // A late update of a window that already fired: fire it again
                // at the next watermark.
                ctx.set_timer(wm.saturating_add(1))?;
            }
            admit = Admit::Added;
        }
        Ok(admit)
    }

    /// [`Windows::add`] for an input record at its own timestamp; a late record
    /// goes unchanged to the `late` output and counts in `late_events`. Returns
    /// whether the record was added.
    pub fn add_record<Q>(
        &mut self,
        rec: &Record<'_>,
        ctx: &mut Ctx,
        key: &Q,
        update: impl FnMut(&mut A),
    ) -> Result<bool, Error>
    where
        K: Borrow<Q>,
        Q: Ord + Hash + ToOwned<Owned = K> + ?Sized,
        A: Default,
    {
        let admit = self.add(ctx, rec.timestamp(), key, update)?;
        route_late(admit, rec, ctx)
    }

    /// Passes every due (window, key) accumulator — windows whose end is at or
    /// before `ctx.watermark()` — to `emit`, in `(end, start, key)` order, then
    /// closes those windows. If `emit` fails, nothing is closed, so the next
    /// call fires the same windows again. Call it from
    /// [`crate::Operator::on_watermark`].
    pub fn fire(
        &mut self,
        ctx: &mut Ctx,
        mut emit: impl FnMut(&mut Ctx, &K, Window, &A) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.fire_windows(ctx, |ctx, window, keys| {
            for (key, acc) in keys.changed() {
                emit(ctx, key, window, acc)?;
            }
            Ok(())
        })
    }

    /// Like [`Windows::fire`], one call per due window with all its keys — for
    /// results that compare keys within a window (top-k, the maximum).
    pub fn fire_windows(
        &mut self,
        ctx: &mut Ctx,
        mut emit: impl FnMut(&mut Ctx, Window, WindowKeys<'_, K, A>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let wm = ctx.watermark();
        for (&(end, start), slot) in self.windows.range(..=(wm, i64::MAX)) {
            if slot.fired && !slot.keys.values().any(|e| e.changed) {
                continue;
            }
            let keys = WindowKeys {
                slot,
                sorted: slot.sorted(),
            };
            emit(ctx, Window { start, end }, keys)?;
        }
        let lateness = self.lateness;
        let mut closed = Vec::new();
        for (&(end, start), slot) in self.windows.range_mut(..=(wm, i64::MAX)) {
            if end.saturating_add(lateness) <= wm {
                closed.push((end, start));
            } else {
                slot.fired = true;
                slot.keys.values_mut().for_each(|e| e.changed = false);
            }
        }
        for window in closed {
            if let Some(slot) = self.windows.remove(&window) {
                self.entries -= slot.keys.len();
            }
        }
        Ok(())
    }

    /// The accumulator of `key` in `window`, if any.
    pub fn get<Q>(&self, window: Window, key: &Q) -> Option<&A>
    where
        K: Borrow<Q>,
        Q: Ord + Hash + ?Sized,
    {
        let slot = self.windows.get(&(window.end, window.start))?;
        slot.keys.get(key).map(|e| &e.acc)
    }
}

/// The keys of one due window, in key order (see [`Windows::fire_windows`]).
pub struct WindowKeys<'a, K, A> {
    slot: &'a Slot<K, A>,
    sorted: Vec<(&'a K, &'a Entry<A>)>,
}

impl<'a, K: Ord + Hash, A> WindowKeys<'a, K, A> {
    /// Every key of the window and its accumulator, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a K, &'a A)> + '_ {
        self.sorted.iter().map(|&(k, e)| (k, &e.acc))
    }

    /// The keys to report: all of them on the first firing, then only those
    /// changed by late events.
    pub fn changed(&self) -> impl Iterator<Item = (&'a K, &'a A)> + '_ {
        let fired = self.slot.fired;
        self.sorted
            .iter()
            .filter(move |(_, e)| !fired || e.changed)
            .map(|&(k, e)| (k, &e.acc))
    }

    /// Whether this window fired before (late events changed it since).
    pub fn is_refiring(&self) -> bool {
        self.slot.fired
    }

    /// Number of keys in the window.
    pub fn len(&self) -> usize {
        self.slot.keys.len()
    }

    /// Whether the window holds no key.
    pub fn is_empty(&self) -> bool {
        self.slot.keys.is_empty()
    }

    /// The accumulator of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&'a A>
    where
        K: Borrow<Q>,
        Q: Ord + Hash + ?Sized,
    {
        self.slot.keys.get(key).map(|e| &e.acc)
    }
}
