//! The systemd notify protocol of `sluice serve` (see `sd_notify(3)`), spoken
//! through the `sd-notify` crate.
//!
//! One loop ([`run`]) owns the periodic messages: `READY=1` once the engine
//! says recovery is done (the listener is bound before the loop starts),
//! `STATUS=` with live figures, and `WATCHDOG=1` only while every shard's
//! loop keeps turning. The signal handler in `serve.rs` sends the one-off
//! messages (`RELOADING=1`, `STOPPING=1`) through [`Reporter`], which also
//! stops the loop so no `READY` or `WATCHDOG` follows a `STOPPING`.
//!
//! The loop runs on the HTTP runtime on purpose: a runtime too busy or
//! wedged to schedule it also stops the pings. Outside systemd
//! (`NOTIFY_SOCKET` unset) every send is a no-op.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::job::engine::Engine;

/// Shortest and longest pause between two rounds of the loop.
const MIN_TICK: Duration = Duration::from_millis(50);
const MAX_TICK: Duration = Duration::from_secs(1);
/// How often the loop looks for readiness before READY=1 went out.
const READY_POLL: Duration = Duration::from_millis(10);

/// Sends one datagram; outside systemd there is no socket, which is fine.
/// A socket that is set but unreachable is reported once, not every tick.
pub fn send(states: &[NotifyState]) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = sd_notify::notify(false, states)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!("cannot reach systemd's notify socket (NOTIFY_SOCKET): {e}");
    }
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC` for this pid).
pub fn watchdog_period() -> Option<Duration> {
    let mut usec = 0u64;
    (sd_notify::watchdog_enabled(false, &mut usec) && usec > 0).then(|| Duration::from_micros(usec))
}

/// What the signal handler shares with the loop. Every send goes through
/// its lock, so nothing the loop sends can follow a `STOPPING=1`.
#[derive(Default)]
pub struct Reporter {
    state: Mutex<ReporterState>,
}

#[derive(Default)]
struct ReporterState {
    /// Set once STOPPING=1 went out: the loop sends nothing more.
    stopping: bool,
    /// Why the last reload was refused, shown in STATUS until one succeeds.
    reload_refused: Option<String>,
}

impl Reporter {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReporterState> {
        self.state.lock().expect("reporter lock")
    }

    /// Tells systemd a reload starts (with the clock reading systemd 253+
    /// wants beside it).
    pub fn reloading(&self) {
        let _guard = self.lock();
        let mut st = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            st.push(now);
        }
        send(&st);
    }

    /// Tells systemd the reload is over, successful or not.
    pub fn reloaded(&self, refused: Option<String>) {
        let mut state = self.lock();
        let status = match &refused {
            None => "configuration reloaded".to_owned(),
            Some(why) => format!("reload refused, previous configuration kept: {why}"),
        };
        // STATUS= is one line of the datagram.
        let status = status.replace('\n', " ");
        state.reload_refused = refused.map(|why| format!("last reload refused: {why}"));
        send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// Tells systemd the service is stopping; the loop falls silent.
    pub fn stopping(&self, status: &str) {
        let mut state = self.lock();
        state.stopping = true;
        send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// Updates STATUS during the stop.
    pub fn stop_status(&self, status: &str) {
        let _guard = self.lock();
        send(&[NotifyState::Status(status)]);
    }

    /// The loop's send: false (and nothing sent) once stopping.
    fn send_running(&self, states: &[NotifyState]) -> bool {
        let state = self.lock();
        if state.stopping {
            return false;
        }
        send(states);
        true
    }

    fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    fn notice(&self) -> Option<String> {
        self.lock().reload_refused.clone()
    }
}

/// Per shard: the heartbeat last seen and when it last moved.
struct Heartbeats(Vec<(u64, Instant)>);

impl Heartbeats {
    fn new(engine: &Engine) -> Heartbeats {
        let now = Instant::now();
        Heartbeats(
            engine
                .shards()
                .iter()
                .map(|s| (s.stats.heartbeat.load(Ordering::Relaxed), now))
                .collect(),
        )
    }

    /// Shards whose loop has not turned for `stall`, with how long.
    fn stuck(&mut self, engine: &Engine, stall: Duration) -> Vec<(usize, Duration)> {
        let now = Instant::now();
        let mut stuck = Vec::new();
        for (i, (s, slot)) in engine.shards().iter().zip(&mut self.0).enumerate() {
            let beat = s.stats.heartbeat.load(Ordering::Relaxed);
            if beat != slot.0 {
                *slot = (beat, now);
            } else if now - slot.1 >= stall {
                stuck.push((i, now - slot.1));
            }
        }
        stuck
    }
}

/// How long a shard may go without turning before the watchdog ping stops:
/// the engine's own stall limit (which allows for the longest plugin call),
/// but short enough that systemd notices within about 1.5 watchdog periods.
fn stall_for(engine: &Engine, watchdog: Option<Duration>, tick: Duration) -> Duration {
    let limit = engine.stall_limit();
    match watchdog {
        Some(w) => limit.min(w / 2).max(tick * 3),
        None => limit,
    }
}

/// One line of live figures for `systemctl status`.
fn status_line(engine: &Engine) -> String {
    let jobs = engine.jobs();
    let running: Vec<_> = jobs.iter().filter_map(|j| j.2.as_ref()).collect();
    let rate = running
        .iter()
        .map(|rt| f64::from_bits(rt.stats.rate_in.load(Ordering::Relaxed)))
        .fold(0.0, |a, b| a + b);
    let lag: u64 = running.iter().map(|rt| rt.lag()).sum();
    let ingested: u64 = engine
        .shards()
        .iter()
        .map(|s| s.stats.ingested.load(Ordering::Relaxed))
        .sum();
    format!(
        "{} of {} jobs running, {rate:.0} records/s in, lag {lag} records, {ingested} records ingested",
        running.len(),
        jobs.len()
    )
}

/// Recovery progress while not ready yet.
fn recovering_line(engine: &Engine) -> String {
    let r = engine.recovery();
    let replayed: u64 = engine
        .jobs()
        .iter()
        .filter_map(|j| j.2.as_ref())
        .map(|rt| rt.stats.records_in.load(Ordering::Relaxed))
        .sum();
    format!(
        "recovering {} jobs: {} of {} records replayed",
        r.jobs.len(),
        replayed.min(r.replay_records),
        r.replay_records
    )
}

/// The loop: runs until [`Reporter::stopping`].
pub async fn run(engine: Arc<Engine>, reporter: Arc<Reporter>, listen: std::net::SocketAddr) {
    let watchdog = watchdog_period();
    let tick = watchdog.map_or(MAX_TICK, |w| (w / 4).clamp(MIN_TICK, MAX_TICK));
    let stall = stall_for(&engine, watchdog, tick);
    if let Some(w) = watchdog {
        let deadline = Duration::from_millis(engine.config().wasm.call_deadline_ms);
        if w < deadline * 2 {
            tracing::warn!(
                "WatchdogSec ({w:?}) is shorter than twice wasm.call_deadline_ms ({deadline:?}): \
                 one slow plugin call can get the service restarted"
            );
        }
        tracing::info!(
            "systemd watchdog every {w:?}: pings stop while a shard has not turned for {stall:?}"
        );
    }
    let mut beats = Heartbeats::new(&engine);
    let mut ready_sent = false;
    let mut reported_stuck: Vec<usize> = Vec::new();
    let mut last_round: Option<Instant> = None;
    loop {
        if reporter.is_stopping() {
            return;
        }
        // Until READY goes out, look often so it goes out promptly; the
        // other messages keep the tick.
        let becomes_ready = !ready_sent && engine.is_ready();
        if !becomes_ready && last_round.is_some_and(|t| t.elapsed() < tick) {
            tokio::time::sleep(READY_POLL).await;
            continue;
        }
        last_round = Some(Instant::now());
        let stuck = beats.stuck(&engine, stall);
        let mut status = if ready_sent {
            status_line(&engine)
        } else if becomes_ready {
            let r = engine.recovery();
            format!(
                "ready on {listen}; recovery replayed {} records of {} jobs in {} ms",
                r.replay_records,
                r.jobs.len(),
                r.took_ms
            )
        } else {
            recovering_line(&engine)
        };
        if !stuck.is_empty() {
            let list: Vec<String> = stuck
                .iter()
                .map(|(i, d)| format!("shard {i} stuck for {:.1} s", d.as_secs_f64()))
                .collect();
            status = format!("{}; {status}", list.join(", "));
        }
        if let Some(n) = reporter.notice() {
            status = format!("{status}; {n}");
        }
        let mut states = vec![NotifyState::Status(&status)];
        if becomes_ready {
            states.push(NotifyState::Ready);
            ready_sent = true;
            tracing::info!("ready on {listen} (READY=1 when run by systemd)");
        }
        let ids: Vec<usize> = stuck.iter().map(|s| s.0).collect();
        if ids != reported_stuck {
            let pings = watchdog.is_some();
            if ids.is_empty() {
                let then = if pings { "; watchdog pings resume" } else { "" };
                tracing::info!("every shard turns again{then}");
            } else {
                let then = if pings {
                    "; withholding the systemd watchdog ping"
                } else {
                    ""
                };
                tracing::error!(
                    "shard loop stuck: shards {ids:?} have not turned for {stall:?}{then}"
                );
            }
            reported_stuck = ids;
        }
        if watchdog.is_some() && stuck.is_empty() {
            states.push(NotifyState::Watchdog);
        }
        if !reporter.send_running(&states) {
            return;
        }
        let pause = if ready_sent { tick } else { READY_POLL };
        tokio::time::sleep(pause).await;
    }
}
