//! `sluice serve`: the daemon.
//!
//! Config file plus flag overrides; logs to journald when stderr is the
//! journal (systemd sets `JOURNAL_STREAM`), human-readable text otherwise;
//! shards on their cores and every other thread off them ([`placement`]);
//! the systemd notify protocol ([`notify`]): `READY=1` only after recovery
//! with the listener bound, `STATUS=` with live figures, `WATCHDOG=1` only
//! while every shard turns. Signals: SIGTERM/SIGINT send `STOPPING=1`, stop
//! taking connections, let requests in flight finish (bounded), then write
//! every job's final checkpoint and exit 0. SIGHUP sends `RELOADING=1`,
//! re-reads the file and applies the reloadable keys (log level, tokens,
//! limits), refusing a file that does not validate while the running
//! settings stay, then `READY=1`.
//!
//! Only `main.rs` calls [`run`]; `demo` reuses the logging and runtime
//! helpers.

mod notify;
mod placement;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

use super::ServeArgs;
use crate::config::Config;
use crate::job::engine::Engine;
use notify::Reporter;
use placement::CoreList;

/// Longest a stop waits for HTTP requests in flight. Connections still open
/// after it (dashboard event streams, record tails) are cut, so the final
/// checkpoints never wait on a browser.
const HTTP_DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Longest the runtime waits for its last tasks once the engine stopped.
const RUNTIME_SHUTDOWN_LIMIT: Duration = Duration::from_secs(2);

/// Handle to change the log filter at run time.
pub type FilterHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// True when stderr is the journal stream systemd connected us to (the
/// `JOURNAL_STREAM` device and inode match fd 2), as `systemd.exec(5)` says
/// to check: a service whose stderr was redirected elsewhere logs there.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    // SAFETY: fstat writes only into the zeroed stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    stream.to_string_lossy() == format!("{}:{}", st.st_dev, st.st_ino)
}

/// Sets up logging: journald when stderr is the journal, text on stderr
/// otherwise (coloured only on a terminal). Returns the handle that SIGHUP
/// uses to change the level.
pub fn init_tracing(level: &str) -> FilterHandle {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let journald = if stderr_is_journal() {
        tracing_journald::layer()
            .map_err(|e| eprintln!("sluice: cannot reach journald ({e}); logging to stderr"))
            .ok()
    } else {
        None
    };
    let text = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let _ = registry.with(journald).with(text).try_init();
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

/// Builds the HTTP runtime. Its threads inherit the caller's CPU mask, or
/// are confined to `cores` when given.
pub fn http_runtime(threads: usize, cores: Vec<usize>) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("sluice-http")
        .on_thread_start(move || {
            if !cores.is_empty()
                && let Err(e) = placement::confine_current_thread(&cores)
            {
                tracing::warn!("HTTP thread could not be confined to cores {cores:?}: {e}");
            }
        })
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")
}

/// Resolves CPU placement into the config and confines this thread (and so
/// every thread the engine spawns, shards excepted) to the non-shard cores.
fn place(mut config: Config) -> Result<Config> {
    let allowed =
        placement::allowed_cores().context("cannot read this process's CPU affinity mask")?;
    let place = placement::plan(&allowed, &config)?;
    for note in &place.notes {
        tracing::warn!("CPU placement: {note}");
    }
    placement::confine_current_thread(&place.other_cores).with_context(|| {
        format!(
            "cannot confine threads to cores {}",
            CoreList(place.other_cores.clone())
        )
    })?;
    tracing::info!(
        "CPU placement: shards on cores {}, HTTP and background threads on {} (process mask {})",
        CoreList(place.shard_cores.clone()),
        CoreList(place.other_cores.clone()),
        CoreList(allowed)
    );
    config.shard_cores = place.shard_cores;
    config.http_cores = place.other_cores;
    Ok(config)
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let as_given = effective_config(&args)?;
    let filter = init_tracing(&as_given.log_level);
    let config = place(as_given.clone())?;
    tracing::info!(
        "starting: data dir {}, listen {}, {} shards",
        config.data_dir.display(),
        config.listen,
        config.shard_cores.len()
    );
    let engine = Engine::start(config.clone()).context("cannot start the engine")?;
    let rt = http_runtime(config.http_threads, Vec::new())?;
    let reporter = Arc::new(Reporter::default());
    let daemon = Daemon {
        engine: engine.clone(),
        as_given,
        args,
        filter,
        reporter: reporter.clone(),
    };
    let result = rt.block_on(daemon.serve_until_signal(config.listen));
    // Also after a failure to serve: the jobs still get their checkpoints.
    reporter.stopping("stopping: final checkpoints");
    tracing::info!("stopping: writing final checkpoints and stopping the shards");
    engine.shutdown();
    rt.shutdown_timeout(RUNTIME_SHUTDOWN_LIMIT);
    match &result {
        Ok(()) => tracing::info!("stopped cleanly"),
        Err(e) => tracing::error!("stopped after an error: {e:#}"),
    }
    result
}

