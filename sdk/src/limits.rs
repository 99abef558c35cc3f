//! `limits`: the named bounds of the SDK.
//!
//! Every buffer and table the SDK keeps on an operator's behalf has a bound here;
//! the bound's name and value appear in the error when it is hit
//! ([`crate::Error::Limit`]). Keyed state and windows take their own bound
//! (`with_max_keys`, `with_max_entries`), defaulting to [`DEFAULT_MAX_KEYS`].

/// Largest buffer the guest hands out through `sluice_buffer` (batch, config or
/// snapshot coming in from the host).
pub const MAX_INPUT_BYTES: usize = 1 << 30;

/// An output's buffered records are handed to the host (one `emit`) as soon as they
/// reach this size, and in any case at the end of the call.
pub const OUTPUT_FLUSH_BYTES: usize = 1 << 20;

/// Largest key or value of one output record.
pub const MAX_OUTPUT_RECORD_BYTES: usize = 16 << 20;

/// Most distinct output names one operator may emit to.
pub const MAX_OUTPUTS: usize = 64;

/// Longest output name, in bytes (ABI v1).
pub const MAX_OUTPUT_NAME_BYTES: usize = 64;

/// Most distinct counter and gauge names one operator may report.
pub const MAX_METRICS: usize = 256;

/// Most distinct pending event-time timers.
pub const MAX_PENDING_TIMERS: usize = 1 << 20;

/// Default bound on the keys of a [`crate::KeyedState`] and on the
/// (window, key) entries of a window helper.
pub const DEFAULT_MAX_KEYS: usize = 10_000_000;
