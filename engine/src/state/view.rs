//! Materialized views: the latest result per (key, window), queryable.
//!
//! A view is split in one part per partition of the stage that fills it, so
//! each part has one writer (the task of that partition), its contents and
//! its evictions depend only on that task's output, and a checkpoint of the
//! task can carry its part. Writers lock a part once per batch; readers lock
//! each part in turn and copy out only the page a query returns.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::mpack;

/// Most entries one query returns.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// An entry's identity: the record key and the window it describes (taken
/// from the value's `window_start`/`window_end` fields; `i64::MIN` when the
/// value has none, i.e. "latest per key").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntryId {
    pub key: Vec<u8>,
    pub window_start: i64,
    pub window_end: i64,
}

/// The latest result for an [`EntryId`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub timestamp: i64,
    /// MessagePack.
    pub value: Vec<u8>,
}

/// One partition's share of a view.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewPart {
    entries: BTreeMap<EntryId, Entry>,
    /// Eviction order: oldest window end first, then key.
    by_end: BTreeSet<(i64, Vec<u8>, i64)>,
    evicted: u64,
}

impl ViewPart {
    /// Inserts or replaces, then evicts the oldest windows beyond `max`.
    pub fn upsert(&mut self, key: &[u8], timestamp: i64, value: &[u8], max: usize) {
        let window_start = field_i64(value, "window_start").unwrap_or(i64::MIN);
        let window_end = field_i64(value, "window_end").unwrap_or(i64::MIN);
        let id = EntryId {
            key: key.to_vec(),
            window_start,
            window_end,
        };
        self.by_end
            .insert((window_end, id.key.clone(), window_start));
        self.entries.insert(
            id,
            Entry {
                timestamp,
                value: value.to_vec(),
            },
        );
        while self.entries.len() > max {
            let Some((end, key, start)) = self.by_end.pop_first() else {
                break;
            };
            self.entries.remove(&EntryId {
                key,
                window_start: start,
                window_end: end,
            });
            self.evicted += 1;
        }
        debug_assert_eq!(self.entries.len(), self.by_end.len());
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries dropped to stay within the bound.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

fn field_i64(value: &[u8], name: &str) -> Option<i64> {
    mpack::get(value, &[name]).and_then(|s| s.as_i64())
}

/// A named view, one part per partition.
pub struct View {
    pub name: String,
    pub max_entries: usize,
    parts: Vec<Mutex<ViewPart>>,
}

/// What to select from a view.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    /// Only this key.
    pub key: Option<String>,
    /// Only windows starting at or after this time.
    pub from: Option<i64>,
    /// Only windows starting before this time.
    pub to: Option<i64>,
    /// Only the most recent window (largest `window_end`) present.
    #[serde(default)]
    pub latest: bool,
    /// Order by this numeric field of the value, largest first (a
    /// leaderboard); default: newest window first, then key.
    pub sort: Option<String>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
    /// Also report the 1-based rank of this key in the selected order.
    pub rank_of: Option<String>,
}

/// One selected entry, decoded for JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub key: String,
    pub window_start: Option<i64>,
    pub window_end: Option<i64>,
    pub timestamp: i64,
    pub value: serde_json::Value,
}

/// A query's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub view: String,
    /// Entries matching before pagination.
    pub total: usize,
    pub rows: Vec<Row>,
    /// Rank of `rank_of` among the matching entries (1 = first), if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
}

