//! `systemd/sluice.service` and `systemd/sluice.toml`: the unit passes
//! `systemd-analyze verify`, keeps its hardening score, and its system-call
//! filter lets through what the shards and the Wasm JIT need; with `strace`
//! installed, every system call of a real daemon run (start, ingest, a Wasm
//! job, checkpoint, reload, stop) passes that filter. The shipped
//! `sluice.toml` is the built-in defaults with every key written out.

mod support;
mod systemd_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::json;
use sluice::config::Config;
use systemd_support::unit::{one, unit_keys, unit_text, unit_with_binary, verify};
use systemd_support::{BIN, Daemon, optional_tool, repo_root, systemd_tool, write_config};

#[test]
fn unit_passes_systemd_analyze_verify_and_keeps_its_hardening() {
    let Some(analyze) = systemd_tool("systemd-analyze") else {
        return;
    };
    let text = unit_with_binary(&unit_text(), Path::new(BIN));
    verify(&analyze, &text);
    // The exposure score stays low: 2.0 of 10 (the scale is in tenths).
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("sluice.service");
    std::fs::write(&unit, &text).unwrap();
    let out = Command::new(&analyze)
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hardening weakened:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Every syscall a group stands for, per this machine's systemd.
fn expand(analyze: &Path, group: &str) -> Vec<String> {
    let out = Command::new(analyze)
        .args(["syscall-filter", group])
        .output()
        .unwrap();
    assert!(out.status.success(), "syscall-filter {group}");
    let mut names = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match l.strip_prefix('@') {
            Some(_) => names.extend(expand(analyze, l)),
            None => names.push(l.split_whitespace().next().unwrap().to_owned()),
        }
    }
    names
}

/// The syscalls the unit's `SystemCallFilter=` lines let through.
fn filter_allows(analyze: &Path, keys: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for f in &keys["SystemCallFilter"] {
        for item in f.split_whitespace() {
            match item.strip_prefix('~') {
                Some(d) => denied.extend(expand(analyze, d)),
                None => allowed.extend(expand(analyze, item)),
            }
        }
    }
    allowed.difference(&denied).cloned().collect()
}

#[test]
fn unit_leaves_the_wasm_jit_and_shard_pinning_working() {
    let keys = unit_keys(&unit_text());
    assert_eq!(one(&keys, "MemoryDenyWriteExecute"), "no");
    assert_eq!(one(&keys, "Type"), "notify");
    assert!(keys.contains_key("WatchdogSec"));
    let Some(analyze) = systemd_tool("systemd-analyze") else {
        return;
    };
    let allowed = filter_allows(&analyze, &keys);
    // What the shards, the log and wasmtime's JIT call.
    for needed in [
        "sched_setaffinity",
        "sched_getaffinity",
        "mmap",
        "mprotect",
        "madvise",
        "munmap",
        "mremap",
        "pwrite64",
        "fdatasync",
        "fallocate",
        "ftruncate",
        "renameat2",
        "epoll_wait",
        "futex",
        "sigaltstack",
    ] {
        assert!(
            allowed.contains(needed),
            "the unit's SystemCallFilter blocks {needed}"
        );
    }
}

#[test]
fn shipped_config_is_the_defaults_with_every_key_written_out() {
    let path = repo_root().join("systemd/sluice.toml");
    let loaded = Config::load(&path).expect("systemd/sluice.toml loads");
    assert_eq!(
        loaded,
        Config::default(),
        "systemd/sluice.toml documents values that are not the defaults"
    );
    let written: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let defaults = defaults.as_table().unwrap();
    fn keys(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            match v {
                toml::Value::Table(inner) => keys(inner, &format!("{prefix}{k}."), out),
                _ => out.push(format!("{prefix}{k}")),
            }
        }
    }
    let (mut want, mut have) = (Vec::new(), Vec::new());
    keys(defaults, "", &mut want);
    keys(&written, "", &mut have);
    let missing: Vec<&String> = want.iter().filter(|k| !have.contains(k)).collect();
    assert!(missing.is_empty(), "sluice.toml does not show {missing:?}");
}

/// The process `strace` runs (its only child).
fn tracee(strace_pid: u32) -> i32 {
    let children =
        std::fs::read_to_string(format!("/proc/{strace_pid}/task/{strace_pid}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn the_syscall_filter_allows_every_call_sluice_makes() {
    let Some(analyze) = systemd_tool("systemd-analyze") else {
        return;
    };
    let Some(strace) = optional_tool("strace", "SLUICE_REQUIRE_STRACE", "strace") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "shards = 1");
    let trace = dir.path().join("trace");
    let mut d = Daemon::start_wrapped(
        dir.path(),
        None,
        &[
            strace.to_str().unwrap(),
            "-f",
            "-qq",
            "-o",
            trace.to_str().unwrap(),
        ],
    );
    d.wait_note("READY=1", 0, |n| n.has("READY=1"));
    // A Wasm job end to end: compile, instantiate, run, checkpoint.
    let (st, body) = support::post_json(
        &d.url("/api/v1/topics"),
        None,
        &json!({"name": "bids", "partitions": 1}),
    );
    assert_eq!(st, 201, "{body}");
    let line = br#"{"key":"1","timestamp":1000,"value":{"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","date_time":1000,"extra":""}}}"#;
    let url = d.url("/api/v1/topics/bids/records");
    let (st, body) = support::send("POST", &url, None, "application/x-ndjson", line);
    assert_eq!(st, 200, "{body}");
    let (st, body) = support::post_json(
        &d.url("/api/v1/jobs"),
        None,
        &json!({"name": "q0", "sources": [{"topic": "bids"}],
                "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": "q0"}}],
                "sinks": {"main": {"topic": {"topic": "q0-out"}}}}),
    );
    assert_eq!(st, 201, "{body}");
    d.wait_for("job q0 to run the record", |d| {
        let (_, j) = support::get(&d.url("/api/v1/jobs/q0"), None);
        (j["records_out"].as_u64()? >= 1).then_some(())
    });
    let url = d.url("/api/v1/jobs/q0/checkpoint");
    let (st, body) = support::send("POST", &url, None, "application/json", b"");
    assert_eq!(st, 200, "{body}");
    assert_eq!(support::get(&d.url("/metrics"), None).0, 200);
    let pid = tracee(d.child.id());
    let n = d.notes().len();
    // SAFETY: kill(2) on the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    d.wait_note("READY=1 after the reload", n, |n| n.has("READY=1"));
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(d.exit_status().success(), "{}", d.log());

    let used: BTreeSet<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let call = l.split_whitespace().nth(1)?;
            let name = call.split('(').next()?;
            (call.contains('(')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            .then(|| name.to_owned())
        })
        .collect();
    for seen in ["mprotect", "sched_setaffinity", "fdatasync", "rename"] {
        assert!(
            used.iter().any(|u| u.starts_with(seen)),
            "the trace lacks {seen}: {used:?}"
        );
    }
    let allowed = filter_allows(&analyze, &unit_keys(&unit_text()));
    let blocked: Vec<&String> = used.iter().filter(|u| !allowed.contains(*u)).collect();
    assert!(
        blocked.is_empty(),
        "sluice calls {blocked:?}, which the unit's SystemCallFilter would refuse (EPERM)"
    );
}
