//! The server configuration (`sluice.toml`): one loader, every key documented
//! in `systemd/sluice.toml` and `docs/configuration.md`.
//!
//! `serve` reads it once at start; on SIGHUP only the keys marked
//! *reloadable* (log level, tokens, limits) are applied, and a file that does
//! not parse or validate is refused while the running settings stay.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything `sluice serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where topics, plugins, jobs and checkpoints live.
    pub data_dir: PathBuf,
    /// Address of the HTTP API and dashboard.
    pub listen: SocketAddr,
    /// Listening beyond loopback with no admin token is refused unless this is
    /// set: anyone who can reach the port could then upload code.
    pub allow_remote_without_token: bool,
    /// Number of shards (threads that own partitions). 0 = one per core in
    /// `shard_cores`, or one per available core if that is empty.
    pub shards: usize,
    /// Cores to pin shard threads to, in order (match systemd's CPUAffinity).
    /// Empty = cores 0..shards.
    pub shard_cores: Vec<usize>,
    /// Cores for the HTTP runtime threads. Empty = any core not in
    /// `shard_cores` when there is one, else unpinned.
    pub http_cores: Vec<usize>,
    /// Worker threads of the HTTP runtime.
    pub http_threads: usize,
    /// Reloadable. A `tracing` filter, e.g. `info` or `sluice=debug,info`.
    pub log_level: String,
    /// Reloadable.
    pub auth: Auth,
    /// Reloadable, except the queue, lag and quota bounds (fixed at start).
    pub limits: Limits,
    pub wasm: WasmLimits,
    /// Settings of topics created without their own.
    pub topic_defaults: TopicDefaults,
    /// Switches for tests; never on in production.
    pub testing: Testing,
}

/// Test-only switches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Testing {
    /// Enables `POST /api/v1/debug/hang` and `POST /api/v1/debug/panic` (admin
    /// token required), which wedge a shard or make it panic so tests can watch the
    /// watchdog fire and shards recover. Off: 404.
    pub fault_injection: bool,
}

/// Bearer tokens. An empty token means "not required" for ingest and read;
/// the admin token guards everything that changes state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub admin_token: String,
    pub ingest_token: String,
    pub read_token: String,
}

/// Bounds on what a request may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest HTTP request body accepted (ingest, uploads), bytes.
    pub max_body_bytes: usize,
    /// Most records in one ingest request.
    pub max_batch_records: usize,
    /// Largest single record value, bytes.
    pub max_record_bytes: usize,
    /// Ingest batches waiting per shard before ingest answers "retry later".
    pub ingest_queue_batches: usize,
    /// A shard stops taking ingest while some job lags this many records
    /// behind on one of its partitions.
    pub max_lag_records: u64,
    /// Total bytes the log may hold; appends beyond fail. 0 = no quota.
    pub log_quota_bytes: u64,
}

/// The plugin sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmLimits {
    pub max_module_bytes: usize,
    pub max_memory_bytes: usize,
    pub call_deadline_ms: u64,
}

