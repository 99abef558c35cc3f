//! What a job spec asks for, end to end through a real server and the real
//! `sdk-selftest` plugin: where each source starts reading, keys and event times taken
//! from fields, late events, idle partitions, stopping and resuming, and the `pause`
//! error policy. Several jobs run at once over the same topic in most of them.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, job_status, post_json, read_all, topic_records, wait_for};

/// Job `name` reading `cmds` from `start` and sending `main` to topic `out-<name>`.
fn emit_job(name: &str, start: Value) -> Value {
    json!({"name": name, "sources": [{"topic": "cmds", "start": start}],
        "operators": [{"plugin": "selftest@1.0.0"}],
        "sinks": {"main": {"topic": {"topic": format!("out-{name}")}}}})
}

/// `n` commands emitting one record each, timestamps from `first`, all under key `k`.
fn emits(first: i64, n: i64) -> Vec<Value> {
    (first..first + n)
        .map(|t| json!({"key": "k", "timestamp": t, "value": {"cmd": "emit", "output": "main", "n": 1}}))
        .collect()
}

/// Waits until job `name` has read everything and `topic` holds `n` records.
fn wait_for_outputs(s: &Server, name: &str, topic: &str, n: u64) {
    wait_for(
        &format!("{n} records in {topic}"),
        Duration::from_secs(60),
        || (job_status(s, name)["lag"] == 0 && topic_records(s, topic) >= n).then_some(()),
    );
}

fn timestamps(s: &Server, topic: &str) -> Vec<i64> {
    let mut ts: Vec<i64> = read_all(s, topic).into_iter().map(|r| r.1).collect();
    ts.sort_unstable();
    ts
}

#[test]
fn each_source_start_position_picks_where_a_new_job_begins() {
    let s = support::with_selftest(1, 1, |_| {});
    support::ingest_json(&s, "cmds", &emits(1_000, 100));
    let starts = [
        ("earliest", json!("earliest")),
        ("latest", json!("latest")),
        ("offset", json!({"offset": 40})),
        ("timestamp", json!({"timestamp": 1_070})),
    ];
    for (name, start) in &starts {
        support::create_job(&s, &emit_job(name, start.clone()));
    }
    support::ingest_json(&s, "cmds", &emits(2_000, 10));

    let later: Vec<i64> = (2_000..2_010).collect();
    let expected = |from: Option<i64>| -> Vec<i64> {
        from.map_or(Vec::new(), |f| (f..1_100).collect())
            .into_iter()
            .chain(later.iter().copied())
            .collect()
    };
    for (name, from) in [
        ("earliest", Some(1_000)),
        ("latest", None),
        ("offset", Some(1_040)),
        ("timestamp", Some(1_070)),
    ] {
        let want = expected(from);
        let topic = format!("out-{name}");
        wait_for_outputs(&s, name, &topic, want.len() as u64);
        assert_eq!(timestamps(&s, &topic), want, "start {name}");
    }
}

