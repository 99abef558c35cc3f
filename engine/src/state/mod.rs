//! State that outlives a batch: materialized views and checkpoints.
//!
//! Called by `shard/` (which fills views and takes checkpoints) and by `api/`
//! (which queries views). Knows nothing of Wasm or HTTP.

pub mod checkpoint;
pub mod view;