/// Defaults for new topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicDefaults {
    pub partitions: u32,
    /// `always`, `never` or `interval(5ms)`.
    pub fsync: String,
    pub segment_bytes: u64,
    /// 0 = keep forever.
    pub retention_ms: u64,
    /// 0 = no size bound.
    pub retention_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/sluice"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            allow_remote_without_token: false,
            shards: 0,
            shard_cores: Vec::new(),
            http_cores: Vec::new(),
            http_threads: 2,
            log_level: "info".into(),
            auth: Auth::default(),
            limits: Limits::default(),
            wasm: WasmLimits::default(),
            topic_defaults: TopicDefaults::default(),
            testing: Testing::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            max_batch_records: 100_000,
            max_record_bytes: 1 << 20,
            ingest_queue_batches: 1_024,
            max_lag_records: 50_000_000,
            log_quota_bytes: 0,
        }
    }
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            max_module_bytes: 32 << 20,
            max_memory_bytes: 256 << 20,
            call_deadline_ms: 2_000,
        }
    }
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            partitions: 4,
            fsync: "interval(5ms)".into(),
            segment_bytes: 128 << 20,
            retention_ms: 0,
            retention_bytes: 0,
        }
    }
}

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Number of shards this config asks for on a machine with `cores` cores.
    pub fn shard_count(&self, cores: usize) -> usize {
        match (self.shards, self.shard_cores.len()) {
            (0, 0) => cores.max(1),
            (0, n) => n,
            (s, _) => s,
        }
    }

    /// Checks everything that can be checked without the machine.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.ip().is_loopback()
            && self.auth.admin_token.is_empty()
            && !self.allow_remote_without_token
        {
            return Err(invalid(
                "listen",
                format!(
                    "{} is reachable from other machines but `auth.admin_token` is empty; \
                     set a token, listen on 127.0.0.1, or set allow_remote_without_token = true",
                    self.listen
                ),
            ));
        }
        if self.shards > 1024 {
            return Err(invalid("shards", "at most 1024 shards"));
        }
        if self.shards != 0 && !self.shard_cores.is_empty() && self.shards > self.shard_cores.len()
        {
            return Err(invalid(
                "shards",
                format!(
                    "{} shards but only {} cores in shard_cores; list one core per shard",
                    self.shards,
                    self.shard_cores.len()
                ),
            ));
        }
        if self.http_threads == 0 || self.http_threads > 256 {
            return Err(invalid("http_threads", "must be 1 to 256"));
        }
        self.log_level
            .parse::<tracing_subscriber::EnvFilter>()
            .map_err(|e| invalid("log_level", format!("`{}`: {e}", self.log_level)))?;
        for (key, token) in [
            ("auth.admin_token", &self.auth.admin_token),
            ("auth.ingest_token", &self.auth.ingest_token),
            ("auth.read_token", &self.auth.read_token),
        ] {
            if !token.is_empty()
                && (token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(invalid(
                    key,
                    "tokens must be at least 16 printable characters without spaces",
                ));
            }
        }
        let l = &self.limits;
        if l.max_body_bytes < 1024 {
            return Err(invalid("limits.max_body_bytes", "must be at least 1024"));
        }
        if l.max_batch_records == 0 {
            return Err(invalid("limits.max_batch_records", "must be at least 1"));
        }
        if l.max_record_bytes == 0 || l.max_record_bytes > 64 << 20 {
            return Err(invalid(
                "limits.max_record_bytes",
                "must be 1 byte to 64 MiB",
            ));
        }
        if l.ingest_queue_batches == 0 {
            return Err(invalid("limits.ingest_queue_batches", "must be at least 1"));
        }
        let w = &self.wasm;
        if w.max_memory_bytes < 1 << 20 || w.max_memory_bytes > 4 << 30 {
            return Err(invalid("wasm.max_memory_bytes", "must be 1 MiB to 4 GiB"));
        }
        if w.call_deadline_ms == 0 || w.call_deadline_ms > 600_000 {
            return Err(invalid(
                "wasm.call_deadline_ms",
                "must be 1 ms to 10 minutes",
            ));
        }
        if w.max_module_bytes < 1024 {
            return Err(invalid("wasm.max_module_bytes", "must be at least 1024"));
        }
        let t = &self.topic_defaults;
        if t.partitions == 0 || t.partitions > 4096 {
            return Err(invalid("topic_defaults.partitions", "must be 1 to 4096"));
        }
        Ok(())
    }

    /// Applies the reloadable keys of `new`; returns the names of keys that
    /// differ but need a restart.
    pub fn reload_from(&mut self, new: &Config) -> Vec<&'static str> {
        self.log_level = new.log_level.clone();
        self.auth = new.auth.clone();
        let mut restart = Vec::new();
        // Sized or handed to the shards and the log at start: these limits
        // keep their running values until a restart.
        let old = std::mem::replace(&mut self.limits, new.limits.clone());
        if old.ingest_queue_batches != new.limits.ingest_queue_batches {
            restart.push("limits.ingest_queue_batches");
            self.limits.ingest_queue_batches = old.ingest_queue_batches;
        }
        if old.max_lag_records != new.limits.max_lag_records {
            restart.push("limits.max_lag_records");
            self.limits.max_lag_records = old.max_lag_records;
        }
        if old.log_quota_bytes != new.limits.log_quota_bytes {
            restart.push("limits.log_quota_bytes");
            self.limits.log_quota_bytes = old.log_quota_bytes;
        }
        if self.data_dir != new.data_dir {
            restart.push("data_dir");
        }
        if self.listen != new.listen {
            restart.push("listen");
        }
        if self.shards != new.shards || self.shard_cores != new.shard_cores {
            restart.push("shards");
        }
        if self.http_cores != new.http_cores || self.http_threads != new.http_threads {
            restart.push("http_cores");
        }
        if self.wasm != new.wasm {
            restart.push("wasm");
        }
        if self.topic_defaults != new.topic_defaults {
            restart.push("topic_defaults");
        }
        if self.testing != new.testing {
            restart.push("testing");
        }
        restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
    }

    #[test]
    fn remote_listen_without_token_is_refused_with_the_way_out() {
        let c: Config = toml::from_str("listen = \"0.0.0.0:7070\"").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("admin_token") && e.contains("127.0.0.1"), "{e}");
        let c: Config =
            toml::from_str("listen = \"0.0.0.0:7070\"\n[auth]\nadmin_token = \"0123456789abcdef\"")
                .unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<Config>("shard = 2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("shard"), "{e}");
        let c: Config = toml::from_str("log_level = \"[[[\"").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("log_level"));
        let c: Config = toml::from_str("[auth]\nadmin_token = \"short\"").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("16"));
    }

    #[test]
    fn reload_applies_only_reloadable_keys() {
        let mut c = Config::default();
        let mut n = Config {
            log_level: "debug".into(),
            shards: 3,
            ..Config::default()
        };
        n.limits.max_body_bytes = 4096;
        let restart = c.reload_from(&n);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.limits.max_body_bytes, 4096);
        assert_eq!(c.shards, 0);
        assert_eq!(restart, vec!["shards"]);
        // Limits fixed at start keep their running value and are named.
        let mut n = c.clone();
        n.limits.max_lag_records = 7;
        n.limits.max_record_bytes = 2048;
        let restart = c.reload_from(&n);
        assert_eq!(restart, vec!["limits.max_lag_records"]);
        assert_eq!(c.limits.max_lag_records, Limits::default().max_lag_records);
        assert_eq!(c.limits.max_record_bytes, 2048);
    }

    #[test]
    fn shard_count_follows_cores() {
        let mut c = Config::default();
        assert_eq!(c.shard_count(8), 8);
        c.shard_cores = vec![2, 3];
        assert_eq!(c.shard_count(8), 2);
        c.shards = 1;
        assert_eq!(c.shard_count(8), 1);
    }
}
