//! `bundled`: not written yet.
