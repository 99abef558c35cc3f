//! Disk full for real: a child process (this test binary, re-executed under
//! `unshare --mount`) mounts a 1 MiB tmpfs in its own mount namespace and fills it. The
//! append that does not fit fails with `DiskFull`, nothing of it is visible, the log stays
//! readable and consistent across a reopen, and appends succeed again once space is freed.
//!
//! Needs root (CI runs as root). Where the mechanism is unavailable the test fails loudly,
//! unless `SLUICE_SKIP_DISKFULL=1` explicitly skips it.

mod log_common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use log_common::*;
use sluice::log::{FsyncPolicy, LogError};

const CHILD_ENV: &str = "SLUICE_DISKFULL_CHILD";
const SKIP_ENV: &str = "SLUICE_SKIP_DISKFULL";
const MOUNT_FAILED: i32 = 77;

#[test]
#[ignore = "helper: run by disk_full_fails_the_append_and_keeps_the_log_consistent under unshare"]
fn diskfull_child() {
    if std::env::var(CHILD_ENV).is_err() {
        panic!(
            "diskfull_child runs only as the child of disk_full_fails_the_append_and_keeps_the_log_consistent"
        );
    }
    let mnt = tempfile::tempdir().unwrap();
    let target = CString::new(mnt.path().as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings; we are alone in a private mount namespace.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"size=1m".as_ptr().cast(),
        )
    };
    if r != 0 {
        println!("MOUNT-FAILED: {}", std::io::Error::last_os_error());
        std::process::exit(MOUNT_FAILED);
    }
    let data = mnt.path().join("data");
    let mut acked_end = 0;
    {
        let log = open(&data);
        // A second topic holding ~300 KiB, deleted later to free space.
        let filler = log
            .create_topic(cfg("filler", 1, 64 << 10, FsyncPolicy::Never))
            .unwrap();
        let mut fw = filler.partition(0).writer().unwrap();
        for b in 0..30 {
            let o = owned(b * 100, 100, |i| i as i64);
            fw.append(&records(&o), None).unwrap();
        }
        fw.sync().unwrap();
        drop(fw);

        let t = log
            .create_topic(cfg("main", 1, 64 << 10, FsyncPolicy::Always))
            .unwrap();
        let p = t.partition(0).clone();
        let mut w = p.writer().unwrap();
        let err = loop {
            let o = owned(acked_end, 100, |i| i as i64);
            match w.append_durable(&records(&o), None) {
                Ok(a) => acked_end = a.base_offset + a.count as u64,
                Err(e) => break e,
            }
            assert!(acked_end < 1_000_000, "a 1 MiB file system never filled up");
        };
        let msg = err.to_string();
        assert!(
            matches!(err, LogError::DiskFull { .. }),
            "expected DiskFull, got {err:?}"
        );
        assert!(
            msg.contains("disk full") && msg.contains("Free disk space"),
            "{msg}"
        );
        assert!(acked_end > 0);
        println!("disk full after {acked_end} records: {msg}");
        // Nothing of the failed batch is visible; everything before it reads back.
        assert_eq!(p.end_offset(), acked_end);
        assert_records(&read_from(&p, 0), 0, acked_end);
        // Still full: a retry fails the same way and changes nothing.
        let o = owned(acked_end, 100, |i| i as i64);
        assert!(matches!(
            w.append(&records(&o), None),
            Err(LogError::DiskFull { .. })
        ));
        assert_eq!(p.end_offset(), acked_end);
        // Free space by deleting the other topic: appends work again.
        log.delete_topic("filler").unwrap();
        let a = w
            .append_durable(&records(&o), None)
            .expect("append after freeing space");
        assert_eq!(a.base_offset, acked_end);
        acked_end += 100;
    }
    let log = open(&data);
    let p = log.topic("main").unwrap().partition(0).clone();
    assert_eq!(p.end_offset(), acked_end);
    assert!(p.damage().is_empty());
    assert_records(&read_from(&p, 0), 0, acked_end);
    println!("DISKFULL-CHILD-OK");
}

#[test]
fn disk_full_fails_the_append_and_keeps_the_log_consistent() {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!(
            "\n\n!!! SKIPPED: disk-full test skipped because {SKIP_ENV}=1 — ENOSPC handling is NOT verified in this run !!!\n"
        );
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "diskfull_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "disk-full test cannot run: starting `unshare` failed ({e}). It needs util-linux \
                 `unshare` and root to mount a small tmpfs; set {SKIP_ENV}=1 to skip it explicitly"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(MOUNT_FAILED) || stderr.contains("unshare failed") {
        panic!(
            "disk-full test cannot run: no private mount namespace or tmpfs mount here \
             (needs root).\nstdout: {stdout}\nstderr: {stderr}\nSet {SKIP_ENV}=1 to skip it explicitly"
        );
    }
    assert!(
        out.status.success() && stdout.contains("DISKFULL-CHILD-OK"),
        "disk-full child failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    eprintln!(
        "{}",
        stdout
            .lines()
            .find(|l| l.contains("disk full after"))
            .unwrap_or("")
    );
}
