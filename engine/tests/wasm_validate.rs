//! Modules the host must refuse before running them, each with an error that
//! says exactly what is wrong and what to do; the host keeps working after
//! every refusal.

mod wasm_support;

use sluice::wasm::{Emitted, ErrorKind, HostConfig, PluginId, WasmHost};
use wasm_support::*;

fn refuse(host: &WasmHost, bytes: &[u8]) -> (ErrorKind, String) {
    let err = host
        .validate(&PluginId::new("fraud", "1.2.0"), bytes)
        .expect_err("must be refused");
    assert!(err.function().is_none() || err.kind() != ErrorKind::Invalid);
    (err.kind(), err.to_string())
}

fn with_imports(imports: &str) -> Vec<u8> {
    Guest {
        imports: imports.into(),
        ..Guest::default()
    }
    .wasm()
}

#[test]
fn wasi_import_is_refused_naming_the_import_and_the_fix() {
    let host = test_host();
    let bytes = with_imports(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
    );
    assert_eq!(
        refuse(&host, &bytes),
        (
            ErrorKind::Invalid,
            "plugin `fraud@1.2.0` imports `wasi_snapshot_preview1::fd_write`; Sluice plugins may \
             import only the `sluice` namespace — build for wasm32-unknown-unknown with sluice-sdk"
                .to_string()
        )
    );
}

