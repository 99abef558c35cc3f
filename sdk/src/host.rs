//! `host`: the five host imports of ABI v1 (`emit`, `timer`, `log`, `metric`,
//! `fail`), behind one type so the rest of the SDK is the same code natively and
//! in Wasm.
//!
//! In a Wasm plugin (`target_arch = "wasm32"`) each method calls the `sluice`
//! import of the same name. Natively, [`Host`] records the calls so the test
//! harness can read them back. Owned by [`crate::Ctx`]; nothing else calls it.

/// Log level of a line written with [`crate::Ctx::log`]; the numbers are ABI v1's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal operation.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
    /// Even more detail.
    Trace = 5,
}

/// Kind of a metric reported to the host (ABI v1 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Counter = 0,
    Gauge = 1,
}

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "sluice")]
    unsafe extern "C" {
        pub fn emit(name_ptr: *const u8, name_len: usize, ptr: *const u8, len: usize);
        pub fn timer(ts: i64);
        pub fn log(level: i32, ptr: *const u8, len: usize);
        pub fn metric(kind: i32, name_ptr: *const u8, name_len: usize, value: i64);
        pub fn fail(ptr: *const u8, len: usize);
    }
}

/// The guest's view of the host.
#[derive(Debug, Default)]
pub(crate) struct Host {
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) calls: NativeCalls,
}

/// What the host imports received, natively (read by the test harness).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Default)]
pub(crate) struct NativeCalls {
    pub(crate) emits: Vec<(String, Vec<u8>)>,
    pub(crate) timers: Vec<i64>,
    pub(crate) logs: Vec<(Level, String)>,
    pub(crate) metrics: Vec<(MetricKind, String, i64)>,
    pub(crate) failures: Vec<String>,
}

#[cfg(not(target_arch = "wasm32"))]
impl NativeCalls {
    const fn new() -> Self {
        NativeCalls {
            emits: Vec::new(),
            timers: Vec::new(),
            logs: Vec::new(),
            metrics: Vec::new(),
            failures: Vec::new(),
        }
    }
}

impl Host {
    pub(crate) const fn new() -> Self {
        Host {
            #[cfg(not(target_arch = "wasm32"))]
            calls: NativeCalls::new(),
        }
    }

    /// Hands a buffer of output records (ABI `emit` format) for output `name`.
    pub(crate) fn emit(&mut self, name: &str, records: &[u8]) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: both slices are valid for the duration of the call; the host
        // copies what it needs before returning (ABI v1).
        unsafe {
            imports::emit(name.as_ptr(), name.len(), records.as_ptr(), records.len())
        };
        #[cfg(not(target_arch = "wasm32"))]
        self.calls.emits.push((name.to_owned(), records.to_vec()));
    }

    /// Asks to be called (`sluice_on_watermark`) once the watermark reaches `ts`.
    pub(crate) fn timer(&mut self, ts: i64) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: a plain value import.
        unsafe {
            imports::timer(ts)
        };
        #[cfg(not(target_arch = "wasm32"))]
        self.calls.timers.push(ts);
    }

    pub(crate) fn log(&mut self, level: Level, line: &str) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: the slice is valid for the duration of the call.
        unsafe {
            imports::log(level as i32, line.as_ptr(), line.len())
        };
        #[cfg(not(target_arch = "wasm32"))]
        self.calls.logs.push((level, line.to_owned()));
    }

    pub(crate) fn metric(&mut self, kind: MetricKind, name: &str, value: i64) {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: the slice is valid for the duration of the call.
        unsafe {
            imports::metric(kind as i32, name.as_ptr(), name.len(), value)
        };
        #[cfg(not(target_arch = "wasm32"))]
        self.calls.metrics.push((kind, name.to_owned(), value));
    }

    pub(crate) fn fail(&mut self, message: &str) {
        fail(message);
        #[cfg(not(target_arch = "wasm32"))]
        self.calls.failures.push(message.to_owned());
    }
}

/// Reports the error message of the current call (`sluice.fail`). Also used by
/// the panic hook, which has no `Host` at hand.
pub(crate) fn fail(message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the slice is valid for the duration of the call.
    unsafe {
        imports::fail(message.as_ptr(), message.len())
    };
    #[cfg(not(target_arch = "wasm32"))]
    let _ = message;
}
