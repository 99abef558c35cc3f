//! Helpers shared by the integration tests: running the real `sluice-bench` binary.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `sluice-bench` with `args`; panics with its stderr if it fails.
pub fn bench_ok(args: &[&str]) -> Output {
    let out = bench(args);
    assert!(
        out.status.success(),
        "sluice-bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `sluice-bench` with `args` and returns whatever happened.
pub fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
        .args(args)
        .output()
        .expect("the sluice-bench binary runs")
}

/// A path as a `&str` argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