#[test]
fn keys_and_event_times_from_fields_rekey_the_stream_and_stamp_the_outputs() {
    const N: usize = 2_000;
    let s = support::with_selftest(2, 4, |_| {});
    // The record keys say nothing about the user; the field does.
    let records: Vec<Value> = (0..N)
        .map(|i| {
            json!({"key": format!("r{}", i % 7), "timestamp": 0,
                "value": {"cmd": "count", "user": format!("u{}", i % 5), "ts": 50_000 + i}})
        })
        .collect();
    for chunk in records.chunks(500) {
        support::ingest_json(&s, "cmds", chunk);
    }
    // Past the re-keying, a record waits until every source partition has promised no
    // earlier event time: one last record per partition, far in the future, releases
    // all the others.
    let flush: Vec<Value> = support::one_key_per_partition(4)
        .into_iter()
        .map(|(_, key)| {
            json!({"key": key, "timestamp": 0,
                "value": {"cmd": "count", "user": "flush", "ts": 10_000_000}})
        })
        .collect();
    support::ingest_json(&s, "cmds", &flush);
    support::create_job(
        &s,
        &json!({"name": "users", "sources": [{"topic": "cmds"}],
            "key": {"field": {"field": "user"}}, "event_time": {"field": {"field": "ts"}},
            "operators": [{"plugin": "selftest@1.0.0"}],
            "sinks": {"main": {"topic": {"topic": "per-user"}}}}),
    );
    wait_for_outputs(&s, "users", "per-user", N as u64 + 4);

    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut stamps: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (key, ts, count) in read_all(&s, "per-user") {
        counts
            .entry(key.clone())
            .or_default()
            .push(count.as_u64().unwrap());
        stamps.entry(key).or_default().push(ts);
    }
    assert_eq!(counts.len(), 6, "{:?}", counts.keys());
    for u in 0..5 {
        let key = format!("u{u}");
        let mut got = counts[&key].clone();
        got.sort_unstable();
        assert_eq!(got, (1..=(N / 5) as u64).collect::<Vec<_>>(), "{key}");
        let mut ts = stamps[&key].clone();
        ts.sort_unstable();
        let want: Vec<i64> = (0..N)
            .filter(|i| i % 5 == u)
            .map(|i| 50_000 + i as i64)
            .collect();
        assert_eq!(
            ts, want,
            "{key}: outputs carry the `ts` field as event time"
        );
    }
    // The key field adds a re-keying stage before the operator.
    let j = job_status(&s, "users");
    assert_eq!(j["stages"].as_array().unwrap().len(), 2, "{j}");
}

