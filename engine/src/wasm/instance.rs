//! [`Instance`]: one live plugin instance, owned by one (job, operator, shard)
//! and called from that shard's thread.
//!
//! Each public call sets a fresh CPU deadline, stages everything the guest
//! does through imports, and settles: on success the staged outputs, timers
//! and metrics take effect; on failure they are dropped and the call returns
//! a [`PluginError`] naming the plugin, instance, function and records. A
//! failed call leaves the instance callable. Per call the hot path is: one
//! `sluice_buffer` call, one copy of the batch into guest memory, one
//! `sluice_process` call, and one copy of each emitted record into `Emitted`.

use std::sync::Arc;

use wasmtime::{Memory, Store, TypedFunc};

use super::abi::{self, ABI_VERSION};
use super::batch::Batch;
use super::emitted::{Emitted, Mark};
use super::error::{ErrorKind, PluginError, RecordRange};
use super::failure::{Failure, abi_mismatch, explain, status};
use super::host::Shared;
use super::metric_table::MetricKind;
use super::state::{HostState, Origin};

/// The guest exports, typed once at instantiation.
struct Exports {
    abi_version: TypedFunc<(), i32>,
    buffer: TypedFunc<i32, i32>,
    init: TypedFunc<(i32, i32), i32>,
    process: TypedFunc<(i32, i32), i32>,
    watermark: TypedFunc<i64, i32>,
    snapshot: TypedFunc<(), i64>,
    restore: TypedFunc<(i32, i32), i32>,
}

