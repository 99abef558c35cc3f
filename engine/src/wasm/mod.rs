//! `wasm`: not written yet.