#[test]
fn imported_memory_table_or_global_is_refused() {
    let host = test_host();
    let guest = Guest {
        imports: r#"(import "sluice" "memory" (memory 1))"#.into(),
        memory: r#"(export "memory" (memory 0))"#.into(),
        ..Guest::default()
    };
    let (kind, text) = refuse(&host, &guest.wasm());
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(
        text.starts_with(
            "plugin `fraud@1.2.0` imports a memory as `sluice::memory`; a plugin may import only \
             the functions of the `sluice` namespace and must define its own memory"
        ),
        "{text}"
    );
    let env_memory = Guest {
        imports: r#"(import "env" "memory" (memory 1))"#.into(),
        memory: r#"(export "memory" (memory 0))"#.into(),
        ..Guest::default()
    };
    let (_, text) = refuse(&host, &env_memory.wasm());
    assert!(
        text.contains(
            "imports `env::memory`; Sluice plugins may import only the `sluice` namespace"
        ),
        "{text}"
    );
    let (_, text) = refuse(
        &host,
        &with_imports(r#"(import "sluice" "depth" (global i32))"#),
    );
    assert!(
        text.contains("imports a global as `sluice::depth`"),
        "{text}"
    );
}

#[test]
fn unknown_or_mistyped_sluice_import_is_refused() {
    let host = test_host();
    let (kind, text) = refuse(
        &host,
        &with_imports(r#"(import "sluice" "clock" (func (result i64)))"#),
    );
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(
        text.contains(
            "imports `sluice::clock`, which the host does not provide; ABI v1 provides emit, \
             timer, log, metric, fail"
        ),
        "{text}"
    );
    let (_, text) = refuse(
        &host,
        &with_imports(r#"(import "sluice" "emit" (func (param i32)))"#),
    );
    assert!(
        text.contains(
            "imports `sluice::emit` with signature (i32); ABI v1 defines it as (i32, i32, i32, i32)"
        ),
        "{text}"
    );
}

#[test]
fn missing_or_mistyped_export_is_refused() {
    let host = test_host();
    let (kind, text) = refuse(
        &host,
        &Guest {
            process: String::new(),
            ..Guest::default()
        }
        .wasm(),
    );
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(
        text.contains("does not export `sluice_process` (i32, i32) -> i32, which ABI v1 requires"),
        "{text}"
    );
    let mistyped = Guest {
        process: r#"(func (export "sluice_process") (param i64) (result i32) (i32.const 0))"#
            .into(),
        ..Guest::default()
    };
    let (_, text) = refuse(&host, &mistyped.wasm());
    assert!(
        text.contains("exports `sluice_process` with signature (i64) -> i32; ABI v1 requires (i32, i32) -> i32"),
        "{text}"
    );
    let (_, text) = refuse(
        &host,
        &Guest {
            memory: "(memory 1)".into(),
            ..Guest::default()
        }
        .wasm(),
    );
    assert!(
        text.contains("does not export its memory as `memory`, which ABI v1 requires"),
        "{text}"
    );
    let global_export = Guest {
        snapshot: r#"(global (export "sluice_snapshot") i64 (i64.const 0))"#.into(),
        ..Guest::default()
    };
    let (_, text) = refuse(&host, &global_export.wasm());
    assert!(
        text.contains(
            "exports a global as `sluice_snapshot`; ABI v1 requires a function () -> i64"
        ),
        "{text}"
    );
}

#[test]
fn other_abi_version_is_refused_naming_both_versions() {
    let host = test_host();
    let v2 = Guest {
        abi_version: r#"(func (export "sluice_abi_version") (result i32) (i32.const 2))"#.into(),
        ..Guest::default()
    };
    let (kind, text) = refuse(&host, &v2.wasm());
    assert_eq!(kind, ErrorKind::AbiMismatch);
    assert_eq!(
        text,
        "plugin `fraud@1.2.0` speaks plugin ABI version 2, but this engine speaks version 1 — \
         rebuild the plugin with a sluice-sdk release for ABI version 1"
    );
    let traps = Guest {
        abi_version: r#"(func (export "sluice_abi_version") (result i32) (unreachable))"#.into(),
        ..Guest::default()
    };
    let (kind, text) = refuse(&host, &traps.wasm());
    assert_eq!(kind, ErrorKind::Trap);
    assert!(
        text.starts_with("plugin `fraud@1.2.0` failed in `sluice_abi_version`: wasm trap"),
        "{text}"
    );
}

#[test]
fn oversized_module_is_refused_before_parsing() {
    let host = WasmHost::new(HostConfig {
        max_module_bytes: 1000,
        ..test_config()
    })
    .unwrap();
    let big = Guest {
        extra: format!(r#"(data (i32.const 0) "{}")"#, "x".repeat(2000)),
        ..Guest::default()
    }
    .wasm();
    let (kind, text) = refuse(&host, &big);
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(
        text.contains(&format!(
            "is {} bytes, more than the limit of 1000 bytes per module (max_module_bytes)",
            big.len()
        )),
        "{text}"
    );
}

#[test]
fn non_modules_are_refused() {
    let host = test_host();
    let (_, text) = refuse(&host, b"#!/bin/sh\necho hi\n");
    assert!(
        text.contains("is not a WebAssembly module (it does not start with `\\0asm` version 1)"),
        "{text}"
    );
    let (_, text) = refuse(&host, b"\0asm\x0d\0\x01\0");
    assert!(
        text.contains("is a WebAssembly component; Sluice plugins are core modules"),
        "{text}"
    );
    let good = good_guest();
    let (kind, text) = refuse(&host, &good[..good.len() / 2]);
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(
        text.contains("is not a valid WebAssembly module:"),
        "{text}"
    );
}

#[test]
fn initial_memory_over_the_limit_is_refused() {
    let host = test_host();
    let huge = Guest {
        memory: r#"(memory (export "memory") 1000)"#.into(),
        ..Guest::default()
    };
    let (kind, text) = refuse(&host, &huge.wasm());
    assert_eq!(kind, ErrorKind::Invalid);
    assert!(
        text.contains(
            "declares an initial memory of 62 MiB, more than the limit of 16 MiB per instance"
        ),
        "{text}"
    );
    let wide = Guest {
        memory: r#"(memory (export "memory") i64 1)"#.into(),
        ..Guest::default()
    };
    let (kind, _) = refuse(&host, &wide.wasm());
    assert_eq!(kind, ErrorKind::Invalid);
}

#[test]
fn host_keeps_working_after_every_refusal() {
    let host = test_host();
    let plugin = host.load(id("passthrough"), &good_guest()).unwrap();
    let mut live = plugin.instantiate(label("job-a"), &[]).unwrap();
    let refused = [
        with_imports(r#"(import "wasi_snapshot_preview1" "fd_write" (func))"#),
        Guest {
            process: String::new(),
            ..Guest::default()
        }
        .wasm(),
        b"garbage".to_vec(),
        Guest {
            extra: "(func $s (unreachable)) (start $s)".into(),
            ..Guest::default()
        }
        .wasm(),
    ];
    for bytes in &refused {
        assert!(host.load(id("bad"), bytes).is_err());
        let mut out = Emitted::new();
        live.process(&batch(&[(0, 1, 0, "k", b"v")]), &mut out)
            .unwrap();
        assert_eq!(out.len(), 2);
    }
    let again = host.load(id("passthrough"), &good_guest()).unwrap();
    again.instantiate(label("job-b"), &[]).unwrap();
}

#[test]
fn bad_host_configuration_is_refused() {
    let bad = [
        HostConfig {
            max_memory_bytes: 1000,
            ..HostConfig::default()
        },
        HostConfig {
            max_memory_bytes: 8 << 30,
            ..HostConfig::default()
        },
        HostConfig {
            epoch_tick: std::time::Duration::ZERO,
            ..HostConfig::default()
        },
        HostConfig {
            log_lines_per_second: 0,
            ..HostConfig::default()
        },
    ];
    for cfg in bad {
        let err = WasmHost::new(cfg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.plugin().is_none());
    }
}
