//! `sluice-bench run`: a `--quick` run of the reference system writes rows with exactly the
//! published schema; a wrong answer gets no throughput; a missing peer is named.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{arg, bench, bench_ok};
use serde_json::Value;

/// The fields every row has, in the published order.
const REQUIRED: [&str; 16] = [
    "workload",
    "system",
    "mode",
    "shards",
    "events",
    "wall_s",
    "events_per_s",
    "events_per_s_per_core",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "peak_rss_mb",
    "correct",
    "command",
    "machine",
    "date",
];
/// Fields a row may add.
const OPTIONAL: [&str; 9] = [
    "cpu_s",
    "startup_s",
    "overhead_s",
    "result_rows",
    "repetitions",
    "latency_cdf",
    "timeline",
    "measures",
    "note",
];

/// `sluice-bench run --quick --quiet <args>` into `dir`'s results file and data cache;
/// returns the results file.
fn quick_run(dir: &Path, args: &[&str]) -> std::path::PathBuf {
    let results = dir.join("latest.json");
    let data = dir.join("data");
    let mut all = vec!["run", "--quick", "--quiet"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--results", arg(&results), "--data-dir", arg(&data)]);
    bench_ok(&all);
    results
}

fn read_rows(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).expect("the results file exists");
    let v: Value = serde_json::from_str(&text).expect("the results file is JSON");
    v.as_array().expect("an array of rows").clone()
}

#[test]
fn quick_reference_run_writes_rows_with_the_published_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let results = quick_run(
        tmp.path(),
        &["--system", "reference", "--workload", "q0,q5,fraud-rules"],
    );
    let rows = read_rows(&results);
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let obj = row.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        for k in REQUIRED {
            assert!(obj.contains_key(k), "row lacks `{k}`: {row}");
        }
        for k in &keys {
            assert!(
                REQUIRED.contains(k) || OPTIONAL.contains(k),
                "unexpected `{k}`"
            );
        }
        assert_eq!(obj["system"], "reference");
        assert_eq!(obj["mode"], "in-process");
        assert_eq!(obj["shards"], 1);
        assert!(obj["wall_s"].as_f64().unwrap() > 0.0);
        assert!(obj["events_per_s"].as_f64().unwrap() > 0.0);
        assert!(obj["p50_ms"].is_null() && obj["p99_ms"].is_null() && obj["p999_ms"].is_null());
        assert!(
            obj["command"]
                .as_str()
                .unwrap()
                .starts_with("sluice-bench run --quick")
        );
        assert!(obj["machine"].as_str().unwrap().ends_with("cores)"));
        assert!(obj["date"].as_str().unwrap().ends_with('Z'));
    }
    let by = |w: &str| rows.iter().find(|r| r["workload"] == w).unwrap();
    assert_eq!(by("q0")["events"], 20_000);
    assert_eq!(by("q0")["result_rows"], 18_400, "92% of events are bids");
    assert!(
        by("q0")["correct"].is_null(),
        "the reference is not checked against itself"
    );
    assert_eq!(
        by("fraud-rules")["correct"],
        true,
        "ground truth alerts found"
    );

    // A second run replaces the rows instead of adding to them.
    quick_run(tmp.path(), &["--workload", "q0"]);
    assert_eq!(read_rows(&results).len(), 3);
}

