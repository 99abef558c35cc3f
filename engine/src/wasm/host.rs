//! [`WasmHost`]: the one wasmtime engine of the process, its configuration
//! and epoch ticker, and the gate every module passes before it may run.
//!
//! Called by the plugin registry (upload: `validate`) and by jobs (start:
//! `load`). A module is accepted only if it fits the size limit, is a valid
//! core module, links against nothing but the `sluice` imports, exports
//! everything ABI v1 needs with the right signatures, and says it speaks
//! ABI version 1 when asked. Compiled code is cached on disk by digest.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstancePre, Linker, Module};

use super::abi::{self, ABI_VERSION};
use super::cache::{CacheOutcome, CacheStats, Counters, DiskCache, Lookup};
use super::error::{ErrorKind, PluginError};
use super::failure::abi_mismatch;
use super::imports;
use super::instance::Instance;
use super::plugin::{InstanceLabel, ModuleInfo, Plugin, PluginId};
use super::state::{HostState, Origin, StoreBounds};
use super::ticker::Ticker;

/// The largest linear memory a 32-bit guest can have.
const MAX_GUEST_MEMORY: usize = 1 << 32;
/// The longest call deadline accepted (keeps epoch arithmetic far from
/// overflow; a batch that needs longer is a bug, not a workload).
pub const MAX_CALL_DEADLINE: Duration = Duration::from_secs(3600);
/// Set (to anything) to have wasmtime write `/tmp/perf-<pid>.map`, so that
/// `perf report` names the functions of compiled plugins.
pub const PERF_MAP_ENV: &str = "SLUICE_PERF_MAP";

/// Limits and settings of the Wasm host.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// Most linear memory one instance may have, in bytes (at most 4 GiB).
    pub max_memory_bytes: usize,
    /// CPU deadline of every call into a guest.
    pub call_deadline: Duration,
    /// How often the epoch advances; deadlines are enforced with this
    /// granularity.
    pub epoch_tick: Duration,
    /// Where compiled modules are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of emit buffers one call may hand the host.
    pub max_output_bytes_per_call: usize,
    /// Most log lines per second one instance may write (also the burst).
    pub log_lines_per_second: u32,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            max_module_bytes: 32 << 20,
            max_memory_bytes: 256 << 20,
            call_deadline: Duration::from_secs(1),
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
            max_output_bytes_per_call: 64 << 20,
            log_lines_per_second: 100,
        }
    }
}

/// State shared by the host, its plugins and their instances. The ticker
/// runs as long as any of them is alive.
pub(crate) struct Shared {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub bounds: StoreBounds,
    pub call_deadline: Duration,
    /// Epoch ticks from the start of a call to its deadline.
    pub deadline_ticks: u64,
    max_module_bytes: usize,
    cache: Option<DiskCache>,
    counters: Counters,
    _ticker: Ticker,
}

/// The sandboxed WebAssembly host. Cheap to clone.
#[derive(Clone)]
pub struct WasmHost {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("bounds", &self.shared.bounds)
            .field("call_deadline", &self.shared.call_deadline)
            .finish_non_exhaustive()
    }
}

/// A module that passed every check.
struct Accepted {
    info: ModuleInfo,
    pre: InstancePre<HostState>,
    cache: CacheOutcome,
}

fn config_error(message: String) -> PluginError {
    PluginError::host(
        ErrorKind::Config,
        message,
        "fix the [wasm] section of the configuration",
    )
}

impl WasmHost {
    /// Creates the engine (epoch interruption on; 64-bit and multiple
    /// memories off; threads are not compiled in) and starts its epoch
    /// ticker.
    pub fn new(cfg: HostConfig) -> Result<WasmHost, PluginError> {
        if cfg.max_memory_bytes < abi::WASM_PAGE_BYTES as usize
            || cfg.max_memory_bytes > MAX_GUEST_MEMORY
        {
            return Err(config_error(format!(
                "max_memory_bytes is {}, outside 64 KiB..=4 GiB",
                cfg.max_memory_bytes
            )));
        }
        if cfg.call_deadline > MAX_CALL_DEADLINE {
            return Err(config_error(format!(
                "call_deadline is {:?}, more than the longest allowed, {MAX_CALL_DEADLINE:?} \
                 (MAX_CALL_DEADLINE)",
                cfg.call_deadline
            )));
        }
        if cfg.epoch_tick.is_zero() || cfg.epoch_tick > cfg.call_deadline {
            return Err(config_error(format!(
                "epoch_tick is {:?} and call_deadline {:?}; the tick must be above zero and at most \
                 the deadline",
                cfg.epoch_tick, cfg.call_deadline
            )));
        }
        if cfg.max_module_bytes == 0
            || cfg.max_output_bytes_per_call == 0
            || cfg.log_lines_per_second == 0
        {
            return Err(config_error(
                "max_module_bytes, max_output_bytes_per_call and log_lines_per_second must be above zero"
                    .to_string(),
            ));
        }
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .wasm_memory64(false)
            .wasm_multi_memory(false)
            .parallel_compilation(true);
        if std::env::var_os(PERF_MAP_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            // Names plugin functions for `perf report` (docs/operations.md).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine_error = |e: wasmtime::Error| {
            PluginError::host(
                ErrorKind::Host,
                format!("the WebAssembly engine could not start: {e:#}"),
                "check that the process may map executable memory (no MemoryDenyWriteExecute)",
            )
        };
        let engine = Engine::new(&config).map_err(engine_error)?;
        let linker = imports::linker(&engine).map_err(engine_error)?;
        let cache = match &cfg.cache_dir {
            None => None,
            Some(dir) => Some(DiskCache::open(dir, &engine).map_err(|e| {
                PluginError::host(
                    ErrorKind::Config,
                    format!(
                        "the plugin cache directory {} cannot be used: {e}",
                        dir.display()
                    ),
                    "create it writable for the sluice user, or unset cache_dir",
                )
            })?),
        };
        let ticker = Ticker::start(engine.clone(), cfg.epoch_tick).map_err(|e| {
            PluginError::host(
                ErrorKind::Host,
                format!("cannot start the epoch thread: {e}"),
                "check the process thread limit",
            )
        })?;
        let ticks = cfg
            .call_deadline
            .as_nanos()
            .div_ceil(cfg.epoch_tick.as_nanos());
        let shared = Shared {
            engine,
            linker,
            bounds: StoreBounds {
                max_memory_bytes: cfg.max_memory_bytes,
                max_output_bytes_per_call: cfg.max_output_bytes_per_call,
                log_lines_per_second: cfg.log_lines_per_second,
            },
            call_deadline: cfg.call_deadline,
            // One extra tick: the first may come right after the deadline is set.
            deadline_ticks: u64::try_from(ticks).unwrap_or(u64::MAX / 2) + 1,
            max_module_bytes: cfg.max_module_bytes,
            cache,
            counters: Counters::default(),
            _ticker: ticker,
        };
        Ok(WasmHost {
            shared: Arc::new(shared),
        })
    }

