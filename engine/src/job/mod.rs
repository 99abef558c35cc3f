//! Jobs: specs, their validation, and their lifecycle.

pub mod spec;
