//! `sluice serve`: the daemon. Config file plus flag overrides, logging to
//! journald under systemd (human-readable otherwise), the HTTP runtime on
//! its own cores, and the systemd notify protocol: READY=1 only after
//! recovery and listening, STATUS= with live figures, WATCHDOG=1 only while
//! every shard turns, STOPPING=1 then a graceful stop on SIGTERM, and
//! RELOADING=1 on SIGHUP (a bad file is refused and the running settings
//! stay).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use sd_notify::NotifyState;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

use super::ServeArgs;
use crate::config::Config;
use crate::job::engine::Engine;

/// Handle to change the log filter at run time.
pub type FilterHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Sets up logging: journald when started by systemd, text on stderr
/// otherwise. Returns the handle that SIGHUP uses to change the level.
pub fn init_tracing(level: &str) -> FilterHandle {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    match journald {
        Some(j) => {
            let _ = registry.with(j).try_init();
        }
        None => {
            let _ = registry
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init();
        }
    }
    handle
}

/// The config from the file (if any) with the flags applied on top.
pub fn effective_config(args: &ServeArgs) -> Result<Config> {
    let mut c = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(d) = &args.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if let Some(s) = args.shards {
        c.shards = s;
    }
    if let Some(t) = &args.admin_token {
        c.auth.admin_token = t.clone();
    }
    if let Some(b) = args.max_body_bytes {
        c.limits.max_body_bytes = b;
    }
    if let Some(b) = args.max_batch_records {
        c.limits.max_batch_records = b;
    }
    if let Some(l) = &args.log_level {
        c.log_level = l.clone();
    }
    c.validate()?;
    Ok(c)
}

/// Cores for the HTTP runtime: the configured ones, else those not running
/// shards (if any are left).
fn http_cores(c: &Config, shards: &[Option<usize>]) -> Vec<usize> {
    if !c.http_cores.is_empty() {
        return c.http_cores.clone();
    }
    let all: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let free: Vec<usize> = all
        .iter()
        .copied()
        .filter(|id| !shards.contains(&Some(*id)))
        .collect();
    free
}

/// Builds the HTTP runtime with its threads pinned away from the shards.
pub fn http_runtime(threads: usize, cores: Vec<usize>) -> Result<tokio::runtime::Runtime> {
    let cores = Arc::new(cores);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("sluice-http")
        .on_thread_start(move || {
            if !cores.is_empty() {
                let i = next.fetch_add(1, Ordering::Relaxed) % cores.len();
                core_affinity::set_for_current(core_affinity::CoreId { id: cores[i] });
            }
        })
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")
}

fn notify(state: &[NotifyState]) {
    // Outside systemd there is no socket; that is not an error.
    let _ = sd_notify::notify(false, state);
}

/// One line of live figures for `systemctl status`.
fn status_line(engine: &Engine) -> String {
    let jobs = engine.jobs();
    let running = jobs.iter().filter(|j| j.2.is_some()).count();
    let rate: f64 = jobs
        .iter()
        .filter_map(|j| j.2.as_ref())
        .map(|rt| f64::from_bits(rt.stats.rate_in.load(Ordering::Relaxed)))
        .sum();
    let lag: u64 = jobs
        .iter()
        .filter_map(|j| j.2.as_ref())
        .map(|rt| rt.lag())
        .sum();
    format!("{running} jobs running, {rate:.0} records/s, lag {lag}")
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let config = effective_config(&args)?;
    let filter = init_tracing(&config.log_level);
    tracing::info!(data_dir = %config.data_dir.display(), listen = %config.listen, "starting");
    let engine = Engine::start(config.clone()).context("cannot start the engine")?;
    let shard_cores: Vec<Option<usize>> = engine.shards().iter().map(|s| s.core).collect();
    let rt = http_runtime(config.http_threads, http_cores(&config, &shard_cores))?;
    let config_path = args.config.clone();
    let result = rt.block_on(serve_until_signal(
        engine.clone(),
        config,
        config_path,
        args,
        filter,
    ));
    notify(&[NotifyState::Stopping]);
    tracing::info!("stopping: final checkpoints");
    engine.shutdown();
    tracing::info!("stopped");
    result
}

async fn serve_until_signal(
    engine: Arc<Engine>,
    config: Config,
    config_path: Option<PathBuf>,
    args: ServeArgs,
    filter: FilterHandle,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another sluice running?",
                config.listen
            )
        })?;
    tracing::info!(addr = %config.listen, "listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;

    // Notify loop: READY once recovered and listening; STATUS and WATCHDOG
    // every second; the watchdog ping stops while any shard is stuck.
    let e = engine.clone();
    let mut watchdog_usec = 0u64;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
    let tick = if watchdog {
        Duration::from_micros(watchdog_usec / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    } else {
        Duration::from_secs(1)
    };
    tokio::spawn(async move {
        let mut ready_sent = false;
        loop {
            if !ready_sent && e.is_ready() {
                let r = e.recovery();
                let status = format!(
                    "ready; recovery replayed {} records in {} ms",
                    r.replay_records, r.took_ms
                );
                notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
                ready_sent = true;
            } else if ready_sent {
                notify(&[NotifyState::Status(&status_line(&e))]);
            }
            let alive = e.shards_alive(
                e.stall_limit()
                    .min(Duration::from_micros(watchdog_usec.max(1)) / 2)
                    .max(tick * 3),
            );
            if watchdog && alive.iter().all(|a| *a) {
                notify(&[NotifyState::Watchdog]);
            } else if watchdog {
                tracing::error!(?alive, "a shard is stuck; withholding the watchdog ping");
            }
            tokio::time::sleep(tick).await;
        }
    });

    let e = engine.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    let now = sd_notify::NotifyState::monotonic_usec_now().ok();
                    let mut st = vec![NotifyState::Reloading];
                    if let Some(n) = now { st.push(n); }
                    notify(&st);
                    reload(&e, config_path.as_deref(), &args, &filter);
                    notify(&[NotifyState::Ready]);
                }
            }
        }
        let _ = stop_tx.send(());
    });
    crate::api::serve(engine, listener, async {
        let _ = stop_rx.await;
    })
    .await?;
    Ok(())
}

/// Re-reads the config file and applies the reloadable keys.
fn reload(
    engine: &Engine,
    path: Option<&std::path::Path>,
    args: &ServeArgs,
    filter: &FilterHandle,
) {
    let Some(_) = path else {
        tracing::warn!("SIGHUP: no --config file to re-read; nothing changed");
        return;
    };
    match effective_config(args) {
        Ok(new) => {
            let restart = engine.reload(&new);
            match EnvFilter::try_new(&new.log_level) {
                Ok(f) => {
                    let _ = filter.reload(f);
                }
                Err(e) => tracing::warn!(error = %e, "log_level not applied"),
            }
            if restart.is_empty() {
                tracing::info!("configuration reloaded");
            } else {
                tracing::warn!(keys = ?restart, "configuration reloaded; these keys need a restart to apply");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: new configuration refused; the running one stays")
        }
    }
}
