//! `log`: not written yet.
