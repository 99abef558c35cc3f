//! Deterministic merge of tagged streams (see the module doc of `time`).
//!
//! Each stream delivers items with non-decreasing tags, and may promise that
//! all its later items have a tag of at least some value (its progress).
//! [`Merge::pop`] releases items in `(tag, stream, arrival)` order, and only
//! once no stream can still deliver an item that sorts before them. The
//! released order therefore depends only on each stream's contents, never on
//! how the deliveries of different streams interleaved in time.

use std::collections::VecDeque;

use super::NO_WATERMARK;

/// Bound on items buffered per stream; callers stop reading a stream that is
/// this far ahead of the slowest one.
pub const MAX_BUFFERED_PER_STREAM: usize = 1 << 16;

struct Stream<T> {
    queue: VecDeque<(i64, T)>,
    /// Every later item of this stream has a tag >= this.
    low: i64,
}

/// K-way merge of tagged streams in a timing-independent order.
pub struct Merge<T> {
    streams: Vec<Stream<T>>,
}

impl<T> Merge<T> {
    pub fn new(streams: usize) -> Merge<T> {
        Merge {
            streams: (0..streams)
                .map(|_| Stream {
                    queue: VecDeque::new(),
                    low: NO_WATERMARK,
                })
                .collect(),
        }
    }

    /// Number of streams.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Adds an item of `stream`. Tags of one stream must not decrease.
    pub fn push(&mut self, stream: usize, tag: i64, item: T) {
        let s = &mut self.streams[stream];
        assert!(
            tag >= s.low,
            "stream {stream} went back in time: tag {tag} after promising {}",
            s.low
        );
        s.low = tag;
        s.queue.push_back((tag, item));
    }

    /// `stream` promises that its later items have tags >= `progress`.
    /// Promises never move back; an older promise is ignored.
    pub fn advance(&mut self, stream: usize, progress: i64) {
        let s = &mut self.streams[stream];
        s.low = s.low.max(progress);
    }

    /// The smallest promise over all streams: no later item of any stream
    /// has a smaller tag.
    pub fn frontier(&self) -> i64 {
        self.streams
            .iter()
            .map(|s| s.low)
            .min()
            .unwrap_or(NO_WATERMARK)
    }

    /// The watermark of what has been released: no item still buffered or
    /// still to come has a smaller tag. Unlike [`Merge::frontier`], it stays
    /// below items waiting in the buffers (a full batch leaves some behind).
    pub fn watermark(&self) -> i64 {
        self.streams
            .iter()
            .map(|s| s.queue.front().map_or(s.low, |(t, _)| *t))
            .min()
            .unwrap_or(NO_WATERMARK)
    }

    /// Items buffered in `stream`.
    pub fn buffered(&self, stream: usize) -> usize {
        self.streams[stream].queue.len()
    }

    /// Items buffered in all streams.
    pub fn total_buffered(&self) -> usize {
        self.streams.iter().map(|s| s.queue.len()).sum()
    }

    /// The next item in `(tag, stream, arrival)` order, if no stream can still
    /// deliver one that sorts before it.
    pub fn pop(&mut self) -> Option<(usize, i64, T)> {
        self.pop_if(|_| true)
    }

