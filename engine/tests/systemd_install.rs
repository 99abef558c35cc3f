//! `systemd/install.sh` and `uninstall.sh` in a scratch root (DESTDIR
//! style): every file lands with its mode where the unit, the sysusers and
//! the tmpfiles entries expect it, systemd's own tools accept those entries,
//! upgrades keep the operator's config, bad arguments are named, and
//! uninstalling keeps the data unless told to purge.

mod systemd_support;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sluice::config::Config;
use systemd_support::unit::{one, unit_keys, unit_with_binary, verify};
use systemd_support::{BIN, repo_root, systemd_tool};

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
