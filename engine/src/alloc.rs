//! The allocator's settings. The `sluice` binary (and the benchmark harness, which runs
//! the engine in process) allocate with mimalloc and call [`keep_freed_memory`] first.

use std::ffi::c_long;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (the same index in its v2 and v3
/// headers, `include/mimalloc.h`): how many milliseconds freed memory waits before it is
/// returned to the OS; -1 = never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc keep the memory it frees instead of returning it to the OS a second
/// later (its default). The engine frees and reuses batch, output and ingest buffers at a
/// steady rate; with purging, each reuse after a purge faulted fresh pages back in, which
/// on a VM where first-touched memory is slow put 100–300 ms stalls into q0's p99 latency
/// at 1.1 M events/s (2.2 ms without purging). Peak memory is bounded by the engine's
/// own limits either way; it is simply not handed back between bursts.
pub fn keep_freed_memory() {
    // SAFETY: sets one integer option of the allocator; safe at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1 as c_long) }
}

/// The purge delay in force, ms (-1 = never).
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads one integer option of the allocator.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_is_kept() {
        // mimalloc's default purge delay is 1 s (10 ms in v2); the index names that option.
        let default = purge_delay_ms();
        assert!(
            default == 1_000 || default == 10 || default == -1,
            "option {MI_OPTION_PURGE_DELAY} reads {default}, not a purge delay: check the index \
             against `mi_option_e` in the include/mimalloc.h of the libmimalloc-sys in Cargo.lock"
        );
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }
}
