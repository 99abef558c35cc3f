//! Throughput over time: a background thread samples a shared event counter at a fixed
//! period while a system runs; the samples become the `timeline` of a results row and the
//! throughput-over-time plot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most samples one run keeps; the period doubles (dropping every other sample) when hit.
pub const MAX_SAMPLES: usize = 4_096;

/// Samples `counter` every `period` until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<[f64; 2]>>,
}

impl Sampler {
    /// Starts sampling `counter` (events processed so far) every `period`.
    pub fn start(counter: Arc<AtomicU64>, period: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // The first sample is taken here, so nothing counted after `start` returns is missed.
        let start = Instant::now();
        let first = [0.0, counter.load(Ordering::Relaxed) as f64];
        let handle = std::thread::spawn(move || {
            let mut period = period;
            let mut points: Vec<[f64; 2]> = vec![first];
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(period);
                points.push([
                    start.elapsed().as_secs_f64(),
                    counter.load(Ordering::Relaxed) as f64,
                ]);
                if points.len() >= MAX_SAMPLES {
                    points = points.into_iter().step_by(2).collect();
                    period *= 2;
                }
            }
            points.push([
                start.elapsed().as_secs_f64(),
                counter.load(Ordering::Relaxed) as f64,
            ]);
            points
        });
        Sampler { stop, handle }
    }

    /// Stops and returns `[t_s, events_per_s]` per interval (rate over the interval ending
    /// at `t_s`).
    pub fn finish(self) -> Vec<[f64; 2]> {
        self.stop.store(true, Ordering::Relaxed);
        let points = self.handle.join().unwrap_or_default();
        rates(&points)
    }
}

/// `[t, cumulative count]` samples to `[t, rate over the preceding interval]`.
pub fn rates(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    points
        .windows(2)
        .filter(|w| w[1][0] > w[0][0])
        .map(|w| [w[1][0], (w[1][1] - w[0][1]) / (w[1][0] - w[0][0])])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_interval() {
        let r = rates(&[[0.0, 0.0], [1.0, 100.0], [3.0, 500.0]]);
        assert_eq!(r, vec![[1.0, 100.0], [3.0, 200.0]]);
    }

    #[test]
    fn sampler_sees_every_event_counted() {
        let counter = Arc::new(AtomicU64::new(0));
        let sampler = Sampler::start(Arc::clone(&counter), Duration::from_millis(1));
        for _ in 0..1000 {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let timeline = sampler.finish();
        let mut total = 0.0;
        let mut last_t = 0.0;
        for [t, rate] in &timeline {
            total += rate * (t - last_t);
            last_t = *t;
        }
        assert!((total - 1000.0).abs() < 1e-6, "{total}");
    }
}
