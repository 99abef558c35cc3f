//! The control plane's background work: recovery at start (and readiness
//! once replay caught up), shard events (failures, panics), job rates, shard
//! heartbeats for the watchdog, and retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::engine::{Engine, EngineError, JobEntry, JobFile, JobState, RecoveryReport};
use crate::shard::Event;
use crate::shard::runtime::now_ms;

impl Engine {
    pub(super) fn recover(self: &Arc<Self>) -> Result<(), EngineError> {
        let started = Instant::now();
        let mut files = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.data_dir.join("jobs")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    match std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                        serde_json::from_slice::<JobFile>(&b).map_err(|e| e.to_string())
                    }) {
                        Ok(f) => files.push(f),
                        Err(e) => {
                            tracing::error!(file = %p.display(), error = %e, "unreadable job file skipped")
                        }
                    }
                }
            }
        }
        let mut report = RecoveryReport::default();
        let mut targets = Vec::new();
        for f in files {
            let name = f.spec.name.clone();
            let mut runtime = None;
            if f.state == JobState::Running {
                match self.launch(&f.spec) {
                    Ok(l) => {
                        let (rt, problems, t) = (l.runtime, l.problems, l.replay);
                        report.problems.extend(problems);
                        report.jobs.push(name.clone());
                        targets.push((rt.clone(), t));
                        runtime = Some(rt);
                    }
                    Err(e) => {
                        report
                            .problems
                            .push(format!("job `{name}` could not be restored: {e}"));
                        tracing::error!(job = %name, error = %e, "job could not be restored; it is paused");
                    }
                }
            }
            let mut file = f;
            if runtime.is_none() && file.state == JobState::Running {
                file.state = JobState::Paused {
                    reason: report.problems.last().cloned().unwrap_or_default(),
                };
            }
            self.jobs
                .lock()
                .expect("jobs lock")
                .insert(name, JobEntry { file, runtime });
        }
        report.replay_records = targets
            .iter()
            .map(|(_, t)| t.iter().map(|x| x.records).sum::<u64>())
            .sum();
        *self.recovery.lock().expect("recovery lock") = report;
        // Ready once every restored stage-0 task has reached the log end it
        // had at start.
        let me = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sluice-recovery".into())
            .spawn(move || loop {
                let Some(engine) = me.upgrade() else { return };
                let done = targets.iter().all(|(rt, t)| {
                    t.iter().all(|r| {
                        // records_in counts on from the checkpoint's count.
                        let info = &rt.tasks[0][r.partition as usize];
                        let read = info.records_in.load(Ordering::Relaxed);
                        read >= r.restored_records_in + r.records
                            || info.lag.load(Ordering::Relaxed) == 0 && read > 0
                    })
                });
                if done {
                    let mut r = engine.recovery.lock().expect("recovery lock");
                    r.took_ms = started.elapsed().as_millis() as u64;
                    r.done = true;
                    engine.ready.store(true, Ordering::Release);
                    tracing::info!(replayed = r.replay_records, took_ms = r.took_ms, jobs = ?r.jobs, "recovery complete; ready");
                    return;
                }
                drop(engine);
                std::thread::sleep(Duration::from_millis(5));
            })
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(())
    }
}

pub(super) fn spawn_event_loop(engine: &Arc<Engine>, rx: crossbeam::channel::Receiver<Event>) {
    let me = Arc::downgrade(engine);
    let _ = std::thread::Builder::new()
        .name("sluice-events".into())
        .spawn(move || {
            while let Ok(ev) = rx.recv() {
                let Some(engine) = me.upgrade() else { return };
                match ev {
                    Event::TaskFailed { job, error } => engine.pause(&job, error),
                    Event::Panicked {
                        shard,
                        jobs,
                        message,
                    } => engine.restore_after_panic(shard, &jobs, &message),
                }
            }
        });
}

/// Once a second: job rates and shard heartbeats; every 10 s: retention.
pub(super) fn spawn_sampler(engine: &Arc<Engine>) {
    let me = Arc::downgrade(engine);
    let _ = std::thread::Builder::new()
        .name("sluice-maintenance".into())
        .spawn(move || {
            let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut tick = 0u64;
            loop {
                std::thread::sleep(Duration::from_secs(1));
                tick += 1;
                let Some(engine) = me.upgrade() else { return };
                if engine.is_stopping() {
                    return;
                }
                engine.sample_heartbeats();
                for (spec, _, rt, _) in engine.jobs() {
                    let Some(rt) = rt else { continue };
                    let now = (
                        rt.stats.records_in.load(Ordering::Relaxed),
                        rt.stats.records_out.load(Ordering::Relaxed),
                    );
                    let before = last.insert(spec.name.clone(), now).unwrap_or(now);
                    rt.stats.rate_in.store(
                        (now.0.saturating_sub(before.0) as f64).to_bits(),
                        Ordering::Relaxed,
                    );
                    rt.stats.rate_out.store(
                        (now.1.saturating_sub(before.1) as f64).to_bits(),
                        Ordering::Relaxed,
                    );
                }
                if tick.is_multiple_of(10)
                    && let Err(e) = engine.log.enforce_retention(now_ms())
                {
                    tracing::warn!(error = %e, "retention");
                }
            }
        });
}

impl Engine {
    fn sample_heartbeats(&self) {
        let mut hb = self.heartbeats.lock().expect("heartbeat lock");
        let now = Instant::now();
        if hb.len() != self.shards.len() {
            *hb = self
                .shards
                .iter()
                .map(|s| (s.stats.heartbeat.load(Ordering::Relaxed), now))
                .collect();
            return;
        }
        for (s, slot) in self.shards.iter().zip(hb.iter_mut()) {
            let v = s.stats.heartbeat.load(Ordering::Relaxed);
            if v != slot.0 {
                *slot = (v, now);
            }
        }
    }

    /// Per shard: whether its loop has turned within `stall` (a shard inside
    /// a long plugin call does not turn; the call deadline bounds that).
    pub fn shards_alive(&self, stall: Duration) -> Vec<bool> {
        let hb = self.heartbeats.lock().expect("heartbeat lock");
        if hb.len() != self.shards.len() {
            return vec![true; self.shards.len()];
        }
        hb.iter().map(|(_, t)| t.elapsed() < stall).collect()
    }

    /// The stall after which a shard counts as wedged.
    pub fn stall_limit(&self) -> Duration {
        Duration::from_millis(self.config().wasm.call_deadline_ms.saturating_mul(2))
            .max(Duration::from_secs(5))
    }
}
