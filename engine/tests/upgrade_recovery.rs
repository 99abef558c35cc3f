//! Plugin upgrades and the unhappy paths of recovery, through the real
//! engine, the real HTTP API and real plugins:
//! - an upgrade continues from the old version's snapshot, a version that
//!   cannot read that snapshot is refused with the plugin's error while the
//!   old one keeps running, and a rollback works the same way;
//! - a damaged newest checkpoint falls back to the one before it and the
//!   results stay exactly those of an undisturbed run;
//! - an output that lost data its checkpoint counts on pauses the job with
//!   a message that says what is missing and what to do.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, get, post_json, wait_for};

const PARTITIONS: u32 = 2;
const WINDOW_MS: i64 = 60_000;

/// `n` payments: key `k<i % 5>`, one every 100 ms from `from`, amount `i`.
fn payments(from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            json!({"key": format!("k{}", i % 5), "timestamp": i as i64 * 100,
                   "value": {"amount": i}})
        })
        .collect()
}

/// One far-future record per partition, so every partition's watermark
/// passes the first window and it closes.
fn flush() -> Vec<Value> {
    support::one_key_per_partition(PARTITIONS)
        .into_iter()
        .map(|(_, key)| json!({"key": key, "timestamp": 10 * WINDOW_MS, "value": {"amount": 0}}))
        .collect()
}

/// (count, total) per key of the first window, computed from the input.
fn expected(records: &[Value]) -> BTreeMap<String, (u64, u64)> {
    let mut want = BTreeMap::new();
    for r in records {
        if r["timestamp"].as_i64().unwrap() < WINDOW_MS {
            let e = want
                .entry(r["key"].as_str().unwrap().to_owned())
                .or_insert((0, 0));
            e.0 += 1;
            e.1 += r["value"]["amount"].as_u64().unwrap();
        }
    }
    want
}

fn ingest(s: &Server, records: &[Value]) {
    support::ingest_json(s, "pay", records);
}

/// Uploads bundled plugin `plugin`'s module as `name@version`.
fn upload(s: &Server, name: &str, version: &str, plugin: &str) {
    let wasm = sluice::bundled::bundled_plugin(plugin).unwrap().wasm;
    support::upload_plugin(s, name, version, wasm);
}

fn setup(s: &Server, plugin: &str, checkpoint_interval_ms: u64) {
    support::create_topic(s, "pay", PARTITIONS);
    support::create_job(
        s,
        &json!({"name": "totals", "sources": [{"topic": "pay"}],
            "operators": [{"plugin": plugin, "config": {}}],
            "checkpoint_interval_ms": checkpoint_interval_ms,
            "sinks": {"main": {"topic": {"topic": "totals-out"}}}}),
    );
}

fn job(s: &Server) -> Value {
    let (st, body) = get(&s.url("/api/v1/jobs/totals"), None);
    assert_eq!(st, 200, "{body}");
    body
}

/// Waits until the job has read everything in its source.
fn caught_up(s: &Server) {
    wait_for("the job to catch up", Duration::from_secs(60), || {
        let j = job(s);
        (j["state"] == "running" && j["lag"] == 0 && j["records_in"].as_u64()? > 0).then_some(())
    });
}

fn upgrade(s: &Server, version: &str) -> (u16, Value) {
    post_json(
        &s.url("/api/v1/jobs/totals/upgrade"),
        None,
        &json!({"plugin": "totals", "version": version}),
    )
}

/// The first window's (count, total) per key in the output topic, and how
/// many such rows there are (a duplicate would show).
fn first_window(s: &Server) -> (BTreeMap<String, (u64, u64)>, usize) {
    let topic = s.engine.log.topic("totals-out").expect("output topic");
    let (mut got, mut rows) = (BTreeMap::new(), 0);
    for p in topic.partitions() {
        p.reader()
            .read(p.start_offset(), usize::MAX, usize::MAX, |rv| {
                let v: Value = rmp_serde::from_slice(rv.value).unwrap();
                if v["window_start"] == 0 {
                    assert_eq!(v["window_end"], WINDOW_MS);
                    rows += 1;
                    got.insert(
                        v["key"].as_str().unwrap().to_owned(),
                        (v["count"].as_u64().unwrap(), v["total"].as_u64().unwrap()),
                    );
                }
            })
            .unwrap();
    }
    (got, rows)
}

fn wait_for_first_window(s: &Server, keys: usize) -> BTreeMap<String, (u64, u64)> {
    wait_for(
        "the first window's results",
        Duration::from_secs(60),
        || {
            let (got, rows) = first_window(s);
            (rows >= keys).then(|| {
                assert_eq!(rows, keys, "one row per key: {got:?}");
                got
            })
        },
    )
}