    /// Checks that `bytes` is a plugin this host can run (see the module
    /// docs) and describes it. Caches the compiled code as a side effect.
    pub fn validate(&self, id: &PluginId, bytes: &[u8]) -> Result<ModuleInfo, PluginError> {
        self.accept(id, bytes).map(|accepted| accepted.info)
    }

    /// Validates and compiles (or loads from the disk cache) `bytes`, ready
    /// to be instantiated.
    pub fn load(&self, id: PluginId, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let accepted = self.accept(&id, bytes)?;
        Ok(Arc::new(Plugin::new(
            id,
            accepted.info,
            accepted.pre,
            Arc::clone(&self.shared),
            accepted.cache,
        )))
    }

    /// How loads were served by the disk cache since the host started.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.counters.snapshot()
    }

    /// The cache file that holds (or would hold) the compiled code of the
    /// module with `digest`; `None` without a cache directory.
    pub fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        self.shared.cache.as_ref().map(|c| c.path(digest))
    }

    fn accept(&self, id: &PluginId, bytes: &[u8]) -> Result<Accepted, PluginError> {
        let shared = &self.shared;
        let invalid =
            |message: String, hint: &str| PluginError::new(id, ErrorKind::Invalid, message, hint);
        if bytes.len() > shared.max_module_bytes {
            return Err(invalid(
                format!(
                    "is {} bytes, more than the limit of {} bytes per module (max_module_bytes)",
                    bytes.len(),
                    shared.max_module_bytes
                ),
                "shrink the plugin (release build, opt-level \"s\", strip debug info) or raise \
                 the host's max_module_bytes",
            ));
        }
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {}
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => {
                return Err(invalid(
                    "is a WebAssembly component; Sluice plugins are core modules".to_string(),
                    abi::BUILD_HINT,
                ));
            }
            _ => {
                return Err(invalid(
                    "is not a WebAssembly module (it does not start with `\\0asm` version 1)"
                        .to_string(),
                    "upload the .wasm file that cargo builds for wasm32-unknown-unknown",
                ));
            }
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let (module, cache) = self.compile(id, bytes, &digest)?;
        let shape = abi::check_module(id, &module, shared.bounds.max_memory_bytes)?;
        let pre = shared.linker.instantiate_pre(&module).map_err(|e| {
            invalid(
                format!("cannot be linked against the host: {e:#}"),
                abi::BUILD_HINT,
            )
        })?;
        let origin = Arc::new(Origin {
            plugin: id.clone(),
            label: InstanceLabel::new("(validation)", 0, 0),
        });
        let version = Instance::create(shared, &pre, origin)
            .and_then(|mut probe| probe.abi_version())
            .map_err(PluginError::without_instance)?;
        if version != ABI_VERSION {
            return Err(abi_mismatch(id, version));
        }
        if let (Some(disk), CacheOutcome::Miss | CacheOutcome::Rebuilt) = (&shared.cache, cache)
            && let Err(e) = disk.store(&digest, &module)
        {
            shared.counters.count_write_failure();
            tracing::warn!(plugin = %id, %digest, "compiled plugin not cached: {e}");
        }
        shared.counters.count(cache);
        let info = ModuleInfo {
            digest,
            size: bytes.len(),
            abi_version: version,
            exports: shape.exports,
            imports: shape.imports,
        };
        Ok(Accepted { info, pre, cache })
    }

    fn compile(
        &self,
        id: &PluginId,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Module, CacheOutcome), PluginError> {
        let engine = &self.shared.engine;
        let outcome = match &self.shared.cache {
            None => CacheOutcome::Disabled,
            Some(disk) => match disk.lookup(engine, digest) {
                Lookup::Hit(module) => return Ok((module, CacheOutcome::Hit)),
                Lookup::Absent => CacheOutcome::Miss,
                Lookup::Corrupt(why) => {
                    tracing::warn!(plugin = %id, %digest, "ignoring corrupt plugin cache file: {why}");
                    CacheOutcome::Rebuilt
                }
            },
        };
        let module = Module::new(engine, bytes).map_err(|e| {
            PluginError::new(
                id,
                ErrorKind::Invalid,
                format!("is not a valid WebAssembly module: {e:#}"),
                "rebuild it for wasm32-unknown-unknown with sluice-sdk, and check the upload is complete",
            )
        })?;
        Ok((module, outcome))
    }
}
