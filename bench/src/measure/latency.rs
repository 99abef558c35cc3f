//! Latency histograms (HdrHistogram, microseconds, 3 significant digits) and their summary
//! in a results row: p50/p99/p99.9 and a CDF.
//!
//! Two ways to record, for the two ways a driver can run:
//! - open loop ([`super::open_loop`]): the latency of a request is measured from the time it
//!   was *meant* to be sent, so a stall in the system under test shows up in every request
//!   scheduled during it ([`LatencyRecorder::record_from_intended`]);
//! - closed loop at an expected pace: HdrHistogram's `record_correct` back-fills the
//!   requests a stall kept the driver from sending ([`LatencyRecorder::record_corrected`]).
//!
//! Both correct for coordinated omission. One recorder per thread; merge them at the end.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency a histogram holds (1 hour); longer ones are recorded as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant decimal digits kept.
const SIGNIFICANT_DIGITS: u8 = 3;
/// Percentiles stored in a [`LatencySummary::cdf`].
pub const CDF_PERCENTILES: [f64; 15] = [
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100.0,
];

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    clamped: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

impl LatencyRecorder {
    /// An empty histogram covering 1 µs to [`MAX_LATENCY_US`].
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS)
            .unwrap_or_else(|_| unreachable!("static histogram bounds are valid"));
        LatencyRecorder { hist, clamped: 0 }
    }

    fn clamp(&mut self, us: u64) -> u64 {
        if us > MAX_LATENCY_US {
            self.clamped += 1;
            MAX_LATENCY_US
        } else {
            us
        }
    }

    /// Records one latency as measured.
    pub fn record(&mut self, latency: Duration) {
        let us = self.clamp(micros(latency));
        self.hist.saturating_record(us);
    }

    /// Records the latency of a request meant to go out at `intended` and completed at
    /// `done` (both on the driver's clock): `done − intended`, whatever delayed the send.
    pub fn record_from_intended(&mut self, intended: Duration, done: Duration) {
        self.record(done.saturating_sub(intended));
    }

    /// Records a closed-loop latency whose requests were meant to go out every
    /// `expected_interval`: a latency longer than the interval also records the requests
    /// that should have been sent meanwhile (latency − interval, − 2·interval, ...).
    pub fn record_corrected(&mut self, latency: Duration, expected_interval: Duration) {
        let us = self.clamp(micros(latency));
        let interval = micros(expected_interval);
        if self.hist.record_correct(us, interval).is_err() {
            self.hist.saturating_record(us);
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.clamped += other.clamped;
    }

    /// Values recorded (including back-filled ones).
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Values that exceeded [`MAX_LATENCY_US`] and were recorded as it.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The latency at `percentile` (0–100), in milliseconds.
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.hist.value_at_percentile(percentile) as f64 / 1000.0
    }

    /// The underlying histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Percentiles and CDF; `None` if nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        Some(LatencySummary {
            count: self.count(),
            p50_ms: self.percentile_ms(50.0),
            p99_ms: self.percentile_ms(99.0),
            p999_ms: self.percentile_ms(99.9),
            max_ms: self.hist.max() as f64 / 1000.0,
            cdf: CDF_PERCENTILES
                .iter()
                .map(|&p| [p, self.percentile_ms(p)])
                .collect(),
        })
    }
}

/// What a results row keeps of a latency histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// `[percentile, ms]` at [`CDF_PERCENTILES`].
    pub cdf: Vec<[f64; 2]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_percentiles_in_milliseconds() {
        let mut r = LatencyRecorder::new();
        for ms in 1..=1000u64 {
            r.record(Duration::from_millis(ms));
        }
        let s = r.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() <= 1.0, "{}", s.p50_ms);
        assert!((s.p99_ms - 990.0).abs() <= 1.0, "{}", s.p99_ms);
        assert_eq!(s.cdf.len(), CDF_PERCENTILES.len());
        assert!(s.cdf.windows(2).all(|w| w[0][1] <= w[1][1]));
        assert!(LatencyRecorder::new().summary().is_none());
    }

    #[test]
    fn latencies_beyond_the_bound_are_clamped_and_counted() {
        let mut r = LatencyRecorder::new();
        r.record(Duration::from_secs(7_200));
        assert_eq!(r.clamped(), 1);
        assert_eq!(r.count(), 1);
    }
}
