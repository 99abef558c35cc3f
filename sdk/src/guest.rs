//! `guest`: the ABI v1 exports of a Wasm plugin, instantiated for one operator
//! type by [`crate::export_operator!`].
//!
//! One [`Guest`] per module lives in a static. A Wasm instance runs one call at a
//! time on one thread, and a Rust panic in Wasm aborts (`unreachable`) without
//! unwinding, so no borrow flag or lock may be held across a call: every export
//! takes the state with a plain `&mut` and begins by resetting the per-call
//! buffers, which makes the next call work after a trapped one. The panic hook
//! sends the panic message through `sluice.fail` before the trap.
//!
//! These items are public only for the macro; they are not part of the API.

use std::cell::UnsafeCell;

use crate::error::Error;
use crate::host;
use crate::limits::MAX_INPUT_BYTES;
use crate::operator::Operator;
use crate::runtime::Runtime;

/// The ABI version this SDK speaks.
pub const ABI_VERSION: i32 = 1;

/// A static holding the guest state. Sound only because a Wasm instance is
/// single-threaded and the host makes one call into it at a time (ABI v1).
pub struct GuestCell<T>(UnsafeCell<T>);

// SAFETY: see the type's doc: one thread, one call at a time.
unsafe impl<T> Sync for GuestCell<T> {}

impl<T> GuestCell<T> {
    /// Wraps the guest state.
    pub const fn new(value: T) -> Self {
        GuestCell(UnsafeCell::new(value))
    }

    /// The state, for the duration of one export call.
    ///
    /// # Safety
    /// Only one reference may be live: call once per export, never re-enter.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: guaranteed by the caller (one call at a time).
        unsafe { &mut *self.0.get() }
    }
}

/// The state of one plugin instance: the runtime and the buffer the host writes
/// its inputs into.
pub struct Guest<O> {
    runtime: Runtime<O>,
    input: Vec<u8>,
}

impl<O: Operator> Guest<O> {
    /// An instance before `sluice_init`.
    pub const fn new() -> Self {
        Guest {
            runtime: Runtime::new(),
            input: Vec::new(),
        }
    }

    /// `sluice_buffer`: a buffer of at least `len` bytes for the host to write
    /// into; 0 if it cannot be had. Its bytes stay initialised (it only grows), so
    /// reading what the host wrote is plain safe Rust.
    pub fn buffer(&mut self, len: i32) -> i32 {
        install_panic_hook();
        let len = len as u32 as usize;
        if len > MAX_INPUT_BYTES {
            host::fail(&format!(
                "sluice_buffer: {len} bytes requested, more than MAX_INPUT_BYTES ({MAX_INPUT_BYTES}); send smaller batches"
            ));
            return 0;
        }
        if self.input.len() < len {
            let extra = len - self.input.len();
            if self.input.try_reserve_exact(extra).is_err() {
                host::fail(&format!("sluice_buffer: cannot allocate {len} bytes"));
                return 0;
            }
            self.input.resize(len, 0);
        }
        if self.input.is_empty() {
            // A zero-length request still gets a real, non-null pointer.
            self.input.push(0);
        }
        self.input.as_ptr() as usize as i32
    }

    /// Runs `call` on the bytes at `(ptr, len)`, which must lie in the buffer
    /// returned by `sluice_buffer`.
    fn with_input(
        &mut self,
        name: &str,
        ptr: i32,
        len: i32,
        call: impl FnOnce(&mut Runtime<O>, &[u8]) -> Result<(), Error>,
    ) -> i32 {
        install_panic_hook();
        let len = len as u32 as usize;
        let in_buffer =
            ptr as u32 as usize == self.input.as_ptr() as usize && len <= self.input.len();
        if len != 0 && !in_buffer {
            host::fail(&format!(
                "{name}: ({ptr}, {len}) is not inside the buffer returned by sluice_buffer; call sluice_buffer({len}) and write the bytes there first"
            ));
            return 1;
        }
        status(call(&mut self.runtime, &self.input[..len]))
    }

    /// `sluice_init`.
    pub fn init(&mut self, ptr: i32, len: i32) -> i32 {
        self.with_input("sluice_init", ptr, len, Runtime::init)
    }

    /// `sluice_restore`.
    pub fn restore(&mut self, ptr: i32, len: i32) -> i32 {
        self.with_input("sluice_restore", ptr, len, Runtime::restore)
    }

    /// `sluice_process`.
    pub fn process(&mut self, ptr: i32, len: i32) -> i32 {
        self.with_input("sluice_process", ptr, len, Runtime::process)
    }

    /// `sluice_on_watermark`.
    pub fn on_watermark(&mut self, wm: i64) -> i32 {
        install_panic_hook();
        status(self.runtime.on_watermark(wm))
    }

    /// `sluice_snapshot`: `(ptr << 32) | len`, or -1.
    pub fn snapshot(&mut self) -> i64 {
        install_panic_hook();
        match self.runtime.snapshot() {
            Ok(bytes) => (((bytes.as_ptr() as usize as u64) << 32) | bytes.len() as u64) as i64,
            Err(_) => -1,
        }
    }
}

impl<O: Operator> Default for Guest<O> {
    fn default() -> Self {
        Self::new()
    }
}

/// The runtime already reported the error through `sluice.fail`.
fn status(result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Sends panic messages through `sluice.fail`; the abort that follows traps.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        static INSTALLED: AtomicBool = AtomicBool::new(false);
        if !INSTALLED.swap(true, Ordering::Relaxed) {
            std::panic::set_hook(Box::new(|info| {
                host::fail(&format!("plugin panicked: {info}"));
            }));
        }
    }
}

/// Generates the ABI v1 exports (sdk/ABI.md) for an [`Operator`] type.
///
/// Put it once in the plugin crate, which must have `crate-type = ["cdylib",
/// "rlib"]`. It expands to the Wasm exports only when compiling for
/// `wasm32`; natively it only checks that the type is an `Operator`, so the
/// same crate is unit-tested with [`crate::testing::Harness`].
#[macro_export]
macro_rules! export_operator {
    ($operator:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__guest::{ABI_VERSION, Guest, GuestCell};

            static GUEST: GuestCell<Guest<$operator>> = GuestCell::new(Guest::new());

            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_abi_version() -> i32 {
                ABI_VERSION
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_buffer(len: i32) -> i32 {
                // SAFETY: the host makes one call at a time into this single-threaded instance.
                unsafe { GUEST.get() }.buffer(len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_init(ptr: i32, len: i32) -> i32 {
                // SAFETY: as above.
                unsafe { GUEST.get() }.init(ptr, len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_restore(ptr: i32, len: i32) -> i32 {
                // SAFETY: as above.
                unsafe { GUEST.get() }.restore(ptr, len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_process(ptr: i32, len: i32) -> i32 {
                // SAFETY: as above.
                unsafe { GUEST.get() }.process(ptr, len)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_on_watermark(wm: i64) -> i32 {
                // SAFETY: as above.
                unsafe { GUEST.get() }.on_watermark(wm)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn sluice_snapshot() -> i64 {
                // SAFETY: as above.
                unsafe { GUEST.get() }.snapshot()
            }
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            const fn is_operator<T: $crate::Operator>() {}
            is_operator::<$operator>();
        };
    };
}