#[test]
fn quick_sluice_and_native_runs_are_checked_against_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let results = quick_run(
        tmp.path(),
        &[
            "--system",
            "sluice,native",
            "--workload",
            "q0,q5,q11,fraud-rules,surge-pricing",
            "--shards",
            "2",
        ],
    );
    let rows = read_rows(&results);
    // No native build of surge-pricing: 4 + 4 + 1 rows.
    assert_eq!(rows.len(), 9, "{rows:?}");
    for row in &rows {
        let obj = row.as_object().unwrap();
        for k in REQUIRED {
            assert!(obj.contains_key(k), "row lacks `{k}`: {row}");
        }
        if obj["workload"] == "surge-pricing" {
            assert!(
                obj["correct"].is_null(),
                "no reference to check against: {row}"
            );
        } else {
            assert_eq!(obj["correct"], true, "checked and right: {row}");
        }
        assert!(obj["events_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            obj["events_per_s_per_core"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        assert!(obj["result_rows"].as_u64().unwrap() > 0, "{row}");
    }
    let engine = |w: &str| {
        rows.iter()
            .find(|r| r["workload"] == w && r["system"] == "sluice")
            .unwrap()
    };
    assert_eq!(engine("q0")["mode"], "in-process");
    assert_eq!(engine("q0")["shards"], 2);
    assert_eq!(engine("q0")["result_rows"], 18_400, "every bid, converted");
}

#[test]
fn a_discard_sink_run_is_checked_by_count_and_labelled() {
    let tmp = tempfile::tempdir().unwrap();
    let results = quick_run(
        tmp.path(),
        &[
            "--system",
            "sluice",
            "--workload",
            "q0,q5",
            "--shards",
            "2",
            "--sink",
            "discard",
        ],
    );
    let rows = read_rows(&results);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["mode"], "in-process, discard sink", "{row}");
        assert_eq!(
            row["correct"], true,
            "the dropped count matches the reference: {row}"
        );
    }
    let q0 = rows.iter().find(|r| r["workload"] == "q0").unwrap();
    assert_eq!(q0["result_rows"], 18_400, "every bid counted once: {q0}");
    // Latency runs need the output topic, and the scenarios leave outputs without
    // sinks (dropped, so they would inflate the count): both refused, not mismeasured.
    let data = tmp.path().join("data");
    let refusal = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--quick",
            "--quiet",
            "--no-save",
            "--system",
            "sluice",
            "--sink",
            "discard",
            "--data-dir",
            arg(&data),
        ];
        args.extend_from_slice(extra);
        let out = bench(&args);
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    };
    let said = refusal(&["--workload", "q0", "--open-loop-rate", "10000"]);
    assert!(
        said.contains("discard sink applies to in-process closed-loop"),
        "{said}"
    );
    let said = refusal(&["--workload", "leaderboard"]);
    assert!(
        said.contains("discard sink applies to the Nexmark queries"),
        "{said}"
    );
}

#[test]
fn a_fixed_partition_count_is_kept_for_every_shard_count_and_labelled() {
    let tmp = tempfile::tempdir().unwrap();
    let results = quick_run(
        tmp.path(),
        &[
            "--system",
            "sluice",
            "--workload",
            "q5",
            "--shards",
            "1,2",
            "--partitions",
            "3",
            "--sink",
            "discard",
        ],
    );
    let rows = read_rows(&results);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(
            row["mode"], "in-process, discard sink, 3 partitions",
            "{row}"
        );
        assert_eq!(row["correct"], true, "{row}");
        let measures = row["measures"].as_str().unwrap();
        assert!(
            measures.contains("3 partitions for any number of shards"),
            "{measures}"
        );
    }
    let said = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--quick",
            "--quiet",
            "--no-save",
            "--system",
            "sluice",
        ];
        args.extend_from_slice(extra);
        let out = bench(&args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let zero = said(&["--workload", "q0", "--partitions", "0"]);
    assert!(
        zero.contains("--partitions") && zero.contains("use 1..="),
        "{zero}"
    );
    let both = said(&["--partitions", "4", "--partitions-per-shard", "1"]);
    assert!(both.contains("cannot be used with"), "{both}");
}