impl View {
    pub fn new(name: &str, max_entries: usize, partitions: u32) -> View {
        let per_part = max_entries.div_ceil(partitions.max(1) as usize).max(1);
        View {
            name: name.to_owned(),
            max_entries: per_part,
            parts: (0..partitions)
                .map(|_| Mutex::new(ViewPart::default()))
                .collect(),
        }
    }

    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Applies a batch of results to partition `p`'s part (one lock).
    pub fn apply<'a>(&self, p: u32, results: impl IntoIterator<Item = (&'a [u8], i64, &'a [u8])>) {
        let mut part = self.parts[p as usize].lock().expect("view part lock");
        for (key, ts, value) in results {
            part.upsert(key, ts, value, self.max_entries);
        }
    }

    /// A copy of partition `p`'s part (for checkpoints).
    pub fn part(&self, p: u32) -> ViewPart {
        self.parts[p as usize]
            .lock()
            .expect("view part lock")
            .clone()
    }

    /// Replaces partition `p`'s part (recovery).
    pub fn restore_part(&self, p: u32, part: ViewPart) {
        *self.parts[p as usize].lock().expect("view part lock") = part;
    }

    /// Total entries and evictions.
    pub fn stats(&self) -> (usize, u64) {
        self.parts.iter().fold((0, 0), |(n, e), p| {
            let p = p.lock().expect("view part lock");
            (n + p.len(), e + p.evicted())
        })
    }

    /// Runs a query. Nothing is copied but the page it returns: each part is
    /// locked in turn (its writer waits only that long), matches are counted
    /// and ranked in place, and a bounded heap keeps the `offset + limit`
    /// first of them.
    pub fn query(&self, q: &Query) -> Answer {
        let newest = q.latest.then(|| self.newest_end(q)).flatten();
        // The rank of a key is where its first entry falls in the order; only
        // that key's entries are visited to find it.
        let rank_target = q.rank_of.as_deref().and_then(|k| {
            if q.key.as_deref().is_some_and(|only| only != k) {
                return None;
            }
            let mut best: Option<Pick> = None;
            self.for_each_match(q, Some(k), newest, |id, e| {
                let here = Order::of(q, id, e);
                if best.as_ref().is_none_or(|b| here.cmp(&b.order()).is_lt()) {
                    best = Some(Pick::new(here.primary, id, e));
                }
            });
            best
        });
        let offset = q.offset.unwrap_or(0);
        let limit = q.limit.unwrap_or(100).min(MAX_QUERY_LIMIT);
        let keep = offset.saturating_add(limit);
        let mut page: BinaryHeap<Pick> = BinaryHeap::new();
        let (mut total, mut before) = (0usize, 0usize);
        self.for_each_match(q, q.key.as_deref(), newest, |id, e| {
            total += 1;
            let here = Order::of(q, id, e);
            if rank_target
                .as_ref()
                .is_some_and(|t| here.cmp(&t.order()).is_lt())
            {
                before += 1;
            }
            if page.len() < keep {
                page.push(Pick::new(here.primary, id, e));
            } else if page
                .peek()
                .is_some_and(|worst| here.cmp(&worst.order()).is_lt())
            {
                page.pop();
                page.push(Pick::new(here.primary, id, e));
            }
        });
        let rows = page
            .into_sorted_vec()
            .into_iter()
            .skip(offset)
            .map(|p| Row {
                key: String::from_utf8_lossy(&p.id.key).into_owned(),
                window_start: (p.id.window_start != i64::MIN).then_some(p.id.window_start),
                window_end: (p.id.window_end != i64::MIN).then_some(p.id.window_end),
                timestamp: p.entry.timestamp,
                value: decode_json(&p.entry.value),
            })
            .collect();
        Answer {
            view: self.name.clone(),
            total,
            rows,
            rank: rank_target.map(|_| before + 1),
        }
    }

    /// The latest window end among the entries the query selects. Without a
    /// key or a window range that is the last of each part's eviction order,
    /// so no entry is visited.
    fn newest_end(&self, q: &Query) -> Option<i64> {
        if q.key.is_none() && q.from.is_none() && q.to.is_none() {
            return self
                .parts
                .iter()
                .filter_map(|p| {
                    let p = p.lock().expect("view part lock");
                    p.by_end.last().map(|(end, _, _)| *end)
                })
                .max();
        }
        let mut newest = None;
        self.for_each_match(q, q.key.as_deref(), None, |id, _| {
            newest = newest.max(Some(id.window_end));
        });
        newest
    }

    /// Calls `f` on every entry of `key` (or of every key) in the query's
    /// window range, and with window end `newest` when given, one part
    /// locked at a time.
    fn for_each_match(
        &self,
        q: &Query,
        key: Option<&str>,
        newest: Option<i64>,
        mut f: impl FnMut(&EntryId, &Entry),
    ) {
        let selected = |id: &EntryId| {
            q.from.is_none_or(|from| id.window_start >= from)
                && q.to.is_none_or(|to| id.window_start < to)
                && newest.is_none_or(|n| id.window_end == n)
        };
        for part in &self.parts {
            let part = part.lock().expect("view part lock");
            match key {
                Some(k) => {
                    let lo = EntryId {
                        key: k.as_bytes().to_vec(),
                        window_start: i64::MIN,
                        window_end: i64::MIN,
                    };
                    part.entries
                        .range(lo..)
                        .take_while(|(id, _)| id.key == k.as_bytes())
                        .filter(|(id, _)| selected(id))
                        .for_each(|(id, e)| f(id, e));
                }
                None => part
                    .entries
                    .iter()
                    .filter(|(id, _)| selected(id))
                    .for_each(|(id, e)| f(id, e)),
            }
        }
    }
}

