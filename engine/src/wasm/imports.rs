//! The host functions of namespace `sluice` (`emit`, `timer`, `log`,
//! `metric`, `fail`), exactly as `sdk/ABI.md` defines them, and the linker
//! that offers them — nothing else — to every plugin.
//!
//! Each function copies what it needs out of guest memory before returning,
//! checks every pointer and length against the memory's size, and refuses
//! malformed input by recording a [`Fault`](super::state::Fault) and aborting
//! the call; it never panics on guest input. Only `log` has an effect outside
//! the call (rate-limited); everything else is staged in the store.

use std::time::Instant;

use wasmtime::{Caller, Engine, Linker};

use super::abi::IMPORT_NAMESPACE;
use super::emitted::EmitFault;
use super::error::ErrorKind;
use super::metric_table::MetricKind;
use super::state::HostState;

/// Longest log line kept, in bytes; longer lines are cut.
pub const MAX_LOG_LINE_BYTES: usize = 4096;
/// Longest `fail` message kept, in bytes; longer messages are cut.
pub const MAX_FAIL_MESSAGE_BYTES: usize = 4096;

const GARBAGE_HINT: &str = "fix the plugin so it follows sdk/ABI.md, or build it with sluice-sdk";

/// A token bucket: at most `per_second` log lines per second per instance,
/// with bursts of the same size.
pub(crate) struct LogGate {
    per_second: u32,
    tokens: f64,
    last: Option<Instant>,
    /// Lines dropped since the last line let through.
    pending_suppressed: u64,
    /// Lines dropped since the instance started.
    pub total_suppressed: u64,
}

impl LogGate {
    pub(crate) fn new(per_second: u32) -> LogGate {
        LogGate {
            per_second,
            tokens: f64::from(per_second),
            last: None,
            pending_suppressed: 0,
            total_suppressed: 0,
        }
    }

    /// Whether a line may go out now; if so, how many were dropped before it.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let rate = f64::from(self.per_second);
        if let Some(last) = self.last {
            self.tokens = (self.tokens + now.duration_since(last).as_secs_f64() * rate).min(rate);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.pending_suppressed))
        } else {
            self.pending_suppressed += 1;
            self.total_suppressed += 1;
            None
        }
    }
}

/// The slice `ptr..ptr+len` of guest memory, if it is in bounds.
fn guest_slice(memory: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    memory.get(start..end)
}

/// UTF-8 text cut to at most `max` bytes at a character boundary.
fn text(bytes: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if bytes.len() > max {
        s.push_str(" […]");
    }
    s
}

