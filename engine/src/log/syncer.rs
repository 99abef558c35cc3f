//! The background syncer: one thread per `Log` that fdatasyncs dirty partitions and
//! publishes their durable offsets. Writers of `fsync = always` partitions queue them as
//! urgent (synced in the next round: one fdatasync covers every batch appended since the
//! previous round, which is the group commit); `interval(ms)` partitions are queued with a
//! deadline `ms` after their first unsynced append. `never` partitions are not queued.
//!
//! Invariant: a partition is in the queue at most once (`Partition::sync_queued`); it is
//! taken off before its sync starts, so an append during a sync queues it again.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::limits::MAX_PARALLEL_SYNCS;
use super::partition::Partition;

#[derive(Default)]
struct QueueState {
    urgent: Vec<Arc<Partition>>,
    timed: Vec<(Instant, Arc<Partition>)>,
    running: bool,
    stop: bool,
}

/// The queue between writers and the syncer thread.
#[derive(Default)]
pub struct SyncQueue {
    state: Mutex<QueueState>,
    cv: Condvar,
}

impl SyncQueue {
    /// Queues `p` for a sync (now if `deadline` is `None`). Returns false when no syncer
    /// thread runs (the caller then syncs itself).
    pub fn schedule(&self, p: &Arc<Partition>, deadline: Option<Instant>) -> bool {
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        if !st.running || st.stop {
            return false;
        }
        if p.sync_queued.swap(true, Ordering::AcqRel) {
            if deadline.is_none() && !st.urgent.iter().any(|q| Arc::ptr_eq(q, p)) {
                // Queued on a timer but now needed at once (an explicit durable wait).
                st.timed.retain(|(_, q)| !Arc::ptr_eq(q, p));
                st.urgent.push(p.clone());
                self.cv.notify_one();
            }
            return true;
        }
        match deadline {
            None => {
                st.urgent.push(p.clone());
                self.cv.notify_one();
            }
            Some(d) => {
                let wake = st.timed.iter().all(|(t, _)| d < *t);
                st.timed.push((d, p.clone()));
                if wake {
                    self.cv.notify_one();
                }
            }
        }
        true
    }

    /// Starts the syncer thread.
    pub fn start(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        if let Ok(mut st) = self.state.lock() {
            st.running = true;
        }
        let q = self.clone();
        std::thread::Builder::new()
            .name("sluice-log-syncer".into())
            .spawn(move || q.run())
    }

    /// Asks the thread to sync what is queued and exit.
    pub fn stop(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.stop = true;
        }
        self.cv.notify_all();
    }

    fn run(&self) {
        let mut batch: Vec<Arc<Partition>> = Vec::new();
        loop {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            let done = loop {
                let now = Instant::now();
                if st.stop {
                    break true;
                }
                if !st.urgent.is_empty() || st.timed.iter().any(|(d, _)| *d <= now) {
                    break false;
                }
                let wait = st
                    .timed
                    .iter()
                    .map(|(d, _)| d.saturating_duration_since(now))
                    .min()
                    .unwrap_or(Duration::from_secs(3600));
                st = match self.cv.wait_timeout(st, wait) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                };
            };
            let now = Instant::now();
            batch.append(&mut st.urgent);
            let mut i = 0;
            while i < st.timed.len() {
                if done || st.timed[i].0 <= now {
                    batch.push(st.timed.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
            if done {
                st.running = false;
            }
            drop(st);
            for p in &batch {
                p.sync_queued.store(false, Ordering::Release);
            }
            flush_all(&batch);
            batch.clear();
            if done {
                return;
            }
        }
    }
}

/// Flushes partitions, up to `MAX_PARALLEL_SYNCS` at a time: fdatasyncs of different files
/// overlap in the device, so a round over many dirty partitions costs about one fsync
/// latency rather than one per partition.
fn flush_all(batch: &[Arc<Partition>]) {
    let flush = |ps: &[Arc<Partition>]| {
        for p in ps {
            if let Err(e) = p.flush() {
                tracing::error!(error = %e, "log syncer: fdatasync failed");
            }
        }
    };
    if batch.len() <= 1 {
        return flush(batch);
    }
    let per = batch.len().div_ceil(MAX_PARALLEL_SYNCS);
    std::thread::scope(|s| {
        let mut chunks = batch.chunks(per);
        let first = chunks.next();
        for c in chunks {
            if std::thread::Builder::new()
                .name("sluice-log-sync".into())
                .spawn_scoped(s, move || flush(c))
                .is_err()
            {
                flush(c);
            }
        }
        if let Some(c) = first {
            flush(c);
        }
    });
}
