//! [`HostState`]: the data wasmtime keeps in each instance's `Store`, shared
//! between the host's call machinery (`instance.rs`) and the host functions
//! the guest imports (`imports.rs`).
//!
//! Everything a guest does through an import during a call is staged here
//! (`CallState`) and only takes effect when the call succeeds; a failed call
//! is rolled back. The limiter records whether it refused a memory growth in
//! the current call, so a trap that follows can be reported as what it is.

use std::sync::Arc;

use wasmtime::{Memory, ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use super::emitted::Emitted;
use super::error::ErrorKind;
use super::imports::LogGate;
use super::metric_table::MetricTable;
use super::plugin::{InstanceLabel, PluginId};

/// Most elements a guest table may grow to (Rust plugins need a few
/// thousand function-table slots at most).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 18;

/// Which plugin instance a store belongs to, for errors and logs.
#[derive(Debug)]
pub(crate) struct Origin {
    pub plugin: PluginId,
    pub label: InstanceLabel,
}

/// Refusal by a host function of what the guest asked, kept so the failed
/// call reports it rather than the generic trap it causes.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: &'static str,
}

/// What the guest did through imports during the current call.
#[derive(Debug, Default)]
pub(crate) struct CallState {
    /// The export being called; `None` outside calls (e.g. start functions).
    pub function: Option<&'static str>,
    /// Whether `emit` is allowed (only in `process` and `on_watermark`).
    pub emit_allowed: bool,
    /// Bytes of emit buffers accepted in this call.
    pub emitted_bytes: usize,
    /// Earliest timer requested in this call.
    pub timer: Option<i64>,
    /// The last message passed to `fail`, if any.
    pub fail_message: Option<String>,
    /// Why a host function refused the guest, if one did.
    pub fault: Option<Fault>,
}

impl CallState {
    pub(crate) fn begin(&mut self, function: &'static str, emit_allowed: bool) {
        self.function = Some(function);
        self.emit_allowed = emit_allowed;
        self.emitted_bytes = 0;
        self.timer = None;
        self.fail_message = None;
        self.fault = None;
    }

    pub(crate) fn end(&mut self) {
        self.function = None;
        self.emit_allowed = false;
    }
}

/// The per-instance memory and table limits, remembering refusals.
pub(crate) struct Limiter {
    limits: StoreLimits,
    /// The size a refused memory growth asked for, since the call began.
    pub denied_growth: Option<usize>,
}

impl Limiter {
    fn new(max_memory_bytes: usize) -> Limiter {
        let limits = StoreLimitsBuilder::new()
            .memory_size(max_memory_bytes)
            .table_elements(MAX_TABLE_ELEMENTS)
            .instances(1)
            .memories(1)
            .tables(4)
            .build();
        Limiter {
            limits,
            denied_growth: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.denied_growth = Some(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The bounds a store enforces on its guest's imports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreBounds {
    pub max_memory_bytes: usize,
    pub max_output_bytes_per_call: usize,
    pub log_lines_per_second: u32,
}

/// The data of one instance's `Store`.
pub(crate) struct HostState {
    pub origin: Arc<Origin>,
    pub limiter: Limiter,
    pub bounds: StoreBounds,
    /// The guest's exported memory, set right after instantiation.
    pub memory: Option<Memory>,
    pub call: CallState,
    /// Where `emit` appends: the caller's `Emitted`, swapped in for the call.
    pub out: Emitted,
    /// Earliest timer requested by successful calls since the last
    /// `on_watermark`.
    pub next_timer: Option<i64>,
    pub metrics: MetricTable,
    pub log: LogGate,
}

impl HostState {
    pub(crate) fn new(origin: Arc<Origin>, bounds: StoreBounds) -> HostState {
        HostState {
            origin,
            limiter: Limiter::new(bounds.max_memory_bytes),
            bounds,
            memory: None,
            call: CallState::default(),
            out: Emitted::new(),
            next_timer: None,
            metrics: MetricTable::default(),
            log: LogGate::new(bounds.log_lines_per_second),
        }
    }

    /// Refuses what the guest asked: records why and returns the error that
    /// aborts the guest call.
    pub(crate) fn fault(
        &mut self,
        kind: ErrorKind,
        message: String,
        hint: &'static str,
    ) -> wasmtime::Error {
        let error = wasmtime::Error::msg(message.clone());
        // Keep the first refusal: later ones are consequences.
        if self.call.fault.is_none() {
            self.call.fault = Some(Fault {
                kind,
                message,
                hint,
            });
        }
        error
    }
}