/// What a query orders by first: a value field, largest first (`sort`), or
/// the window end, newest first.
#[derive(Debug, Clone, Copy)]
enum Primary {
    Score(f64),
    End(i64),
}

/// An entry's place in a query's order (smaller comes first): the primary
/// criterion, then the entry's id (key, window start, window end), so that the
/// order is total and a page does not depend on which part an entry lives in.
#[derive(Debug, Clone, Copy)]
struct Order<'a> {
    primary: Primary,
    id: &'a EntryId,
}

impl<'a> Order<'a> {
    fn of(q: &Query, id: &'a EntryId, e: &Entry) -> Order<'a> {
        let primary = match &q.sort {
            Some(field) => Primary::Score(
                mpack::get(&e.value, &[field.as_str()])
                    .and_then(|s| s.as_f64())
                    .unwrap_or(f64::NEG_INFINITY),
            ),
            None => Primary::End(id.window_end),
        };
        Order { primary, id }
    }

    fn cmp(&self, other: &Order<'_>) -> Ordering {
        let primary = match (self.primary, other.primary) {
            (Primary::Score(a), Primary::Score(b)) => b.total_cmp(&a),
            (Primary::End(a), Primary::End(b)) => b.cmp(&a),
            // One query orders every entry the same way.
            (Primary::Score(_), Primary::End(_)) => Ordering::Less,
            (Primary::End(_), Primary::Score(_)) => Ordering::Greater,
        };
        primary.then_with(|| self.id.cmp(other.id))
    }
}

/// A copied entry kept for a query's page.
struct Pick {
    primary: Primary,
    id: EntryId,
    entry: Entry,
}

impl Pick {
    fn new(primary: Primary, id: &EntryId, entry: &Entry) -> Pick {
        Pick {
            primary,
            id: id.clone(),
            entry: entry.clone(),
        }
    }

    fn order(&self) -> Order<'_> {
        Order {
            primary: self.primary,
            id: &self.id,
        }
    }
}