#[test]
fn upgrade_continues_from_the_snapshot_refuses_a_version_that_cannot_read_it_and_rolls_back() {
    let s = Server::start(2, |_| {});
    upload(&s, "totals", "1.0.0", "window-totals");
    upload(&s, "totals", "1.1.0", "window-totals");
    // Accepts the same (empty) config, but keeps other state.
    upload(&s, "totals", "2.0.0", "sessionize");
    setup(&s, "totals@1.0.0", 100);

    // Half of the first window on 1.0.0, the other half on 1.1.0: the
    // totals can only be right if the state crossed the upgrade.
    let first = payments(0, 300);
    let second = payments(300, 300);
    ingest(&s, &first);
    caught_up(&s);
    let (st, body) = upgrade(&s, "1.1.0");
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["spec"]["operators"][0]["plugin"], "totals@1.1.0");
    ingest(&s, &second);
    caught_up(&s);

    // A version that cannot read the state is refused with its error; the
    // job goes on, on the version it had.
    let (st, body) = upgrade(&s, "2.0.0");
    assert_eq!(st, 409, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("totals@2.0.0")
            && msg.contains("cannot read the state")
            && msg.contains("continues on its current version"),
        "{msg}"
    );
    let j = job(&s);
    assert_eq!(j["state"], "running", "{j}");
    assert_eq!(j["spec"]["operators"][0]["plugin"], "totals@1.1.0");

    // Rollback is an upgrade to the older version, with the same guarantee.
    let (st, body) = upgrade(&s, "1.0.0");
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["spec"]["operators"][0]["plugin"], "totals@1.0.0");
    ingest(&s, &flush());

    let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
    let want = expected(&all);
    assert_eq!(wait_for_first_window(&s, want.len()), want);
    let j = job(&s);
    assert_eq!(j["errors"], 0, "{j}");

    // Versions in use cannot be deleted; the unused one can.
    let (st, _) = support::delete(&s.url("/api/v1/plugins/totals/1.0.0"), None);
    assert_eq!(st, 409);
    let (st, body) = support::delete(&s.url("/api/v1/plugins/totals/2.0.0"), None);
    assert_eq!(st, 204, "{body}");
}

/// The checkpoint files of job `totals`, oldest first.
fn checkpoints(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("checkpoints/totals")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|x| x == "ckpt") {
                out.push(p);
            }
        }
    }
    out.sort_by_key(|p| p.file_name().unwrap().to_owned());
    out
}

#[test]
fn a_damaged_checkpoint_falls_back_to_the_previous_one_and_results_stay_exact() {
    let s = Server::start(1, |_| {});
    // Checkpoints only when asked and at stop, so which one recovery used
    // shows in how much it replayed.
    setup(&s, "window-totals@0.1.0", 3_600_000);
    let first = payments(0, 300);
    ingest(&s, &first);
    caught_up(&s);
    // Two checkpoints at known points: after `first`, and after `second`.
    let (st, body) = post_json(&s.url("/api/v1/jobs/totals/checkpoint"), None, &json!({}));
    assert_eq!(st, 200, "{body}");
    let second = payments(300, 300);
    ingest(&s, &second);
    caught_up(&s);
    let dir = s.stop();

    // Flip a byte in the middle of the newest checkpoint of every shard.
    let files = checkpoints(dir.path());
    assert!(files.len() >= 2, "{files:?}");
    let newest = files.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(newest, &bytes).unwrap();

    let s = Server::start_in(dir, 1, |_| {});
    let (st, ready) = get(&s.url("/readyz"), None);
    let problems = wait_for("recovery", Duration::from_secs(60), || {
        let (st, ready) = get(&s.url("/readyz"), None);
        (st == 200).then_some(ready)
    });
    assert_eq!(
        problems["recovery"]["replay_records"], 300,
        "replayed what came after the older checkpoint: {problems}"
    );
    let text = problems.to_string();
    assert!(
        text.contains("checksum") && text.contains(newest.file_name().unwrap().to_str().unwrap()),
        "recovery names the damaged checkpoint: {text} (first answer {st}: {ready})"
    );
    ingest(&s, &flush());
    let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
    let want = expected(&all);
    assert_eq!(
        wait_for_first_window(&s, want.len()),
        want,
        "replayed from the older checkpoint: nothing lost, nothing counted twice"
    );
}

#[test]
fn an_output_that_lost_checkpointed_data_pauses_the_job_and_says_what_to_do() {
    let s = Server::start(1, |_| {});
    setup(&s, "window-totals@0.1.0", 100);
    let mut records = payments(0, 300);
    records.extend(flush());
    ingest(&s, &records);
    wait_for_first_window(&s, expected(&records).len());
    let dir = s.stop();

    // Remove the output's segments: the checkpoint counts records that are
    // no longer there.
    let topic_dir = dir.path().join("topics/totals-out");
    let mut removed = 0;
    for p in std::fs::read_dir(&topic_dir).unwrap() {
        let part = p.unwrap().path();
        if !part.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&part).unwrap() {
            let f = f.unwrap().path();
            if f.extension()
                .is_some_and(|x| x == "log" || x == "index" || x == "timeindex")
            {
                std::fs::remove_file(&f).unwrap();
                removed += 1;
            }
        }
    }
    assert!(
        removed > 0,
        "found the output's segments in {}",
        topic_dir.display()
    );

    let s = Server::start_in(dir, 1, |_| {});
    let j = job(&s);
    assert_eq!(j["state"], "paused", "{j}");
    let reason = j["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("totals-out")
            && reason.contains("lost data")
            && reason.contains("Restore the data dir from a backup"),
        "{j}"
    );
    // Resuming cannot make it whole either, and says the same.
    let (st, body) = post_json(&s.url("/api/v1/jobs/totals/resume"), None, &json!({}));
    assert!(st >= 400, "{body}");
    assert!(body.to_string().contains("lost data"), "{body}");
    // Nothing was written behind the job's back.
    let out = s.engine.log.topic("totals-out").unwrap();
    assert!(out.partitions().iter().all(|p| p.end_offset() == 0));
    // The rest of the appliance works: it becomes ready (the recovery thread
    // notices within its polling interval; a paused job does not hold it back).
    wait_for("readiness", Duration::from_secs(10), || {
        (get(&s.url("/readyz"), None).0 == 200).then_some(())
    });
}