/// One-second windows counting records per key (sdk-selftest `window`).
fn window_job(name: &str, extra: Value) -> Value {
    let mut spec = json!({"name": name, "sources": [{"topic": "cmds"}],
        "operators": [{"plugin": "selftest@1.0.0"}],
        "sinks": {"windows": {"topic": {"topic": format!("{name}-windows")}},
                  "late": {"topic": {"topic": format!("{name}-late")}}}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

fn window_cmd(key: &str, ts: i64) -> Value {
    json!({"key": key, "timestamp": ts, "value": {"cmd": "window"}})
}

#[test]
fn late_events_go_to_the_late_output_and_are_counted() {
    let s = support::with_selftest(1, 1, |_| {});
    support::create_job(&s, &window_job("w", json!({"max_out_of_orderness_ms": 0})));
    // 6,500 closes [5,000, 6,000); 5,100 then comes too late for it, and 5,900 too.
    let input = [
        window_cmd("a", 5_000),
        window_cmd("a", 5_500),
        window_cmd("a", 6_500),
        window_cmd("a", 5_100),
        window_cmd("a", 6_900),
        window_cmd("a", 5_900),
    ];
    support::ingest_json(&s, "cmds", &input);
    wait_for_outputs(&s, "w", "w-late", 2);
    wait_for("the first window", Duration::from_secs(30), || {
        (topic_records(&s, "w-windows") == 1).then_some(())
    });
    let windows = read_all(&s, "w-windows");
    assert_eq!(windows[0].0, "a");
    assert_eq!(windows[0].2, json!([5_000, 6_000, 2]), "{windows:?}");
    let late = read_all(&s, "w-late");
    let late: Vec<(i64, Value)> = late.into_iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(
        late,
        vec![
            (5_100, json!({"cmd": "window"})),
            (5_900, json!({"cmd": "window"}))
        ],
        "late records go out unchanged"
    );
    assert_eq!(job_status(&s, "w")["late_events"], 2);
}

#[test]
fn an_idle_partition_closes_windows_only_with_an_idle_timeout() {
    let s = support::with_selftest(1, 1, |_| {});
    let delay = json!(5_000);
    support::create_job(
        &s,
        &window_job(
            "idle",
            json!({"max_out_of_orderness_ms": delay, "idle_timeout_ms": 200}),
        ),
    );
    support::create_job(
        &s,
        &window_job("still", json!({"max_out_of_orderness_ms": delay})),
    );
    let input = [
        window_cmd("a", 1_000),
        window_cmd("a", 1_500),
        window_cmd("a", 2_100),
    ];
    support::ingest_json(&s, "cmds", &input);
    // 2,100 − 5,000 closes nothing; 200 ms without records lets the idle job assume no
    // straggler is coming and close [1,000, 2,000).
    wait_for("the idle job's window", Duration::from_secs(30), || {
        (topic_records(&s, "idle-windows") == 1).then_some(())
    });
    assert_eq!(read_all(&s, "idle-windows")[0].2, json!([1_000, 2_000, 2]));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(job_status(&s, "still")["lag"], 0);
    assert_eq!(
        topic_records(&s, "still-windows"),
        0,
        "without an idle timeout only event time closes windows"
    );
    // Event time catches up: 7,100 − 5,000 closes [1,000, 2,000) for the other job too.
    support::ingest_json(&s, "cmds", &[window_cmd("b", 7_100)]);
    wait_for("the other job's window", Duration::from_secs(30), || {
        (topic_records(&s, "still-windows") == 1).then_some(())
    });
    assert_eq!(read_all(&s, "still-windows")[0].2, json!([1_000, 2_000, 2]));
}

#[test]
fn a_stopped_job_reads_nothing_and_resumes_exactly_where_it_stopped() {
    let s = support::with_selftest(2, 2, |_| {});
    let spec = json!({"name": "c", "sources": [{"topic": "cmds"}],
        "operators": [{"plugin": "selftest@1.0.0"}],
        "sinks": {"main": {"topic": {"topic": "counts"}}}});
    support::create_job(&s, &spec);
    support::ingest_json(&s, "cmds", &support::count_commands(0, 500));
    wait_for_outputs(&s, "c", "counts", 500);

    let (st, body) = post_json(&s.url("/api/v1/jobs/c/stop"), None, &json!({}));
    assert_eq!(st, 200, "{body}");
    assert_eq!(job_status(&s, "c")["state"], "stopped");
    support::ingest_json(&s, "cmds", &support::count_commands(500, 500));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(topic_records(&s, "counts"), 500, "a stopped job wrote");

    let (st, body) = post_json(&s.url("/api/v1/jobs/c/resume"), None, &json!({}));
    assert_eq!(st, 200, "{body}");
    assert_eq!(job_status(&s, "c")["state"], "running");
    wait_for_outputs(&s, "c", "counts", 1_000);
    assert_eq!(topic_records(&s, "counts"), 1_000);
    support::assert_counted_exactly_once(&s, "counts", 1_000);
}

#[test]
fn the_pause_policy_stops_the_job_at_a_failing_record_and_keeps_it_there() {
    let s = support::with_selftest(1, 1, |_| {});
    support::create_job(
        &s,
        &json!({"name": "p", "sources": [{"topic": "cmds"}], "batch_max_records": 10,
            "operators": [{"plugin": "selftest@1.0.0", "on_error": "pause"}],
            "sinks": {"main": {"topic": {"topic": "counts"}}}}),
    );
    let mut input = support::count_commands(0, 100);
    input.push(
        json!({"key": "k0", "timestamp": 100, "value": {"cmd": "fail", "message": "bad record"}}),
    );
    input.extend(support::count_commands(101, 100));
    support::ingest_json(&s, "cmds", &input);

    let paused = |s: &Server| {
        wait_for("the job to pause", Duration::from_secs(30), || {
            let j = job_status(s, "p");
            (j["state"] == "paused").then_some(j)
        })
    };
    let j = paused(&s);
    let reason = j["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("bad record"), "{j}");
    // Nothing after the failing record's batch was counted, and nothing went to the
    // dead-letter topic.
    std::thread::sleep(Duration::from_millis(300));
    let counted = topic_records(&s, "counts");
    assert!(counted <= 100, "{counted} counts past a paused record");
    assert_eq!(topic_records(&s, "p.dlq"), 0);

    // Resuming retries the same record, which fails the same way.
    let (st, body) = post_json(&s.url("/api/v1/jobs/p/resume"), None, &json!({}));
    assert_eq!(st, 200, "{body}");
    let j = paused(&s);
    assert!(j["reason"].as_str().unwrap().contains("bad record"), "{j}");
    assert!(topic_records(&s, "counts") <= 100);
}