/// `text` with every run of whitespace (newlines of TOML error diagrams
/// included) made one space: a notify `STATUS=` is one line, and so is a
/// log line worth grepping.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the signal loop needs.
struct Daemon {
    engine: Arc<Engine>,
    /// The configuration as the file and flags gave it, before placement.
    as_given: Config,
    args: ServeArgs,
    filter: FilterHandle,
    reporter: Arc<Reporter>,
}

impl Daemon {
    async fn serve_until_signal(&self, listen: std::net::SocketAddr) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; is another sluice running?"))?;
        let addr = listener.local_addr()?;
        tracing::info!("listening on {addr}");
        // The listener is bound before the loop can say READY=1.
        tokio::spawn(notify::run(
            self.engine.clone(),
            self.reporter.clone(),
            addr,
        ));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(crate::api::serve(self.engine.clone(), listener, async {
            let _ = stop_rx.await;
        }));
        let why = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = hup.recv() => {
                    self.reporter.reloading();
                    let refused = self.reload().err();
                    self.reporter.reloaded(refused);
                }
                r = &mut server => {
                    // The server stopped by itself: that is a failure.
                    self.reporter.stopping("stopping: the HTTP server failed");
                    return match r {
                        Ok(Ok(())) => Err(anyhow::anyhow!("the HTTP server stopped unexpectedly")),
                        Ok(Err(e)) => Err(anyhow::Error::new(e).context("the HTTP server failed")),
                        Err(e) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
                    };
                }
            }
        };
        self.reporter
            .stopping("stopping: finishing HTTP requests, then final checkpoints");
        tracing::info!("{why}: stopping; no new connections, finishing requests in flight");
        let _ = stop_tx.send(());
        match tokio::time::timeout(HTTP_DRAIN_LIMIT, &mut server).await {
            Ok(Ok(r)) => r.context("the HTTP server failed while stopping")?,
            Ok(Err(e)) => tracing::warn!("the HTTP server task failed while stopping: {e}"),
            Err(_) => {
                tracing::info!(
                    "connections still open after {HTTP_DRAIN_LIMIT:?} (dashboards, tails) are closed"
                );
                server.abort();
            }
        }
        self.reporter.stop_status("stopping: final checkpoints");
        Ok(())
    }

    /// Re-reads the config file and applies the reloadable keys. On error
    /// nothing changed, and the error says why.
    fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.args.config else {
            let why = "sluice was started without --config, so there is no file to re-read";
            tracing::warn!("SIGHUP: {why}; nothing changed");
            return Err(why.into());
        };
        let mut new = match effective_config(&self.args) {
            Ok(c) => c,
            Err(e) => {
                let why = one_line(&format!("{e:#}"));
                tracing::error!(
                    "SIGHUP: new configuration in {} refused, the running one stays: {why}",
                    path.display()
                );
                return Err(why);
            }
        };
        // Placement was resolved at start; unchanged lists keep it.
        let running = self.engine.config();
        if new.shard_cores == self.as_given.shard_cores {
            new.shard_cores = running.shard_cores.clone();
        }
        if new.http_cores == self.as_given.http_cores {
            new.http_cores = running.http_cores.clone();
        }
        let filter = EnvFilter::try_new(&new.log_level)
            .map_err(|e| format!("config key `log_level`: `{}`: {e}", new.log_level))?;
        let restart = self.engine.reload(&new);
        if let Err(e) = self.filter.reload(filter) {
            tracing::warn!("log_level `{}` not applied: {e}", new.log_level);
        }
        if restart.is_empty() {
            tracing::info!("SIGHUP: configuration reloaded from {}", path.display());
        } else {
            tracing::warn!(
                "SIGHUP: configuration reloaded from {}; changes to {} apply only after a restart",
                path.display(),
                restart.join(", ")
            );
        }
        Ok(())
    }
}
