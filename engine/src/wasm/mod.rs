//! `wasm`: the sandboxed WebAssembly host that runs plugins (ABI v1,
//! `sdk/ABI.md`).
//!
//! Owns the wasmtime engine, module validation and compilation (with an
//! on-disk cache), and plugin instances. Called by the plugin registry
//! (`WasmHost::validate`) and by shards running jobs (`WasmHost::load`,
//! `Plugin::instantiate`, then `Instance::process` once per batch); it calls
//! nothing above it. Invariant: a guest can only ever fail its own call —
//! a trap, a runaway loop, a memory bomb or garbage output becomes a
//! [`PluginError`] for that call, the outputs of the call are dropped, and
//! the host, the instance and every other instance stay usable.
//!
//! Files: `host` (engine, config, acceptance of modules), `abi` (the
//! required imports and exports), `cache` (compiled code on disk), `plugin`
//! (compiled module and names), `instance` (calls into a live instance),
//! `failure` (how a failed call is explained),
//! `imports` (the `sluice.*` host functions), `state` (per-store data),
//! `batch` / `emitted` (the data crossing the boundary), `metric_table`,
//! `ticker` (epoch thread), `error`.

mod abi;
mod batch;
mod cache;
mod emitted;
mod error;
mod failure;
mod host;
mod imports;
mod instance;
mod metric_table;
mod plugin;
mod state;
mod ticker;

pub use abi::{ABI_VERSION, IMPORT_NAMESPACE, WASM_PAGE_BYTES};
pub use batch::{
    BATCH_HEADER_BYTES, Batch, BatchFull, DEFAULT_MAX_BATCH_BYTES, MAX_BATCH_BYTES,
    RECORD_HEADER_BYTES,
};
pub use cache::{CacheOutcome, CacheStats};
pub use emitted::{
    EMIT_RECORD_HEADER_BYTES, Emitted, MAX_OUTPUT_NAME_BYTES, MAX_OUTPUT_NAMES, OutputRecord,
};
pub use error::{ErrorKind, PluginError, RecordRange};
pub use host::{HostConfig, MAX_CALL_DEADLINE, WasmHost};
pub use imports::{MAX_FAIL_MESSAGE_BYTES, MAX_LOG_LINE_BYTES};
pub use instance::Instance;
pub use metric_table::{MAX_METRIC_NAME_BYTES, MAX_METRIC_NAMES, MetricKind};
pub use plugin::{InstanceLabel, ModuleInfo, Plugin, PluginId};
pub use state::MAX_TABLE_ELEMENTS;

/// The engine shares hosts and plugins between threads and moves each
/// instance to the shard thread that owns it.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    const fn movable<T: Send>() {}
    shareable::<WasmHost>();
    shareable::<Plugin>();
    movable::<Instance>();
    shareable::<PluginError>();
};
