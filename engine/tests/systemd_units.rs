//! The files in `systemd/`: the unit passes `systemd-analyze verify` and
//! keeps its hardening, `install.sh` stages every file where the unit,
//! sysusers and tmpfiles entries expect it (in a scratch root, DESTDIR
//! style), `uninstall.sh` keeps the data unless told to purge, and the
//! shipped `sluice.toml` is the built-in defaults with every key written out.
//! With `strace` installed, the daemon's real system calls (start, ingest,
//! a Wasm job, checkpoint, reload, stop) all pass the unit's filter.

mod support;
mod systemd_support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sluice::config::Config;
use systemd_support::{BIN, Daemon, optional_tool, repo_root, systemd_tool, write_config};

/// `key=value` lines of a unit file, values of repeated keys in order.
fn unit_keys(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').expect("unit lines are key=value");
        keys.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    keys
}

fn one<'a>(keys: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match keys.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("the unit should set {key}= once, has {other:?}"),
    }
}

fn unit_text() -> String {
    std::fs::read_to_string(repo_root().join("systemd/sluice.service")).unwrap()
}

/// The unit with ExecStart pointing at `binary` (verify checks it exists).
fn unit_with_binary(text: &str, binary: &Path) -> String {
    text.replace(
        "ExecStart=/usr/bin/sluice ",
        &format!("ExecStart={} ", binary.display()),
    )
}

/// Runs `systemd-analyze verify` on `text` saved as `sluice.service`.
fn verify(analyze: &Path, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("sluice.service");
    std::fs::write(&unit, text).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{err}"
    );
    let about_us: Vec<&str> = err.lines().filter(|l| l.contains("sluice")).collect();
    assert!(
        about_us.is_empty(),
        "systemd-analyze verify warns:\n{}",
        about_us.join("\n")
    );
}

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

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn run_script(script: &str, destdir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo_root().join("systemd").join(script))
        .args(args)
        .env("DESTDIR", destdir)
        .output()
        .unwrap()
}

fn install(destdir: &Path) {
    let out = run_script("install.sh", destdir, &["--binary", BIN]);
    assert!(
        out.status.success(),
        "install.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `path` inside the scratch root.
fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[test]
fn install_sh_puts_every_file_where_the_unit_expects_it() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    install(r);
    for (path, want) in [
        ("/usr/bin/sluice", 0o755),
        ("/usr/lib/systemd/system/sluice.service", 0o644),
        ("/usr/lib/sysusers.d/sluice.conf", 0o644),
        ("/usr/lib/tmpfiles.d/sluice.conf", 0o644),
        ("/usr/share/sluice/sluice.toml", 0o644),
        ("/etc/sluice/sluice.toml", 0o640),
        ("/usr/share/doc/sluice/operations.md", 0o644),
        ("/usr/share/doc/sluice/grafana-dashboard.json", 0o644),
        ("/usr/share/doc/sluice/prometheus-alerts.yml", 0o644),
    ] {
        assert_eq!(mode(&inside(r, path)), want, "mode of {path}");
    }

    // The unit's ExecStart names the installed binary and config file.
    let unit =
        std::fs::read_to_string(inside(r, "/usr/lib/systemd/system/sluice.service")).unwrap();
    let keys = unit_keys(&unit);
    let exec: Vec<&str> = one(&keys, "ExecStart").split_whitespace().collect();
    assert_eq!(exec[1..3], ["serve", "--config"], "{exec:?}");
    let out = Command::new(inside(r, exec[0]))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "the installed binary runs");
    let config = Config::load(&inside(r, exec[3])).expect("the installed config loads");

    // The data dir is the unit's StateDirectory, its working directory and
    // the service user's home; tmpfiles creates it with the unit's mode.
    let state = format!("/var/lib/{}", one(&keys, "StateDirectory"));
    assert_eq!(config.data_dir, Path::new(&state));
    assert_eq!(one(&keys, "WorkingDirectory"), state);
    let user = one(&keys, "User");
    assert_eq!(one(&keys, "Group"), user);
    let sysusers = std::fs::read_to_string(inside(r, "/usr/lib/sysusers.d/sluice.conf")).unwrap();
    let entry = sysusers
        .lines()
        .find(|l| l.starts_with("u "))
        .expect("a u line");
    let home = entry.split_whitespace().rev().nth(1).unwrap();
    assert!(entry.split_whitespace().nth(1) == Some(user), "{entry}");
    assert_eq!(home, state, "{entry}");
    let tmpfiles = std::fs::read_to_string(inside(r, "/usr/lib/tmpfiles.d/sluice.conf")).unwrap();
    let dirs: BTreeMap<&str, Vec<&str>> = tmpfiles
        .lines()
        .filter(|l| l.starts_with("d "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1], f[2..5].to_vec())
        })
        .collect();
    assert_eq!(
        dirs.get(state.as_str()),
        Some(&vec![one(&keys, "StateDirectoryMode"), user, user]),
        "{tmpfiles}"
    );
    let config_dir = Path::new(exec[3]).parent().unwrap().to_str().unwrap();
    assert!(dirs.contains_key(config_dir), "{tmpfiles}");

    // The installed unit verifies with the installed binary.
    if let Some(analyze) = systemd_tool("systemd-analyze") {
        verify(&analyze, &unit_with_binary(&unit, &inside(r, exec[0])));
    }
    // systemd's own tools accept the sysusers and tmpfiles entries.
    if let (Some(sysusers_bin), Some(tmpfiles_bin)) = (
        systemd_tool("systemd-sysusers"),
        systemd_tool("systemd-tmpfiles"),
    ) {
        let st = Command::new(sysusers_bin)
            .arg(format!("--root={}", r.display()))
            .arg(inside(r, "/usr/lib/sysusers.d/sluice.conf"))
            .output()
            .unwrap();
        assert!(st.status.success(), "systemd-sysusers: {st:?}");
        let passwd = std::fs::read_to_string(inside(r, "/etc/passwd")).unwrap();
        let line = passwd
            .lines()
            .find(|l| l.starts_with(&format!("{user}:")))
            .unwrap_or_else(|| panic!("no {user} in {passwd}"));
        let f: Vec<&str> = line.split(':').collect();
        assert_eq!(
            (f[5], f[6]),
            (state.as_str(), "/usr/sbin/nologin"),
            "{line}"
        );
        let st = Command::new(tmpfiles_bin)
            .arg(format!("--root={}", r.display()))
            .arg("--create")
            .arg(inside(r, "/usr/lib/tmpfiles.d/sluice.conf"))
            .output()
            .unwrap();
        assert!(st.status.success(), "systemd-tmpfiles: {st:?}");
        let data = inside(r, &state);
        assert_eq!(mode(&data), 0o750);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(
                data.metadata().unwrap().uid().to_string(),
                f[2],
                "{state} belongs to {user}"
            );
        }
    }
}