impl PartialEq for Pick {
    fn eq(&self, other: &Pick) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Pick {}

impl PartialOrd for Pick {
    fn partial_cmp(&self, other: &Pick) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pick {
    fn cmp(&self, other: &Pick) -> Ordering {
        self.order().cmp(&other.order())
    }
}

/// MessagePack to JSON for display; undecodable bytes become a string
/// saying so rather than an error for the whole answer.
pub fn decode_json(value: &[u8]) -> serde_json::Value {
    rmp_serde::from_slice::<serde_json::Value>(value)
        .unwrap_or_else(|e| serde_json::Value::String(format!("<undecodable MessagePack: {e}>")))
}

/// All views, by name.
#[derive(Default)]
pub struct Views {
    by_name: RwLock<BTreeMap<String, Arc<View>>>,
}

impl Views {
    /// The view `name`, created with `partitions` parts if absent.
    pub fn get_or_create(&self, name: &str, max_entries: usize, partitions: u32) -> Arc<View> {
        if let Some(v) = self.get(name) {
            return v;
        }
        let mut map = self.by_name.write().expect("views lock");
        map.entry(name.to_owned())
            .or_insert_with(|| Arc::new(View::new(name, max_entries, partitions)))
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<View>> {
        self.by_name.read().expect("views lock").get(name).cloned()
    }

    pub fn remove(&self, name: &str) {
        self.by_name.write().expect("views lock").remove(name);
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name
            .read()
            .expect("views lock")
            .keys()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mp(v: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(&v).unwrap()
    }

    #[test]
    fn latest_result_per_key_and_window_wins() {
        let v = View::new("sales", 100, 2);
        let a1 = mp(json!({"window_start": 0, "window_end": 60, "orders": 1}));
        let a2 = mp(json!({"window_start": 0, "window_end": 60, "orders": 2}));
        let b = mp(json!({"window_start": 60, "window_end": 120, "orders": 5}));
        v.apply(0, [(&b"p1"[..], 59, &a1[..]), (b"p1", 59, &a2[..])]);
        v.apply(1, [(&b"p2"[..], 119, &b[..])]);
        let ans = v.query(&Query::default());
        assert_eq!(ans.total, 2);
        assert_eq!(ans.rows[0].key, "p2", "newest window first");
        assert_eq!(ans.rows[1].value["orders"], 2);
        let only = v.query(&Query {
            key: Some("p1".into()),
            ..Query::default()
        });
        assert_eq!(only.total, 1);
        let latest = v.query(&Query {
            latest: true,
            ..Query::default()
        });
        assert_eq!(latest.rows.len(), 1);
        assert_eq!(latest.rows[0].window_end, Some(120));
    }

    #[test]
    fn leaderboard_sorts_by_score_and_ranks_a_key() {
        let v = View::new("board", 100, 1);
        for (k, s) in [("ann", 30), ("bob", 50), ("cy", 40)] {
            let val = mp(json!({"points": s}));
            v.apply(0, [(k.as_bytes(), 0, &val[..])]);
        }
        let ans = v.query(&Query {
            sort: Some("points".into()),
            rank_of: Some("cy".into()),
            limit: Some(2),
            ..Query::default()
        });
        let keys: Vec<_> = ans.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["bob", "cy"]);
        assert_eq!(ans.rank, Some(2));
        assert_eq!(ans.total, 3);
    }

    #[test]
    fn oldest_windows_are_evicted_beyond_the_bound() {
        let v = View::new("v", 3, 1);
        for end in 1..=5i64 {
            let val = mp(json!({"window_start": end - 1, "window_end": end}));
            v.apply(0, [(&b"k"[..], end, &val[..])]);
        }
        let (n, evicted) = v.stats();
        assert_eq!((n, evicted), (3, 2));
        let ends: Vec<_> = v
            .query(&Query::default())
            .rows
            .iter()
            .map(|r| r.window_end.unwrap())
            .collect();
        assert_eq!(ends, [5, 4, 3]);
    }

    /// A query's answer reduced to what the test compares: total, the page's
    /// (key, window start, window end) and the rank.
    type Summary = (
        usize,
        Vec<(String, Option<i64>, Option<i64>)>,
        Option<usize>,
    );

    /// The answer as the plain definition gives it: every match copied,
    /// fully sorted, then paginated.
    fn naive(v: &View, q: &Query) -> Summary {
        let mut all: Vec<(EntryId, Entry)> = Vec::new();
        for p in 0..v.partitions() as u32 {
            all.extend(v.part(p).entries.into_iter().filter(|(id, _)| {
                q.key.as_ref().is_none_or(|k| id.key == k.as_bytes())
                    && q.from.is_none_or(|f| id.window_start >= f)
                    && q.to.is_none_or(|t| id.window_start < t)
            }));
        }
        if q.latest
            && let Some(newest) = all.iter().map(|(id, _)| id.window_end).max()
        {
            all.retain(|(id, _)| id.window_end == newest);
        }
        let score = |e: &Entry, f: &str| {
            mpack::get(&e.value, &[f])
                .and_then(|s| s.as_f64())
                .unwrap_or(f64::NEG_INFINITY)
        };
        all.sort_by(|(a, ea), (b, eb)| {
            let primary = match &q.sort {
                Some(f) => score(eb, f).total_cmp(&score(ea, f)),
                None => b.window_end.cmp(&a.window_end),
            };
            primary
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.window_start.cmp(&b.window_start))
                .then_with(|| a.window_end.cmp(&b.window_end))
        });
        let rank = q.rank_of.as_ref().and_then(|k| {
            all.iter()
                .position(|(id, _)| id.key == k.as_bytes())
                .map(|i| i + 1)
        });
        let rows = all
            .iter()
            .skip(q.offset.unwrap_or(0))
            .take(q.limit.unwrap_or(100))
            .map(|(id, _)| {
                let start = (id.window_start != i64::MIN).then_some(id.window_start);
                let end = (id.window_end != i64::MIN).then_some(id.window_end);
                (String::from_utf8_lossy(&id.key).into_owned(), start, end)
            })
            .collect();
        (all.len(), rows, rank)
    }

