//! `sluice-bench generate`: determinism, and files in exactly the shape Sluice's ingest takes.

mod common;

use std::fs;
use std::path::Path;

use common::{arg, bench_ok};
use serde_json::Value;

fn generate(dir: &Path, extra: &[&str]) {
    let mut args = vec!["generate"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", arg(dir)]);
    bench_ok(&args);
}

/// Every part file of a data directory, by name.
fn parts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = ["nexmark", "--events", "5000", "--seed", "7", "--parts", "2"];
    generate(&tmp.path().join("a"), &knobs);
    generate(&tmp.path().join("b"), &knobs);
    let (a, b) = (parts(&tmp.path().join("a")), parts(&tmp.path().join("b")));
    assert_eq!(a.len(), 2);
    assert_eq!(a, b, "two runs with seed 7 wrote different files");

    let other = ["nexmark", "--events", "5000", "--seed", "8", "--parts", "2"];
    generate(&tmp.path().join("c"), &other);
    assert_ne!(a, parts(&tmp.path().join("c")));

    let mp = [
        "payments", "--events", "3000", "--format", "msgpack", "--seed", "3",
    ];
    generate(&tmp.path().join("m1"), &mp);
    generate(&tmp.path().join("m2"), &mp);
    assert_eq!(parts(&tmp.path().join("m1")), parts(&tmp.path().join("m2")));
}

/// Checks one NDJSON ingest line and returns its value.
fn ingest_line(line: &str) -> (String, i64, Value) {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line}: {e}"));
    let obj = v.as_object().expect("each line is a JSON object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["key", "timestamp", "value"], "line {line}");
    let key = obj["key"].as_str().expect("key is a string").to_string();
    let ts = obj["timestamp"].as_i64().expect("timestamp is an integer");
    assert!(obj["value"].is_object(), "value is an object: {line}");
    (key, ts, obj["value"].clone())
}

#[test]
fn nexmark_ndjson_lines_are_ingest_records() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path(), &["nexmark", "--events", "2000"]);
    let text = fs::read_to_string(tmp.path().join("part-00000.ndjson")).unwrap();
    let mut kinds = std::collections::BTreeMap::new();
    let mut last_ts = i64::MIN;
    for (i, line) in text.lines().enumerate() {
        let (key, ts, value) = ingest_line(line);
        assert_eq!(key, i.to_string(), "key is the event id");
        let (kind, event) = value.as_object().unwrap().iter().next().unwrap();
        assert_eq!(
            event["date_time"].as_i64(),
            Some(ts),
            "timestamp = date_time"
        );
        assert!(ts >= last_ts);
        last_ts = ts;
        *kinds.entry(kind.clone()).or_insert(0) += 1;
    }
    assert_eq!(text.lines().count(), 2000);
    assert_eq!(kinds["person"], 40);
    assert_eq!(kinds["auction"], 120);
    assert_eq!(kinds["bid"], 1840);
    let manifest: Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["records"], 2000);
}

#[test]
fn scenario_ndjson_is_keyed_as_the_event_schemas_say() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &["payments", "--events", "1000", "--parts", "3"],
    );
    let mut lines = 0;
    for (_, bytes) in parts(tmp.path()) {
        for line in String::from_utf8(bytes).unwrap().lines() {
            let (key, ts, value) = ingest_line(line);
            assert_eq!(value["payer"].as_str(), Some(key.as_str()));
            assert_eq!(value["ts"].as_i64(), Some(ts));
            lines += 1;
        }
    }
    assert!(lines >= 1000, "{lines}");
}

#[test]
fn msgpack_frames_are_length_prefixed_ingest_batches() {
    let tmp = tempfile::tempdir().unwrap();
    generate(
        tmp.path(),
        &[
            "nexmark", "--events", "2500", "--format", "msgpack", "--batch", "1000",
        ],
    );
    let bytes = fs::read(tmp.path().join("part-00000.msgpack")).unwrap();
    let mut rest = &bytes[..];
    let mut sizes = Vec::new();
    let mut next_key = 0u64;
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        let frame: Value = rmp_serde::from_slice(&rest[4..4 + len]).unwrap();
        let records = frame.as_array().expect("a frame is an array of records");
        for r in records {
            assert_eq!(r["key"].as_str(), Some(next_key.to_string().as_str()));
            assert!(r["timestamp"].is_i64() && r["value"].is_object());
            next_key += 1;
        }
        sizes.push(records.len());
        rest = &rest[4 + len..];
    }
    assert_eq!(sizes, [1000, 1000, 500]);
}
