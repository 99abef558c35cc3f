//! `metrics`: not written yet.
