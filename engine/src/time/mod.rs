//! `time`: not written yet.
