//! `job`: not written yet.
