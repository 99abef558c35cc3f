//! The open-loop driver and coordinated omission: a system that stalls once must show the
//! stall in the latency of every request scheduled during it. Time is simulated, so the
//! expected figures are exact.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use sluice_bench::measure::{Clock, LatencyRecorder, OpenLoop, OpenLoopReport};

/// Simulated time shared by the driver (through [`Clock`]) and the system under test (which
/// advances it by its service time).
#[derive(Clone, Default)]
struct SimClock(Rc<Cell<Duration>>);

impl SimClock {
    fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }
}

impl Clock for SimClock {
    fn now(&mut self) -> Duration {
        self.0.get()
    }

    fn sleep_until(&mut self, deadline: Duration) {
        self.0.set(self.0.get().max(deadline));
    }
}

const MS: Duration = Duration::from_millis(1);

/// 1000 requests/s, one event each, 3000 requests; each takes 0.5 ms except request 100,
/// which stalls for `stall`.
fn run_with_stall(stall: Duration) -> OpenLoopReport {
    let driver = OpenLoop::new(1000.0, 1, 3000).unwrap();
    let mut clock = SimClock::default();
    let system = clock.clone();
    driver
        .run(&mut clock, |send| -> Result<(), ()> {
            assert_eq!(send.intended, send.index as u32 * MS);
            system.advance(if send.index == 100 { stall } else { MS / 2 });
            Ok(())
        })
        .unwrap()
}

#[test]
fn a_stall_is_charged_to_every_request_scheduled_during_it() {
    let report = run_with_stall(1000 * MS);
    let (latency, service) = (&report.latency, &report.service);
    // Uncorrected (from the actual send): one slow request among 3000, the rest 0.5 ms.
    assert_eq!(service.count(), 3000);
    assert!((service.percentile_ms(99.9) - 0.5).abs() < 0.01);
    assert!((service.percentile_ms(100.0) - 1000.0).abs() < 1.0);
    // Corrected (from the intended send): requests 100..2099 were late, by 1000 ms down to
    // 0.5 ms as the driver caught up at twice the schedule's pace: two thirds of all
    // requests, so the median is a quarter of the stall.
    assert_eq!(latency.count(), 3000);
    let p50 = latency.percentile_ms(50.0);
    assert!((p50 - 250.0).abs() < 5.0, "p50 {p50}");
    assert!(latency.percentile_ms(90.0) > 700.0);
    assert!((latency.percentile_ms(100.0) - 1000.0).abs() < 1.0);
    assert!(report.max_behind >= 999 * MS);
}

#[test]
fn without_a_stall_every_request_is_on_time() {
    let report = run_with_stall(MS / 2);
    assert!((report.latency.percentile_ms(100.0) - 0.5).abs() < 0.01);
    assert_eq!(report.max_behind, Duration::ZERO);
    assert_eq!(report.events, 3000);
}

#[test]
fn closed_loop_correction_back_fills_requests_a_stall_held_back() {
    let mut naive = LatencyRecorder::new();
    let mut corrected = LatencyRecorder::new();
    for i in 0..1000 {
        let latency = if i == 500 { 1000 * MS } else { MS };
        naive.record(latency);
        corrected.record_corrected(latency, MS);
    }
    assert_eq!(naive.count(), 1000);
    // The 1 s stall hid 999 requests that should have gone out every 1 ms.
    assert_eq!(corrected.count(), 1999);
    assert!((naive.percentile_ms(99.0) - 1.0).abs() < 0.01);
    assert!(corrected.percentile_ms(75.0) > 400.0);
}

#[test]
fn a_bad_rate_is_refused_with_the_flag_named() {
    let err = OpenLoop::new(0.0, 1, 10).unwrap_err().to_string();
    assert!(err.contains("--open-loop-rate"), "{err}");
    assert!(OpenLoop::new(10.0, 0, 10).is_err());
}