    /// Like [`Merge::pop`], but leaves the item in place unless `accept` says
    /// yes (the caller has no room for it now).
    pub fn pop_if(&mut self, accept: impl FnOnce(&T) -> bool) -> Option<(usize, i64, T)> {
        let (best, tag) = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.queue.front().map(|(t, _)| (i, *t)))
            .min_by_key(|&(i, t)| (t, i))?;
        let blocked = self.streams.iter().enumerate().any(|(i, s)| {
            // A stream holding items already sorts after `best`; an empty one
            // could still deliver something at its promise.
            i != best && s.queue.is_empty() && (s.low < tag || (s.low == tag && i < best))
        });
        if blocked || !accept(&self.streams[best].queue.front().expect("front exists").1) {
            return None;
        }
        let (t, item) = self.streams[best].queue.pop_front().expect("front exists");
        Some((best, t, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_for_the_slowest_stream() {
        let mut m = Merge::new(2);
        m.push(0, 10, "a");
        assert!(
            m.pop().is_none(),
            "stream 1 might still send something at tag < 10"
        );
        m.advance(1, 11);
        assert_eq!(m.pop(), Some((0, 10, "a")));
    }

    #[test]
    fn equal_promise_from_a_higher_stream_does_not_block() {
        let mut m = Merge::new(2);
        m.advance(0, 10);
        m.push(1, 10, "b");
        assert!(
            m.pop().is_none(),
            "stream 0 may still send (10, 0), which sorts first"
        );
        let mut m = Merge::new(2);
        m.push(0, 10, "a");
        m.advance(1, 10);
        assert_eq!(m.pop(), Some((0, 10, "a")));
    }

    #[test]
    fn releases_in_tag_stream_order() {
        let mut m = Merge::new(3);
        m.push(2, 5, 'c');
        m.push(0, 7, 'a');
        m.push(1, 5, 'b');
        for s in 0..3 {
            m.advance(s, i64::MAX);
        }
        let got: Vec<_> = std::iter::from_fn(|| m.pop().map(|(_, _, x)| x)).collect();
        assert_eq!(got, vec!['b', 'c', 'a']);
    }

    #[test]
    fn watermark_stays_below_items_left_in_the_buffers() {
        let mut m = Merge::new(2);
        m.push(0, 5, ());
        m.push(0, 9, ());
        m.push(1, 7, ());
        m.advance(0, 20);
        m.advance(1, 20);
        assert_eq!(m.frontier(), 20);
        assert_eq!(m.watermark(), 5);
        m.pop();
        assert_eq!(m.watermark(), 7);
        m.pop();
        m.pop();
        assert_eq!(m.watermark(), 20);
    }

    #[test]
    #[should_panic(expected = "went back in time")]
    fn a_stream_cannot_go_back_in_time() {
        let mut m = Merge::new(1);
        m.advance(0, 10);
        m.push(0, 9, ());
    }

    proptest! {
        /// Whatever the interleaving of deliveries and promises, the released
        /// order is the sort by (tag, stream, arrival).
        #[test]
        fn order_does_not_depend_on_interleaving(
            deltas in proptest::collection::vec(proptest::collection::vec(0i64..3, 0..20), 1..5),
            schedule in proptest::collection::vec((0usize..5, any::<bool>()), 0..200),
        ) {
            let streams: Vec<Vec<i64>> = deltas.iter()
                .map(|d| d.iter().scan(0i64, |acc, x| { *acc += x; Some(*acc) }).collect())
                .collect();
            let mut expected: Vec<(i64, usize, usize)> = streams.iter().enumerate()
                .flat_map(|(s, tags)| tags.iter().enumerate().map(move |(i, &t)| (t, s, i)))
                .collect();
            expected.sort();

            let mut m = Merge::new(streams.len());
            let mut next = vec![0usize; streams.len()];
            let mut got = Vec::new();
            for (pick, promise) in schedule {
                let s = pick % streams.len();
                if promise {
                    // Promise what the stream's next item (or its end) allows.
                    let p = streams[s].get(next[s]).copied().unwrap_or(i64::MAX);
                    m.advance(s, p);
                } else if let Some(&t) = streams[s].get(next[s]) {
                    m.push(s, t, (t, s, next[s]));
                    next[s] += 1;
                }
                while let Some((_, _, x)) = m.pop() { got.push(x); }
            }
            for s in 0..streams.len() {
                while let Some(&t) = streams[s].get(next[s]) {
                    m.push(s, t, (t, s, next[s]));
                    next[s] += 1;
                }
                m.advance(s, i64::MAX);
            }
            while let Some((_, _, x)) = m.pop() { got.push(x); }
            prop_assert_eq!(got, expected);
        }
    }
}
