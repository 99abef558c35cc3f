//! The epoch ticker: one thread per host that advances the wasmtime engine's
//! epoch every `tick`, which is what interrupts a guest past its deadline.
//!
//! Owned by the host's shared state; dropping the [`Ticker`] stops and joins
//! the thread. Ticks are scheduled against a fixed timeline, so spurious
//! wake-ups never make the epoch run faster than one increment per `tick`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running epoch ticker.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts a thread that calls `engine.increment_epoch()` every `tick`.
    pub(crate) fn start(engine: wasmtime::Engine, tick: Duration) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_seen = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sluice-wasm-epoch".into())
            .spawn(move || {
                let mut next = Instant::now() + tick;
                while !stop_seen.load(Ordering::Acquire) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::park_timeout(next - now);
                        continue;
                    }
                    engine.increment_epoch();
                    // After a stall, tick once and restart the timeline
                    // rather than firing a burst that would cut deadlines.
                    next += tick;
                    if next <= now {
                        next = now + tick;
                    }
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // The thread only sleeps and increments; it cannot panic.
            let _ = thread.join();
        }
    }
}
