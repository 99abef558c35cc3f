//! How a failed guest call becomes a [`PluginError`]: the kinds of
//! failure the call machinery sees, and the explanation that combines them
//! with what the call staged (a host function's refusal, a refused memory
//! growth, the guest's own `fail` message).
//!
//! Called only by `instance.rs` after a call and by the host when it
//! refuses a module's ABI version. The order of the checks matters: a host
//! function's refusal or a deadline explains a trap better than the trap.

use wasmtime::{Trap, WasmBacktrace};

use super::abi::ABI_VERSION;
use super::error::{ErrorKind, PluginError};
use super::host::Shared;
use super::plugin::PluginId;
use super::state::HostState;

/// How a call went wrong, before it is explained.
pub(crate) enum Failure {
    /// The guest trapped or a host function aborted it.
    Wasm(wasmtime::Error),
    /// The guest returned a failure status (1, or -1 from snapshot).
    Failed,
    /// The guest returned a status the ABI does not define.
    BadStatus(i64),
    /// The host refused what the guest returned.
    Refused(ErrorKind, String, &'static str),
}

/// The call's status as ABI v1 defines it.
pub(crate) fn status(result: wasmtime::Result<i32>) -> Result<(), Failure> {
    match result {
        Ok(0) => Ok(()),
        Ok(1) => Err(Failure::Failed),
        Ok(other) => Err(Failure::BadStatus(other.into())),
        Err(e) => Err(Failure::Wasm(e)),
    }
}

/// The refusal of a module that speaks another ABI version.
pub(crate) fn abi_mismatch(plugin: &PluginId, version: u32) -> PluginError {
    PluginError::new(
        plugin,
        ErrorKind::AbiMismatch,
        format!(
            "speaks plugin ABI version {version}, but this engine speaks version {ABI_VERSION}"
        ),
        format!("rebuild the plugin with a sluice-sdk release for ABI version {ABI_VERSION}"),
    )
}

/// Turns a failure into an error, using what the call staged (a host
/// function's refusal, a refused memory growth, the guest's `fail` message).
pub(crate) fn explain(
    state: &mut HostState,
    shared: &Shared,
    function: &str,
    failure: Failure,
) -> PluginError {
    let guest_said = state
        .call
        .fail_message
        .take()
        .map(|m| format!("; the plugin said: {m}"))
        .unwrap_or_default();
    let denied = state.limiter.denied_growth.take();
    let limit = shared.bounds.max_memory_bytes;
    let memory_hint = "reduce the operator's memory use (state, buffers, batch size) or raise the \
                       host's max_memory_bytes";
    let (kind, message, hint): (ErrorKind, String, &str) = match failure {
        Failure::Wasm(error) => {
            if let Some(fault) = state.call.fault.take() {
                (
                    fault.kind,
                    format!("{}{guest_said}", fault.message),
                    fault.hint,
                )
            } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                (
                    ErrorKind::Deadline,
                    format!(
                        "ran past its CPU deadline of {:?} per call (call_deadline) and was \
                         interrupted{guest_said}",
                        shared.call_deadline
                    ),
                    "make the operator do less work per call (smaller batches, cheaper \
                     per-record work), or raise the host's call_deadline",
                )
            } else if let Some(desired) = denied {
                (
                    ErrorKind::MemoryLimit,
                    format!(
                        "tried to grow its memory to {}, past the limit of {} per instance \
                         (max_memory_bytes), and then failed: {}{guest_said}",
                        mib(desired),
                        mib(limit),
                        describe(&error)
                    ),
                    memory_hint,
                )
            } else if error.downcast_ref::<Trap>().is_some() {
                (
                    ErrorKind::Trap,
                    format!("{}{guest_said}", describe(&error)),
                    "fix the plugin; the trap is a bug or a panic in the guest",
                )
            } else {
                (
                    ErrorKind::Host,
                    format!("could not be run by the host during `{function}`: {error:#}"),
                    "check the host's logs and resources (memory, mmap limits)",
                )
            }
        }
        Failure::Failed => match (denied, state.call.fault.take()) {
            (_, Some(fault)) => (
                fault.kind,
                format!("{}{guest_said}", fault.message),
                fault.hint,
            ),
            (Some(desired), None) => (
                ErrorKind::MemoryLimit,
                format!(
                    "reported failure after its memory could not grow to {}, past the \
                     limit of {} per instance (max_memory_bytes){guest_said}",
                    mib(desired),
                    mib(limit)
                ),
                memory_hint,
            ),
            (None, None) if guest_said.is_empty() => (
                ErrorKind::GuestError,
                "reported failure without a message (it did not call `sluice.fail`)".to_string(),
                "make the plugin call `sluice.fail` with the reason before returning failure",
            ),
            (None, None) => (
                ErrorKind::GuestError,
                format!("reported failure{guest_said}"),
                "fix the input or the plugin's configuration as the message says",
            ),
        },
        Failure::BadStatus(code) => (
            ErrorKind::GarbageOutput,
            format!(
                "returned status {code}; ABI v1 status is 0 (success) or 1 (failure){guest_said}"
            ),
            "fix the plugin so it follows sdk/ABI.md, or build it with sluice-sdk",
        ),
        Failure::Refused(kind, message, hint) => (kind, format!("{message}{guest_said}"), hint),
    };
    PluginError::new(&state.origin.plugin, kind, message, hint)
}

/// `bytes` in MiB, with one decimal when it is not a whole number.
fn mib(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

/// The trap, and the guest function it happened in when known.
fn describe(error: &wasmtime::Error) -> String {
    let what = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.to_string(),
    };
    let frame = error.downcast_ref::<WasmBacktrace>().and_then(|bt| {
        bt.frames()
            .first()
            .and_then(|f| f.func_name().map(str::to_string))
    });
    match frame {
        Some(name) => format!("{what} (in guest function `{name}`)"),
        None => what,
    }
}
