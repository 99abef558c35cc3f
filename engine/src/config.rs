//! `config`: not written yet.
