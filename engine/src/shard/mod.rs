//! `shard`: not written yet.
