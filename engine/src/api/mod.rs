//! `api`: not written yet.