/// A live, sandboxed plugin instance.
pub struct Instance {
    store: Store<HostState>,
    memory: Memory,
    exports: Exports,
    origin: Arc<Origin>,
    shared: Arc<Shared>,
    /// Whether any call beyond init was made (restore must come first).
    started: bool,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.origin.plugin)
            .field("label", &self.origin.label)
            .field("memory_bytes", &self.memory_bytes())
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Creates the store, instantiates the template and types the exports.
    /// Runs no export.
    pub(crate) fn create(
        shared: &Arc<Shared>,
        pre: &wasmtime::InstancePre<HostState>,
        origin: Arc<Origin>,
    ) -> Result<Instance, PluginError> {
        let mut store = Store::new(
            &shared.engine,
            HostState::new(Arc::clone(&origin), shared.bounds),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(shared.deadline_ticks);
        let instance = match pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => {
                return Err(
                    explain(store.data_mut(), shared, "instantiate", Failure::Wasm(e))
                        .in_instance(&origin.label),
                );
            }
        };
        let missing = |name: &str, e: wasmtime::Error| {
            PluginError::new(
                &origin.plugin,
                ErrorKind::Invalid,
                format!("has no usable export `{name}`: {e}"),
                abi::BUILD_HINT,
            )
        };
        let memory = instance
            .get_memory(&mut store, abi::MEMORY)
            .ok_or_else(|| missing(abi::MEMORY, wasmtime::Error::msg("not a memory")))?;
        macro_rules! typed {
            ($name:expr) => {
                instance
                    .get_typed_func(&mut store, $name)
                    .map_err(|e| missing($name, e))?
            };
        }
        let exports = Exports {
            abi_version: typed!(abi::ABI_VERSION_FN),
            buffer: typed!(abi::BUFFER_FN),
            init: typed!(abi::INIT_FN),
            process: typed!(abi::PROCESS_FN),
            watermark: typed!(abi::WATERMARK_FN),
            snapshot: typed!(abi::SNAPSHOT_FN),
            restore: typed!(abi::RESTORE_FN),
        };
        store.data_mut().memory = Some(memory);
        Ok(Instance {
            store,
            memory,
            exports,
            origin,
            shared: Arc::clone(shared),
            started: false,
        })
    }

    /// Calls `sluice_abi_version` and returns what the guest says.
    pub(crate) fn abi_version(&mut self) -> Result<u32, PluginError> {
        self.begin(abi::ABI_VERSION_FN, false);
        let result = self.exports.abi_version.call(&mut self.store, ());
        let result = result.map(|v| v as u32).map_err(Failure::Wasm);
        self.settle(abi::ABI_VERSION_FN, result, &[], None)
    }

    /// Checks the ABI version, then calls `sluice_init` with `config`.
    pub(crate) fn init(&mut self, config: &[u8]) -> Result<(), PluginError> {
        let version = self.abi_version()?;
        if version != ABI_VERSION {
            return Err(abi_mismatch(&self.origin.plugin, version).in_instance(&self.origin.label));
        }
        self.begin(abi::INIT_FN, false);
        let result = self
            .pass_bytes(config)
            .and_then(|(ptr, len)| status(self.exports.init.call(&mut self.store, (ptr, len))));
        self.settle(abi::INIT_FN, result, &[], None)
    }

    /// Processes one batch; the records the guest emits are appended to
    /// `out` only if the call succeeds.
    pub fn process(&mut self, batch: &Batch, out: &mut Emitted) -> Result<(), PluginError> {
        self.started = true;
        self.begin(abi::PROCESS_FN, true);
        let mark = out.mark();
        std::mem::swap(&mut self.store.data_mut().out, out);
        let result = self
            .pass_bytes(batch.as_bytes())
            .and_then(|(ptr, len)| status(self.exports.process.call(&mut self.store, (ptr, len))));
        std::mem::swap(&mut self.store.data_mut().out, out);
        self.settle(abi::PROCESS_FN, result, batch.ranges(), Some((out, mark)))
    }

    /// Tells the guest the watermark is now `watermark`. The pending timer
    /// request is forgotten just before the call (restored if it fails); the
    /// records the guest emits are appended to `out` only on success.
    pub fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<(), PluginError> {
        self.started = true;
        let forgotten = self.store.data_mut().next_timer.take();
        self.begin(abi::WATERMARK_FN, true);
        let mark = out.mark();
        std::mem::swap(&mut self.store.data_mut().out, out);
        let result = status(self.exports.watermark.call(&mut self.store, watermark));
        std::mem::swap(&mut self.store.data_mut().out, out);
        let settled = self.settle(abi::WATERMARK_FN, result, &[], Some((out, mark)));
        if settled.is_err() {
            self.store.data_mut().next_timer = forgotten;
        }
        settled
    }

    /// The earliest timer requested by successful calls since the last
    /// `on_watermark`: call `on_watermark` once the watermark reaches it.
    pub fn next_timer(&self) -> Option<i64> {
        self.store.data().next_timer
    }

    /// Asks the guest to serialize all its state.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, PluginError> {
        self.started = true;
        self.begin(abi::SNAPSHOT_FN, false);
        let result = match self.exports.snapshot.call(&mut self.store, ()) {
            Err(e) => Err(Failure::Wasm(e)),
            Ok(-1) => Err(Failure::Failed),
            Ok(packed) => {
                let (ptr, len) = (
                    (packed as u64 >> 32) as usize,
                    packed as u64 as u32 as usize,
                );
                let memory = self.memory.data(&self.store);
                match ptr.checked_add(len).and_then(|end| memory.get(ptr..end)) {
                    Some(bytes) => Ok(bytes.to_vec()),
                    None => Err(Failure::Refused(
                        ErrorKind::GarbageOutput,
                        format!(
                            "returned a snapshot at {ptr}..+{len}, outside its {}-byte memory",
                            memory.len()
                        ),
                        "return (ptr << 32) | len of bytes inside guest memory, as sdk/ABI.md says",
                    )),
                }
            }
        };
        self.settle(abi::SNAPSHOT_FN, result, &[], None)
    }

    /// Replaces the guest's state by a snapshot. Must come before any
    /// `process`, `on_watermark` or `snapshot` call on this instance.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        if self.started {
            return Err(PluginError::new(
                &self.origin.plugin,
                ErrorKind::Usage,
                "was asked to restore a snapshot after it had already run",
                "restore right after instantiate; to roll an instance back, create a new one",
            )
            .in_instance(&self.origin.label)
            .in_function(abi::RESTORE_FN));
        }
        self.started = true;
        self.begin(abi::RESTORE_FN, false);
        let result = self
            .pass_bytes(bytes)
            .and_then(|(ptr, len)| status(self.exports.restore.call(&mut self.store, (ptr, len))));
        self.settle(abi::RESTORE_FN, result, &[], None)
    }

    /// Current size of the guest's linear memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// Hands every counter (as the amount added since the last drain) and
    /// gauge (as its last value) the guest updated since the last drain.
    pub fn drain_metrics(&mut self, f: impl FnMut(MetricKind, &str, i64)) {
        self.store.data_mut().metrics.drain(f);
    }

    /// Log lines dropped by the rate limit since the instance started.
    pub fn logs_suppressed(&self) -> u64 {
        self.store.data().log.total_suppressed
    }

    /// The (job, operator, shard) this instance serves.
    pub fn label(&self) -> &super::plugin::InstanceLabel {
        &self.origin.label
    }

    fn begin(&mut self, function: &'static str, emit_allowed: bool) {
        let state = self.store.data_mut();
        state.call.begin(function, emit_allowed);
        state.limiter.denied_growth = None;
        self.store.set_epoch_deadline(self.shared.deadline_ticks);
    }

    /// Asks the guest for a buffer of `bytes.len()` bytes and copies `bytes`
    /// into it. Empty input is asked for too (the guest then sees its own
    /// pointer, never a null one it did not hand out), and any pointer is
    /// accepted for it.
    fn pass_bytes(&mut self, bytes: &[u8]) -> Result<(i32, i32), Failure> {
        let Ok(len) = i32::try_from(bytes.len()) else {
            return Err(Failure::Refused(
                ErrorKind::Usage,
                format!(
                    "was to receive {} bytes, more than ABI v1 can address",
                    bytes.len()
                ),
                "send smaller batches or snapshots",
            ));
        };
        let ptr = self
            .exports
            .buffer
            .call(&mut self.store, len)
            .map_err(Failure::Wasm)?;
        if bytes.is_empty() {
            return Ok((ptr, 0));
        }
        if ptr == 0 {
            let grew = self.store.data().limiter.denied_growth.is_some();
            return Err(Failure::Refused(
                if grew {
                    ErrorKind::MemoryLimit
                } else {
                    ErrorKind::GuestError
                },
                format!(
                    "`sluice_buffer({len})` returned 0: the guest could not allocate room for {len} bytes"
                ),
                "send smaller batches, reduce the operator's memory use, or raise max_memory_bytes",
            ));
        }
        let memory = self.memory.data_mut(&mut self.store);
        let start = ptr as u32 as usize;
        match memory.get_mut(start..start + bytes.len()) {
            Some(dest) => {
                dest.copy_from_slice(bytes);
                Ok((ptr, len))
            }
            None => {
                let size = memory.len();
                Err(Failure::Refused(
                    ErrorKind::GarbageOutput,
                    format!(
                        "`sluice_buffer({len})` returned {start}, leaving no room for {len} bytes in its {size}-byte memory"
                    ),
                    "return a pointer to `len` writable bytes, as sdk/ABI.md says",
                ))
            }
        }
    }

    /// Applies or drops what the call staged, and explains a failure.
    fn settle<T>(
        &mut self,
        function: &'static str,
        result: Result<T, Failure>,
        records: &[RecordRange],
        out: Option<(&mut Emitted, Mark)>,
    ) -> Result<T, PluginError> {
        let state = self.store.data_mut();
        state.call.end();
        match result {
            Ok(value) => {
                if let Some(ts) = state.call.timer {
                    state.next_timer = Some(state.next_timer.map_or(ts, |t| t.min(ts)));
                }
                state.metrics.commit();
                Ok(value)
            }
            Err(failure) => {
                state.metrics.rollback();
                if let Some((out, mark)) = out {
                    out.truncate(mark);
                }
                Err(explain(state, &self.shared, function, failure)
                    .in_function(function)
                    .in_instance(&self.origin.label)
                    .with_records(records))
            }
        }
    }
}
