//! Jobs: specs, their validation, and their lifecycle.

pub mod plan;
pub mod spec;