/// A stand-in for bench/peers/flink/run.sh that reports `rows` result rows.
fn fake_flink(dir: &Path, rows: u64) -> std::path::PathBuf {
    let path = dir.join("fake-flink.sh");
    let line = format!(
        r#"{{"query": "q2", "events": 20000, "rep": 0, "wall_s": 0.5, "result_rows": {rows}, "startup_s": 1.0, "cpu_s": 0.9, "peak_rss_mb": 100.0}}"#
    );
    fs::write(
        &path,
        format!("#!/bin/sh\necho 'nexmark_flink: pretending'>&2\necho '{line}'\n"),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Several shard counts: their repetitions alternate (so drift on a shared machine
/// reaches each alike), and each gets its row. The fake runner logs every call.
#[test]
fn several_shard_counts_alternate_their_repetitions_and_get_a_row_each() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = tmp.path().join("calls");
    let line = r#"{"query": "q2", "events": 20000, "rep": 0, "wall_s": 0.5, "result_rows": 69, "startup_s": 1.0, "cpu_s": 0.9, "peak_rss_mb": 100.0}"#;
    let runner = tmp.path().join("logging-flink.sh");
    fs::write(
        &runner,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do case \"$1\" in --parallelism|--warmup|--repetitions) printf '%s=%s ' \"$1\" \"$2\" >> {calls};; esac; shift; done\necho >> {calls}\necho '{line}'\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&runner, fs::Permissions::from_mode(0o755)).unwrap();
    let results = quick_run(
        tmp.path(),
        &[
            "--system",
            "flink",
            "--workload",
            "q2",
            "--shards",
            "1,2",
            "--warmup",
            "1",
            "--repetitions",
            "2",
            "--flink-runner",
            arg(&runner),
        ],
    );
    let log = fs::read_to_string(&calls).unwrap();
    let parallelism: Vec<&str> = log
        .lines()
        .map(|l| {
            assert!(
                l.contains("--warmup=0 --repetitions=1"),
                "one repetition per call: {l}"
            );
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("--parallelism="))
                .unwrap()
        })
        .collect();
    assert_eq!(parallelism, ["1", "2", "1", "2", "1", "2"], "{log}");
    let rows = read_rows(&results);
    let shards: Vec<&Value> = rows.iter().map(|r| &r["shards"]).collect();
    assert_eq!(shards, [1, 2], "{rows:?}");
    for row in &rows {
        assert_eq!(
            row["repetitions"], 2,
            "the warm-up round is not counted: {row}"
        );
        assert_eq!(row["correct"], true, "{row}");
    }
    let refused = bench(&[
        "run",
        "--quick",
        "--quiet",
        "--no-save",
        "--shards",
        "2,1,2",
    ]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("names 2 twice"),
        "{said}"
    );
}

#[test]
fn a_wrong_answer_is_recorded_without_throughput_and_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("latest.json");
    let runner = fake_flink(tmp.path(), 1);
    let out = bench(&[
        "run",
        "--quick",
        "--quiet",
        "--system",
        "flink",
        "--workload",
        "q2",
        "--results",
        arg(&results),
        "--data-dir",
        arg(&tmp.path().join("data")),
        "--flink-runner",
        arg(&runner),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not match the reference"), "{stderr}");
    let rows = read_rows(&results);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["correct"], false);
    assert!(rows[0]["events_per_s"].is_null() && rows[0]["events_per_s_per_core"].is_null());
    assert!(
        rows[0]["note"]
            .as_str()
            .unwrap()
            .contains("1 result rows, expected")
    );
    assert_eq!(rows[0]["mode"], "local");
    assert_eq!(rows[0]["startup_s"], 1.0);
}

#[test]
fn flink_runner_refuses_clearly_when_flink_is_not_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/flink/run.sh");
    let out = Command::new(script)
        .args(["--input", "/nonexistent"])
        .env("SLUICE_PEERS_HOME", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not installed") && stderr.contains("install.sh"),
        "{stderr}"
    );

    // Through the harness: the error names Flink and the install script.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
        .args([
            "run",
            "--quick",
            "--quiet",
            "--system",
            "flink",
            "--workload",
            "q0",
            "--no-save",
        ])
        .args(["--data-dir", arg(&tmp.path().join("data"))])
        .env("SLUICE_PEERS_HOME", tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flink is not installed") && stderr.contains("install.sh"),
        "{stderr}"
    );
}

#[test]
fn an_open_loop_run_of_the_engine_reports_latency_and_says_how_it_was_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let results = quick_run(
        tmp.path(),
        &[
            "--system",
            "sluice",
            "--workload",
            "q0",
            "--shards",
            "1",
            "--open-loop-rate",
            "50000",
        ],
    );
    let rows = read_rows(&results);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["mode"], "in-process @ 50 K/s", "{row}");
    assert_eq!(row["correct"], true, "{row}");
    let (p50, p99) = (row["p50_ms"].as_f64(), row["p99_ms"].as_f64());
    assert!(p50.is_some_and(|p| p > 0.0) && p99 >= p50, "{row}");
    let measures = row["measures"].as_str().unwrap();
    assert!(
        measures.contains("intended send times") && !measures.contains("preloaded"),
        "{measures}"
    );
    // q2 has no output per bid for the watcher to count: skipped, saying why, and no row.
    let data = tmp.path().join("data");
    let out = bench(&[
        "run",
        "--quick",
        "--quiet",
        "--no-save",
        "--system",
        "sluice",
        "--workload",
        "q2",
        "--open-loop-rate",
        "50000",
        "--data-dir",
        arg(&data),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    let rows = String::from_utf8_lossy(&out.stdout);
    assert!(!rows.contains("\"workload\""), "q2 ran open loop: {rows}");
    assert!(
        said.contains("skipped q2")
            && said.contains("q0 and q1 only")
            && said.contains("--workload q0 or q1"),
        "{said}"
    );
}
