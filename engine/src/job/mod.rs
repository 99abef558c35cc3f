//! Jobs: specs and their validation, plans, the plugin store, and the
//! control plane ([`engine::Engine`]) that starts, stops, restores and
//! upgrades them on the shards.
//!
//! `spec` and `plan` are plain data, also read by `shard/`; `engine`,
//! `launch`, `ingest` and `maintenance` drive `shard/`, never the other way
//! round (shards report through events).

pub mod engine;
pub mod ingest;
mod launch;
mod maintenance;
pub mod plan;
pub mod plugins;
pub mod spec;
