//! Reading `systemd/sluice.service` and checking it with `systemd-analyze`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::repo_root;

/// `key=value` lines of a unit file, values of repeated keys in order.
pub fn unit_keys(text: &str) -> BTreeMap<String, Vec<String>> {
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

pub fn one<'a>(keys: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match keys.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("the unit should set {key}= once, has {other:?}"),
    }
}

pub fn unit_text() -> String {
    std::fs::read_to_string(repo_root().join("systemd/sluice.service")).unwrap()
}

/// The unit with ExecStart pointing at `binary` (verify checks it exists).
pub fn unit_with_binary(text: &str, binary: &Path) -> String {
    text.replace(
        "ExecStart=/usr/bin/sluice ",
        &format!("ExecStart={} ", binary.display()),
    )
}

/// Runs `systemd-analyze verify` on `text` saved as `sluice.service`.
pub fn verify(analyze: &Path, text: &str) {
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
