//! `cli`: not written yet.
