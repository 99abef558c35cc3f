//! The daemon's surroundings, with the real binary: CPU placement (shards
//! on their cores, every other thread off them, configured cores checked
//! against the process mask), logging (plain text off the journal, journald
//! tried on it), and the test-only fault-injection route the watchdog test
//! relies on.

mod support;
mod systemd_support;

use std::path::Path;

use serde_json::json;
use support::send;
use systemd_support::{Daemon, write_config};

const ADMIN: &str = "admin-token-0123456789";

fn post(url: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> support::Reply {
    send("POST", url, token, content_type, body)
}

#[test]
fn shards_and_other_threads_run_on_separate_cores() {
    let cores = allowed_cores_of_this_process();
    if cores.len() < 2 {
        eprintln!("SKIPPED: this machine gives the test one core; placement needs two");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "shards = 1");
    let mut d = Daemon::start(dir.path(), None);
    d.wait_note("READY=1", 0, |n| n.has("READY=1"));
    let pid = d.child.id();
    let mut shard = None;
    let mut others = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap().path();
        let (Ok(name), Ok(status)) = (
            std::fs::read_to_string(t.join("comm")),
            std::fs::read_to_string(t.join("status")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_owned();
        if name.trim() == "sluice-shard-0" {
            shard = Some(list);
        } else {
            others.push((name.trim().to_owned(), list));
        }
    }
    let first = cores[0].to_string();
    assert_eq!(shard.as_deref(), Some(first.as_str()), "shard 0's mask");
    for (name, list) in &others {
        assert!(
            !list.split(',').any(|part| covers(part, cores[0])),
            "thread {name} may run on the shard's core {}: {list}",
            cores[0]
        );
    }
    assert!(others.iter().any(|(n, _)| n == "sluice-http"), "{others:?}");
}

#[test]
fn shard_cores_outside_the_process_mask_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "shard_cores = [1023]");
    let out = std::process::Command::new(systemd_support::BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("sluice.toml"))
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shard_cores") && err.contains("1023") && err.contains("CPUAffinity"),
        "{err}"
    );
}

fn covers(part: &str, core: usize) -> bool {
    match part.split_once('-') {
        Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).contains(&core),
        None => part.parse::<usize>().ok() == Some(core),
    }
}

fn allowed_cores_of_this_process() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    let mut cores = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cores.push(part.parse().unwrap()),
        }
    }
    cores
}

#[test]
fn debug_hang_route_exists_only_with_fault_injection_on() {
    let url = "/api/v1/debug/hang?shard=0&ms=10";
    let off = support::Server::start(1, |c| c.auth.admin_token = ADMIN.into());
    let (st, body) = post(&off.url(url), Some(ADMIN), "application/json", b"");
    assert_eq!(st, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such route"),
        "looks like any unknown route: {body}"
    );
    drop(off);
    let on = support::Server::start(2, |c| {
        c.auth.admin_token = ADMIN.into();
        c.testing.fault_injection = true;
    });
    let (st, _) = post(&on.url(url), None, "application/json", b"");
    assert_eq!(st, 401);
    for (query, says) in [
        ("shard=5&ms=10", "shards 0 to 1"),
        ("shard=0&ms=0", "1 to 60000 ms"),
        ("shard=0&ms=600000", "1 to 60000 ms"),
        ("shard=zero&ms=10", "?shard=<index>&ms=<milliseconds>"),
    ] {
        let (st, body) = post(
            &on.url(&format!("/api/v1/debug/hang?{query}")),
            Some(ADMIN),
            "application/json",
            b"",
        );
        assert_eq!(st, 400, "{query}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{query}: {msg}");
    }
    let (st, body) = post(&on.url(url), Some(ADMIN), "application/json", b"");
    assert_eq!((st, body), (202, json!({"shard": 0, "ms": 10})));
}

#[test]
fn logs_are_plain_text_off_the_journal_and_journald_is_tried_on_it() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "shards = 1");
    let mut d = Daemon::start(dir.path(), None);
    d.wait_note("READY=1", 0, |n| n.has("READY=1"));
    let log = d.log();
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe: {log:?}");
    assert!(!log.contains("journald"), "{log}");
    drop(d);

    // stderr is the journal stream systemd would have connected.
    if Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("SKIPPED (partly): a journald runs here, so the daemon would log into it");
        return;
    }
    let as_journal = r#"export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2); exec "$0" "$@""#;
    let mut d = Daemon::start_wrapped(dir.path(), None, &["/bin/sh", "-c", as_journal]);
    d.wait_note("READY=1", 0, |n| n.has("READY=1"));
    let log = d.log();
    assert!(
        log.contains("cannot reach journald") && log.contains("logging to stderr"),
        "{log}"
    );
}
