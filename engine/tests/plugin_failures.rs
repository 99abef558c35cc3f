//! Plugins misbehaving or just prolific inside a running job:
//! - one that traps again and again: every failed call goes to the dead-letter
//!   topic, the instance is renewed with the state it had, and the job keeps
//!   counting right — far past the number of traps after which one instance
//!   would have run out of stack;
//! - one call emitting more records than one log append takes: written in
//!   pieces, all of them;
//! - outputs sent to the dead-letter topic by the job's sinks are all counted.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, get, topic_records, wait_for};

/// More traps than one instance survives without renewal (about 2,100).
const PANICS: usize = 3_000;

/// A server with the `sdk-selftest` plugin as `selftest@1.0.0`, a one-partition topic
/// `cmds` of commands for it, and `job` running.
fn selftest_job(job: &Value) -> Server {
    let s = support::with_selftest(1, 1, |_| {});
    support::create_job(&s, job);
    s
}

#[test]
fn outputs_routed_to_the_dead_letter_topic_are_counted() {
    const N: usize = 2_500;
    let s = selftest_job(&json!({"name": "st", "sources": [{"topic": "cmds"}],
        "operators": [{"plugin": "selftest@1.0.0"}], "sinks": {"main": "dead_letter"}}));
    let records: Vec<Value> = (0..N)
        .map(|i| json!({"key": "a", "timestamp": i, "value": {"cmd": "count"}}))
        .collect();
    for chunk in records.chunks(1_000) {
        support::ingest_json(&s, "cmds", chunk);
    }
    wait_for(
        "every count dead-lettered",
        Duration::from_secs(120),
        || {
            let (_, j) = get(&s.url("/api/v1/jobs/st"), None);
            (j["lag"] == 0 && topic_records(&s, "st.dlq") == N as u64).then_some(())
        },
    );
    let (_, j) = get(&s.url("/api/v1/jobs/st"), None);
    assert_eq!(j["dead_letters"], N, "{j}");
    assert_eq!(j["errors"], 0, "{j}");
}

#[test]
fn thousands_of_traps_are_dead_lettered_and_the_state_survives_them() {
    // One record per call, so every panic is a trap of its own.
    let s = selftest_job(
        &json!({"name": "st", "sources": [{"topic": "cmds"}], "batch_max_records": 1,
        "operators": [{"plugin": "selftest@1.0.0", "on_error": "dead_letter"}],
        "sinks": {"main": {"topic": {"topic": "counts"}}}}),
    );

    // Count, panic, count, panic, …
    let records: Vec<Value> = (0..2 * PANICS)
        .map(|i| {
            let value = if i % 2 == 0 {
                json!({"cmd": "count"})
            } else {
                json!({"cmd": "panic", "message": format!("boom {i}")})
            };
            json!({"key": "a", "timestamp": i, "value": value})
        })
        .collect();
    for chunk in records.chunks(1_000) {
        support::ingest_json(&s, "cmds", chunk);
    }
    wait_for("every record processed", Duration::from_secs(120), || {
        let (_, j) = get(&s.url("/api/v1/jobs/st"), None);
        (j["lag"] == 0 && topic_records(&s, "counts") == PANICS as u64).then_some(())
    });

    let (_, j) = get(&s.url("/api/v1/jobs/st"), None);
    assert_eq!(j["state"], "running", "{j}");
    assert_eq!(j["errors"], PANICS, "{j}");
    assert_eq!(j["dead_letters"], PANICS, "{j}");
    assert_eq!(j["renewals"], PANICS, "{j}");
    let last = j["recent_errors"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert!(last.to_string().contains("boom"), "{last}");
    assert_eq!(topic_records(&s, "st.dlq"), PANICS as u64);

    // The counts went 1, 2, 3, … with nothing lost or repeated: the state
    // crossed every renewal, and no panicking call's output got out.
    let counts = s.engine.log.topic("counts").unwrap();
    let p = &counts.partitions()[0];
    let mut want = 1u64;
    p.reader()
        .read(p.start_offset(), usize::MAX, usize::MAX, |rv| {
            let n: u64 = rmp_serde::from_slice(rv.value).unwrap();
            assert_eq!(n, want);
            want += 1;
        })
        .unwrap();
    assert_eq!(want, PANICS as u64 + 1);

    let (_, metrics) = send_get_text(&s.url("/metrics"));
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_job_instance_renewals")
                && l.contains("\"st\"")
                && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) == Some(PANICS as f64)),
        "{metrics}"
    );
}

fn send_get_text(url: &str) -> (u16, String) {
    let mut r = support::agent().get(url).call().unwrap();
    let st = r.status().as_u16();
    (st, r.body_mut().read_to_string().unwrap())
}

#[test]
fn a_call_emitting_more_than_one_append_takes_is_written_whole() {
    let s = selftest_job(&json!({"name": "many", "sources": [{"topic": "cmds"}],
        "operators": [{"plugin": "selftest@1.0.0"}],
        "sinks": {"main": {"topic": {"topic": "many-out"}}}}));
    // 1.5 × the most records one append takes (MAX_BATCH_RECORDS), from one call.
    let n = sluice::log::limits::MAX_BATCH_RECORDS * 3 / 2;
    let record = json!({"key": "k", "timestamp": 1,
        "value": {"cmd": "emit", "output": "main", "n": n}});
    support::ingest_json(&s, "cmds", &[record]);
    wait_for("every record written", Duration::from_secs(60), || {
        let (_, j) = get(&s.url("/api/v1/jobs/many"), None);
        assert_eq!(j["state"], "running", "{j}");
        (topic_records(&s, "many-out") == n as u64).then_some(())
    });
    let (_, j) = get(&s.url("/api/v1/jobs/many"), None);
    assert_eq!(j["errors"], 0, "{j}");
}
