//! Sluice: a single-node streaming analytics appliance.
//!
//! Data flows down this list of modules; nothing below calls back up
//! (see `ARCHITECTURE.md`): `log` → `wasm` → `time` → `state` → `shard` →
//! `job` → `api` → `cli`. `config`, `metrics` and `bundled` are leaves any
//! module may use.

pub mod alloc;
pub mod api;
pub mod bundled;
pub mod cli;
pub mod config;
pub mod job;
pub mod log;
pub mod metrics;
pub mod mpack;
pub mod shard;
pub mod state;
pub mod time;
pub mod wasm;
