//! The on-disk cache of compiled modules: a second load is served from the
//! file the first one wrote, and a damaged or foreign file is never used but
//! replaced.

mod wasm_support;

use std::fs;
use std::path::Path;

use sluice::wasm::{CacheOutcome, CacheStats, Emitted, HostConfig, WasmHost};
use wasm_support::*;

fn host_with_cache(dir: &Path) -> WasmHost {
    WasmHost::new(HostConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..test_config()
    })
    .unwrap()
}

/// Loads the good guest and proves the loaded code runs.
fn load_and_run(host: &WasmHost, bytes: &[u8]) -> CacheOutcome {
    let plugin = host.load(id("passthrough"), bytes).expect("loads");
    let mut inst = plugin.instantiate(label("job-a"), &[]).unwrap();
    let mut out = Emitted::new();
    inst.process(&batch(&[(0, 5, 0, "k", b"v")]), &mut out)
        .unwrap();
    assert_eq!(
        out.iter_output("main")
            .map(|r| r.value.to_vec())
            .collect::<Vec<_>>(),
        vec![b"v".to_vec()]
    );
    plugin.cache_outcome()
}

#[test]
fn second_load_is_served_from_the_file_the_first_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = good_guest();
    let first = host_with_cache(dir.path());
    assert_eq!(load_and_run(&first, &bytes), CacheOutcome::Miss);
    let digest = first.validate(&id("passthrough"), &bytes).unwrap().digest;
    let path = first.cache_path(&digest).unwrap();
    assert!(path.is_file(), "{} was not written", path.display());
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&digest)
    );
    assert_eq!(
        first.cache_stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            rebuilt: 0,
            write_failures: 0
        }
    );

    // A new host (a restarted process) finds it on disk.
    let second = host_with_cache(dir.path());
    assert_eq!(load_and_run(&second, &bytes), CacheOutcome::Hit);
    assert_eq!(
        second.cache_stats(),
        CacheStats {
            hits: 1,
            misses: 0,
            rebuilt: 0,
            write_failures: 0
        }
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn corrupt_cache_file_is_ignored_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = good_guest();
    let host = host_with_cache(dir.path());
    let digest = host.validate(&id("passthrough"), &bytes).unwrap().digest;
    let path = host.cache_path(&digest).unwrap();
    let pristine = fs::read(&path).unwrap();

    let mut flipped = pristine.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let damage: [(&str, Vec<u8>); 4] = [
        ("one flipped bit in the code", flipped),
        ("truncated", pristine[..pristine.len() - 100].to_vec()),
        ("empty", Vec::new()),
        ("not ours", b"#!/bin/sh\nrm -rf /\n".repeat(10)),
    ];
    for (what, damaged) in damage {
        fs::write(&path, &damaged).unwrap();
        assert_eq!(load_and_run(&host, &bytes), CacheOutcome::Rebuilt, "{what}");
        assert_eq!(
            fs::read(&path).unwrap(),
            pristine,
            "{what}: the file was not rewritten"
        );
        assert_eq!(load_and_run(&host, &bytes), CacheOutcome::Hit, "{what}");
    }
    assert_eq!(host.cache_stats().rebuilt, 4);
}

#[test]
fn another_modules_code_under_this_digest_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_cache(dir.path());
    let other = Guest::default().wasm();
    let other_digest = host.validate(&id("other"), &other).unwrap().digest;
    let bytes = good_guest();
    let digest = host.validate(&id("passthrough"), &bytes).unwrap().digest;
    let path = host.cache_path(&digest).unwrap();
    fs::copy(host.cache_path(&other_digest).unwrap(), &path).unwrap();
    // Loading must compile the right module again: the passthrough works.
    assert_eq!(load_and_run(&host, &bytes), CacheOutcome::Rebuilt);
}

#[test]
fn refused_modules_are_not_cached_and_no_cache_dir_means_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_with_cache(dir.path());
    let v2 = Guest {
        abi_version: r#"(func (export "sluice_abi_version") (result i32) (i32.const 2))"#.into(),
        ..Guest::default()
    };
    assert!(host.load(id("v2"), &v2.wasm()).is_err());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

    let uncached = test_host();
    assert_eq!(
        load_and_run(&uncached, &good_guest()),
        CacheOutcome::Disabled
    );
    assert_eq!(uncached.cache_path("00"), None);
    assert_eq!(uncached.cache_stats(), CacheStats::default());
}