    proptest::proptest! {
        /// The bounded selection answers exactly what sorting every match would.
        #[test]
        fn a_query_pages_exactly_like_a_full_sort(
            // Windows of one key and start may end differently (sessions grow).
            entries in proptest::collection::vec((0u8..12, 0i64..6, 0i64..3, 0u32..3, -5i64..5, proptest::bool::ANY), 0..80),
            key in proptest::option::of(0u8..12),
            rank_of in proptest::option::of(0u8..12),
            from in proptest::option::of(0i64..6),
            to in proptest::option::of(0i64..7),
            latest in proptest::bool::ANY,
            sort in proptest::bool::ANY,
            offset in proptest::option::of(0usize..10),
            limit in proptest::option::of(0usize..10),
        ) {
            let v = View::new("v", 1_000, 3);
            for (k, w, longer, p, score, windowed) in entries {
                let val = if windowed {
                    mp(json!({"window_start": w * 10, "window_end": w * 10 + 10 + longer, "score": score}))
                } else {
                    mp(json!({"score": score}))
                };
                v.apply(p, [(format!("k{k}").as_bytes(), w, &val[..])]);
            }
            let q = Query {
                key: key.map(|k| format!("k{k}")),
                rank_of: rank_of.map(|k| format!("k{k}")),
                from: from.map(|f| f * 10),
                to: to.map(|t| t * 10),
                latest,
                sort: sort.then(|| "score".to_owned()),
                offset,
                limit,
            };
            let ans = v.query(&q);
            let rows: Vec<_> = ans.rows.iter().map(|r| (r.key.clone(), r.window_start, r.window_end)).collect();
            proptest::prop_assert_eq!((ans.total, rows, ans.rank), naive(&v, &q));
        }
    }

    #[test]
    fn parts_round_trip_for_checkpoints() {
        let v = View::new("v", 10, 2);
        let val = mp(json!({"x": 1}));
        v.apply(1, [(&b"k"[..], 7, &val[..])]);
        let part = v.part(1);
        let bytes = rmp_serde::to_vec(&part).unwrap();
        let w = View::new("v", 10, 2);
        w.restore_part(1, rmp_serde::from_slice(&bytes).unwrap());
        assert_eq!(w.part(1), part);
    }
}
