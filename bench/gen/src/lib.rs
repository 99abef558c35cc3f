//! Deterministic generators.