#[test]
fn install_sh_upgrades_keep_the_operators_config() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    install(r);
    let config = inside(r, "/etc/sluice/sluice.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:7171\"\n").unwrap();
    std::fs::write(inside(r, "/usr/bin/sluice"), b"old binary").unwrap();
    install(r);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "listen = \"127.0.0.1:7171\"\n"
    );
    assert_eq!(
        std::fs::read(inside(r, "/usr/bin/sluice")).unwrap(),
        std::fs::read(BIN).unwrap(),
        "the binary is replaced"
    );
    assert!(!inside(r, "/usr/bin/.sluice.new").exists());
}

#[test]
fn install_sh_names_what_is_wrong_with_its_arguments() {
    let root = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["--binary"], "--binary needs"),
        (vec!["--binary", "/no/such/sluice"], "/no/such/sluice"),
        (vec!["--frobnicate"], "unknown argument '--frobnicate'"),
    ] {
        let out = run_script("install.sh", root.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!inside(root.path(), "/usr/bin/sluice").exists());
}

#[test]
fn uninstall_sh_keeps_the_data_unless_purged() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    install(r);
    let data = inside(r, "/var/lib/sluice/topics/orders/0");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("00000000000000000000.log"), b"records").unwrap();
    let out = run_script("uninstall.sh", r, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for gone in [
        "/usr/bin/sluice",
        "/usr/lib/systemd/system/sluice.service",
        "/usr/lib/sysusers.d/sluice.conf",
        "/usr/lib/tmpfiles.d/sluice.conf",
        "/usr/share/sluice",
        "/usr/share/doc/sluice",
    ] {
        assert!(!inside(r, gone).exists(), "{gone} left behind");
    }
    assert!(
        data.join("00000000000000000000.log").exists(),
        "data deleted"
    );
    assert!(
        inside(r, "/etc/sluice/sluice.toml").exists(),
        "config deleted"
    );
    let out = run_script("uninstall.sh", r, &["--purge"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!inside(r, "/var/lib/sluice").exists());
    assert!(!inside(r, "/etc/sluice").exists());
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
