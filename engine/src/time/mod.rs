//! Event time: watermarks per input stream and the deterministic merge of
//! several streams into one operator input.
//!
//! Sluice's results must depend only on the log, never on batch boundaries,
//! thread timing or the number of shards. Time is what makes that hard, so the
//! rules live here, in one place:
//!
//! - Every record an operator sees carries the watermark *in force before it*
//!   (its "tag"). For a source partition that is `max(event time of the
//!   earlier records) − max_out_of_orderness` ([`SourceClock`]); for a record
//!   an upstream operator emitted, it is that operator's watermark at the time
//!   it emitted the record.
//! - An operator fires its timers up to a record's tag before processing the
//!   record. So calling `on_watermark(w)` early or late between records does
//!   not change any output: the next record with a tag ≥ w would fire the same
//!   timers at the same place.
//! - An input made of several streams (several sources, or the per-upstream
//!   streams of a re-keyed stage) is merged by [`Merge`] in the order
//!   `(tag, stream, sequence)`, releasing a record only once every stream has
//!   promised no more records below its tag. That order is a function of the
//!   streams alone.
//!
//! Called by `shard/`; uses nothing else in the engine.

pub mod merge;

pub use merge::Merge;

/// The watermark before any event has been seen.
pub const NO_WATERMARK: i64 = i64::MIN;

/// Watermark of one source partition: the largest event time seen minus the
/// bounded out-of-orderness, raised to a floor when the partition went idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceClock {
    delay_ms: i64,
    max_ts: Option<i64>,
    floor: i64,
}

impl SourceClock {
    pub fn new(max_out_of_orderness_ms: u64) -> SourceClock {
        SourceClock {
            delay_ms: i64::try_from(max_out_of_orderness_ms).unwrap_or(i64::MAX),
            max_ts: None,
            floor: NO_WATERMARK,
        }
    }

    /// The current watermark.
    pub fn watermark(&self) -> i64 {
        let from_events = self
            .max_ts
            .map_or(NO_WATERMARK, |t| t.saturating_sub(self.delay_ms));
        from_events.max(self.floor)
    }

    /// Takes a record's event time; returns the watermark in force before it
    /// (the record's tag).
    #[inline]
    pub fn observe(&mut self, ts: i64) -> i64 {
        let before = self.watermark();
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        before
    }

    /// The partition has been idle: assume no straggler is still to come and
    /// move the watermark up to the largest event time seen.
    pub fn mark_idle(&mut self) {
        if let Some(t) = self.max_ts {
            self.floor = self.floor.max(t);
        }
    }

    /// Largest event time seen, if any.
    pub fn max_event_time(&self) -> Option<i64> {
        self.max_ts
    }
}

/// Window arithmetic shared by views and tests: the start of the tumbling
/// window of `size_ms` holding `ts` (epoch-aligned, also for negative `ts`).
pub fn window_start(ts: i64, size_ms: i64) -> i64 {
    debug_assert!(size_ms > 0);
    ts - ts.rem_euclid(size_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_trails_max_event_time_by_the_delay() {
        let mut c = SourceClock::new(4_000);
        assert_eq!(c.watermark(), NO_WATERMARK);
        assert_eq!(c.observe(10_000), NO_WATERMARK);
        assert_eq!(
            c.observe(9_000),
            6_000,
            "tag is the watermark before the record"
        );
        assert_eq!(c.watermark(), 6_000, "an older event does not move it back");
        c.observe(20_000);
        assert_eq!(c.watermark(), 16_000);
    }

    #[test]
    fn idle_partition_moves_to_its_max_event_time() {
        let mut c = SourceClock::new(4_000);
        c.mark_idle();
        assert_eq!(
            c.watermark(),
            NO_WATERMARK,
            "nothing seen, nothing to assume"
        );
        c.observe(10_000);
        c.mark_idle();
        assert_eq!(c.watermark(), 10_000);
        c.observe(11_000);
        assert_eq!(c.watermark(), 10_000, "floor holds until events pass it");
        c.observe(15_000);
        assert_eq!(c.watermark(), 11_000);
    }

    #[test]
    fn window_start_is_epoch_aligned() {
        assert_eq!(window_start(10_999, 10_000), 10_000);
        assert_eq!(window_start(10_000, 10_000), 10_000);
        assert_eq!(window_start(-1, 10_000), -10_000);
    }
}