/// Gives a host function the guest memory and the store data, after checking
/// the guest is inside an export call.
fn with_guest<R>(
    caller: &mut Caller<'_, HostState>,
    import: &'static str,
    f: impl FnOnce(&[u8], &mut HostState) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let memory = match (caller.data().call.function, caller.data().memory) {
        (Some(_), Some(memory)) => memory,
        _ => {
            return Err(caller.data_mut().fault(
                ErrorKind::GarbageOutput,
                format!(
                    "called `{IMPORT_NAMESPACE}.{import}` while the host was not calling any of \
                     its exports (from a start function?); imports may be called only from \
                     within the sluice_* exports"
                ),
                GARBAGE_HINT,
            ));
        }
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    f(bytes, state)
}

fn out_of_bounds(
    state: &mut HostState,
    import: &str,
    what: &str,
    ptr: i32,
    len: i32,
    memory_len: usize,
) -> wasmtime::Error {
    state.fault(
        ErrorKind::GarbageOutput,
        format!(
            "passed `{IMPORT_NAMESPACE}.{import}` a {what} at {}..+{} outside its {memory_len}-byte memory",
            ptr as u32, len as u32
        ),
        GARBAGE_HINT,
    )
}

fn emit(
    state: &mut HostState,
    memory: &[u8],
    name: (i32, i32),
    buf: (i32, i32),
) -> wasmtime::Result<()> {
    let function = state.call.function.unwrap_or("?");
    if !state.call.emit_allowed {
        return Err(state.fault(
            ErrorKind::GarbageOutput,
            format!("called `{IMPORT_NAMESPACE}.emit` during `{function}`; records may be emitted only during sluice_process and sluice_on_watermark"),
            GARBAGE_HINT,
        ));
    }
    let Some(name_bytes) = guest_slice(memory, name.0, name.1) else {
        return Err(out_of_bounds(
            state,
            "emit",
            "name",
            name.0,
            name.1,
            memory.len(),
        ));
    };
    let Some(records) = guest_slice(memory, buf.0, buf.1) else {
        return Err(out_of_bounds(
            state,
            "emit",
            "buffer",
            buf.0,
            buf.1,
            memory.len(),
        ));
    };
    let limit = state.bounds.max_output_bytes_per_call;
    let total = state.call.emitted_bytes.saturating_add(records.len());
    if total > limit {
        return Err(state.fault(
            ErrorKind::OutputLimit,
            format!("emitted {total} bytes in one call, more than the limit of {limit} bytes per call (max_output_bytes_per_call)"),
            "emit less per call (smaller batches, fewer or smaller records), or raise the host's max_output_bytes_per_call",
        ));
    }
    state.call.emitted_bytes = total;
    match state.out.append(name_bytes, records) {
        Ok(()) => Ok(()),
        Err(EmitFault::Garbage(why)) => Err(state.fault(
            ErrorKind::GarbageOutput,
            format!("emitted garbage output: the emit call {why}"),
            GARBAGE_HINT,
        )),
        Err(EmitFault::TooManyOutputs(why)) => Err(state.fault(
            ErrorKind::OutputLimit,
            format!("emitted to too many outputs: the emit call {why}"),
            "emit to fewer distinct output names",
        )),
    }
}

fn log(
    state: &mut HostState,
    memory: &[u8],
    level: i32,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<()> {
    let Some(bytes) = guest_slice(memory, ptr, len) else {
        return Err(out_of_bounds(state, "log", "line", ptr, len, memory.len()));
    };
    let Some(suppressed) = state.log.admit(Instant::now()) else {
        return Ok(());
    };
    let line = text(bytes, MAX_LOG_LINE_BYTES);
    let origin = &state.origin;
    let (plugin, job, operator, shard) = (
        origin.plugin.to_string(),
        origin.label.job.as_str(),
        origin.label.operator,
        origin.label.shard,
    );
    if suppressed > 0 {
        tracing::warn!(target: "sluice::plugin", %plugin, job, operator, shard,
            "{suppressed} log lines dropped: over {} lines per second (log_lines_per_second)",
            state.log.per_second);
    }
    match level {
        ..=1 => tracing::error!(target: "sluice::plugin", %plugin, job, operator, shard, "{line}"),
        2 => tracing::warn!(target: "sluice::plugin", %plugin, job, operator, shard, "{line}"),
        3 => tracing::info!(target: "sluice::plugin", %plugin, job, operator, shard, "{line}"),
        4 => tracing::debug!(target: "sluice::plugin", %plugin, job, operator, shard, "{line}"),
        _ => tracing::trace!(target: "sluice::plugin", %plugin, job, operator, shard, "{line}"),
    }
    Ok(())
}

fn metric(
    state: &mut HostState,
    memory: &[u8],
    kind: i32,
    name: (i32, i32),
    value: i64,
) -> wasmtime::Result<()> {
    let Some(name_bytes) = guest_slice(memory, name.0, name.1) else {
        return Err(out_of_bounds(
            state,
            "metric",
            "name",
            name.0,
            name.1,
            memory.len(),
        ));
    };
    let Some(kind) = MetricKind::from_abi(kind) else {
        return Err(state.fault(
            ErrorKind::GarbageOutput,
            format!("called `{IMPORT_NAMESPACE}.metric` with kind {kind}; ABI v1 kinds are 0 (counter) and 1 (gauge)"),
            GARBAGE_HINT,
        ));
    };
    match state.metrics.stage(kind, name_bytes, value) {
        Ok(()) => Ok(()),
        Err(why) => Err(state.fault(ErrorKind::GarbageOutput, why, GARBAGE_HINT)),
    }
}

fn fail(state: &mut HostState, memory: &[u8], ptr: i32, len: i32) -> wasmtime::Result<()> {
    let Some(bytes) = guest_slice(memory, ptr, len) else {
        return Err(out_of_bounds(
            state,
            "fail",
            "message",
            ptr,
            len,
            memory.len(),
        ));
    };
    state.call.fail_message = Some(text(bytes, MAX_FAIL_MESSAGE_BYTES));
    Ok(())
}

/// The linker offering the `sluice` imports; one per host.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        IMPORT_NAMESPACE,
        "emit",
        |mut caller: Caller<'_, HostState>, name_ptr: i32, name_len: i32, ptr: i32, len: i32| {
            with_guest(&mut caller, "emit", |memory, state| {
                emit(state, memory, (name_ptr, name_len), (ptr, len))
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_NAMESPACE,
        "timer",
        |mut caller: Caller<'_, HostState>, ts: i64| {
            with_guest(&mut caller, "timer", |_, state| {
                state.call.timer = Some(state.call.timer.map_or(ts, |t| t.min(ts)));
                Ok(())
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_NAMESPACE,
        "log",
        |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            with_guest(&mut caller, "log", |memory, state| {
                log(state, memory, level, ptr, len)
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_NAMESPACE,
        "metric",
        |mut caller: Caller<'_, HostState>, kind: i32, name_ptr: i32, name_len: i32, value: i64| {
            with_guest(&mut caller, "metric", |memory, state| {
                metric(state, memory, kind, (name_ptr, name_len), value)
            })
        },
    )?;
    linker.func_wrap(
        IMPORT_NAMESPACE,
        "fail",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| {
            with_guest(&mut caller, "fail", |memory, state| {
                fail(state, memory, ptr, len)
            })
        },
    )?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn log_gate_admits_a_burst_then_refills_with_time() {
        let mut gate = LogGate::new(3);
        let t0 = Instant::now();
        assert_eq!(gate.admit(t0), Some(0));
        assert_eq!(gate.admit(t0), Some(0));
        assert_eq!(gate.admit(t0), Some(0));
        assert_eq!(gate.admit(t0), None);
        assert_eq!(gate.admit(t0), None);
        assert_eq!(gate.total_suppressed, 2);
        // One line's worth of time later, one line passes and reports the gap.
        assert_eq!(gate.admit(t0 + Duration::from_millis(340)), Some(2));
        assert_eq!(gate.admit(t0 + Duration::from_millis(340)), None);
    }

    #[test]
    fn guest_slices_are_bounds_checked_as_unsigned() {
        let memory = [0u8; 16];
        assert_eq!(guest_slice(&memory, 4, 12).map(<[u8]>::len), Some(12));
        assert!(guest_slice(&memory, 4, 13).is_none());
        assert!(guest_slice(&memory, -1, 1).is_none());
        assert!(guest_slice(&memory, 1, -1).is_none());
    }
}
