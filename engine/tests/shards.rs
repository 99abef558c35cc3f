//! Shards under stress, through a real server on loopback and the real `sdk-selftest`
//! plugin counting records per key (so any record lost or processed twice shows as a
//! gap or a repeat in a key's counts):
//! - a deliberately slow operator and four producers sending as fast as they can: the
//!   shard's queue and the job's lag stay bounded, ingest answers "retry later" with a hint, the
//!   producer's retries lose nothing, and the lag comes back to zero;
//! - a shard that panics: health reports it, the shard keeps running, and its job is
//!   restored from its checkpoint and goes on exactly once; a job caught in a panic
//!   loop is paused instead;
//! - a log at its quota: ingest answers "storage full", the log stays within the quota,
//!   and every acknowledged record is there.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, get, post_json, topic_records, wait_for};

/// A server with `shards` shards, `tweak` applied, `selftest@1.0.0` uploaded, a topic
/// `cmds` of `partitions` partitions, and job `c` counting its records per key into
/// topic `counts` with `operator` (the selftest operator entry of the spec).
fn counting_job(
    shards: usize,
    partitions: u32,
    tweak: impl FnOnce(&mut sluice::config::Config),
    operator: Value,
) -> Server {
    let s = support::with_selftest(shards, partitions, tweak);
    support::create_job(
        &s,
        &json!({"name": "c", "sources": [{"topic": "cmds"}], "batch_max_records": 50,
            "operators": [operator], "sinks": {"main": {"topic": {"topic": "counts"}}}}),
    );
    s
}

/// Sends one ingest request; true if it was taken, false if it was refused with
/// "retry later" (after waiting a quarter of the hint, to keep the shard under pressure).
/// Anything else fails the test.
fn send_or_refused(url: &str, body: &str) -> bool {
    let mut r = support::agent()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .expect("the server answers");
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").cloned();
    let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    if status == 200 {
        return true;
    }
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "retry_later", "{answer}");
    assert!(retry_after.is_some(), "429 without Retry-After: {answer}");
    let hint = answer["error"]["details"]["retry_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retry_after_ms hint: {answer}"));
    std::thread::sleep(Duration::from_millis(hint / 4));
    false
}

#[test]
fn a_slow_operator_holds_ingest_back_with_retry_later_and_nothing_is_lost() {
    const TOTAL: usize = 20_000;
    const PER_REQUEST: usize = 250;
    const MAX_LAG: u64 = 2_000;
    const QUEUE: usize = 4;
    const PRODUCERS: usize = 4;
    // About 0.1-0.3 ms of guest arithmetic per record: a few thousand records a second,
    // far below what a producer on loopback sends.
    let s = Arc::new(counting_job(
        1,
        1,
        |c| {
            c.limits.max_lag_records = MAX_LAG;
            c.limits.ingest_queue_batches = QUEUE;
        },
        json!({"plugin": "selftest@1.0.0", "config": {"spin": 100_000}}),
    ));

    // Watch the shard's queue and the job's lag while the producer pushes.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (s, done) = (s.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut max_queued, mut max_lag, mut held_back) = (0u64, 0u64, false);
            while !done.load(Ordering::Acquire) {
                let (_, status) = get(&s.url("/api/v1/status"), None);
                let shard = &status["shards"][0];
                max_queued = max_queued.max(shard["queued"].as_u64().unwrap());
                held_back |= shard["backpressured"] == true;
                max_lag = max_lag.max(support::job_status(&s, "c")["lag"].as_u64().unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            (max_queued, max_lag, held_back)
        })
    };

    // The producers: every request is retried after the hint until it is taken.
    let chunks: Vec<String> = support::count_commands(0, TOTAL)
        .chunks(PER_REQUEST)
        .map(|c| Value::Array(c.to_vec()).to_string())
        .collect();
    let chunks = Arc::new(chunks);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (url, chunks) = (s.url("/api/v1/topics/cmds/records"), chunks.clone());
            std::thread::spawn(move || {
                let (mut refusals, deadline) = (0, Instant::now() + Duration::from_secs(300));
                for body in chunks.iter().skip(p).step_by(PRODUCERS) {
                    while !send_or_refused(&url, body) {
                        refusals += 1;
                        assert!(
                            Instant::now() < deadline,
                            "producer {p} still refused after 300 s ({refusals} refusals)"
                        );
                    }
                }
                refusals
            })
        })
        .collect();
    let refusals: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
    let caught_up = Instant::now();
    wait_for(
        "the lag to come back to 0",
        Duration::from_secs(300),
        || {
            let j = support::job_status(&s, "c");
            (j["lag"] == 0 && j["records_in"] == TOTAL as u64).then_some(())
        },
    );
    done.store(true, Ordering::Release);
    let (max_queued, max_lag, held_back) = watcher.join().unwrap();
    eprintln!(
        "{refusals} refusals; queue at most {max_queued}, lag at most {max_lag}; drained {:?} after the last ack",
        caught_up.elapsed()
    );

    assert!(refusals > 0, "ingest never answered retry-later");
    assert!(
        held_back,
        "the status never showed the shard holding ingest back"
    );
    assert!(
        max_queued <= QUEUE as u64,
        "{max_queued} batches queued, limit {QUEUE}"
    );
    // The shard stops appending within a turn once the lag reaches the limit: at most
    // the request that crossed it goes past.
    let bound = MAX_LAG + PER_REQUEST as u64;
    assert!(max_lag <= bound, "lag reached {max_lag}, bound {bound}");
    assert_eq!(topic_records(&s, "cmds"), TOTAL as u64, "source topic");
    assert_eq!(topic_records(&s, "counts"), TOTAL as u64, "output topic");
    support::assert_counted_exactly_once(&s, "counts", TOTAL);
}

#[test]
fn a_shard_that_panics_is_reported_and_its_job_resumes_from_its_checkpoint() {
    const BEFORE: usize = 3_000;
    const AFTER: usize = 2_000;
    // Keys k0..k9 land on partitions of both shards, so both must count on.
    let partitions: Vec<u32> = (0..10)
        .map(|k| sluice::shard::route::partition_of(format!("k{k}").as_bytes(), 4))
        .collect();
    assert!(
        partitions.iter().any(|p| p % 2 == 1) && partitions.iter().any(|p| p % 2 == 0),
        "{partitions:?}"
    );
    let s = counting_job(
        2,
        4,
        |c| c.testing.fault_injection = true,
        json!({"plugin": "selftest@1.0.0"}),
    );
    for chunk in support::count_commands(0, BEFORE).chunks(500) {
        support::ingest_json(&s, "cmds", chunk);
    }
    wait_for("the first counts", Duration::from_secs(120), || {
        (topic_records(&s, "counts") == BEFORE as u64).then_some(())
    });

    let (st, body) = post_json(&s.url("/api/v1/debug/panic?shard=1"), None, &json!({}));
    assert_eq!(st, 202, "{body}");
    let health = wait_for(
        "health to report the panic",
        Duration::from_secs(30),
        || {
            let (st, h) = get(&s.url("/healthz"), None);
            (h["shard_panics"] == 1).then_some((st, h))
        },
    );
    assert_eq!(
        health.0, 200,
        "a shard that recovered is not stuck: {}",
        health.1
    );
    let message = health.1["last_shard_panics"]["1"].as_str().unwrap_or("");
    assert!(message.contains("panic requested"), "{}", health.1);
    let (_, status) = get(&s.url("/api/v1/status"), None);
    assert_eq!(status["shards"][1]["panics"], 1, "{status}");
    assert_eq!(status["shards"][0]["panics"], 0, "{status}");

    // The job is running again on both shards and takes more input.
    wait_for("the job to run again", Duration::from_secs(60), || {
        (support::job_status(&s, "c")["state"] == "running").then_some(())
    });
    for chunk in support::count_commands(BEFORE, AFTER).chunks(500) {
        support::ingest_json(&s, "cmds", chunk);
    }
    let total = BEFORE + AFTER;
    wait_for(
        "every count after the panic",
        Duration::from_secs(120),
        || {
            let j = support::job_status(&s, "c");
            (j["lag"] == 0 && topic_records(&s, "counts") >= total as u64).then_some(())
        },
    );
    assert_eq!(topic_records(&s, "counts"), total as u64);
    support::assert_counted_exactly_once(&s, "counts", total);
}

#[test]
fn ingest_stops_at_the_log_quota_and_keeps_every_acknowledged_record() {
    const QUOTA: u64 = 200_000;
    let s = Server::start(1, |c| c.limits.log_quota_bytes = QUOTA);
    support::create_topic(&s, "t", 1);
    let url = s.url("/api/v1/topics/t/records");
    let mut acked = 0u64;
    let refusal = loop {
        assert!(acked < 1_000, "{acked} records in a {QUOTA}-byte quota");
        let batch: Vec<Value> = (acked..acked + 50)
            .map(|i| json!({"key": format!("k{i}"), "timestamp": i, "value": {"n": i, "pad": "x".repeat(1_000)}}))
            .collect();
        let (st, body) = support::send(
            "POST",
            &url,
            None,
            "application/json",
            Value::Array(batch).to_string().as_bytes(),
        );
        match st {
            200 => acked += 50,
            _ => break (st, body),
        }
    };
    let (st, body) = refusal;
    assert_eq!(st, 507, "{body}");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("quota") && message.contains("Nothing was written"),
        "{message}"
    );
    assert!(acked > 0, "the first batch fits the quota");
    assert!(
        s.engine.log.total_bytes() <= QUOTA,
        "{} bytes held",
        s.engine.log.total_bytes()
    );
    let records = support::read_all(&s, "t");
    assert_eq!(
        records.len() as u64,
        acked,
        "acknowledged records in the log"
    );
    for (i, (key, ts, value)) in records.iter().enumerate() {
        assert_eq!((key.as_str(), *ts), (format!("k{i}").as_str(), i as i64));
        assert_eq!(value["n"], i as u64);
    }
}

#[test]
fn a_job_caught_in_a_panic_loop_is_paused_instead_of_restored_again() {
    let s = counting_job(
        1,
        1,
        |c| c.testing.fault_injection = true,
        json!({"plugin": "selftest@1.0.0"}),
    );
    let limit = sluice::job::engine::MAX_PANICS_PER_JOB;
    let mut sent = 0;
    for panic in 1..=limit {
        // A count coming out proves the job runs on the shard again before it panics.
        support::ingest_json(&s, "cmds", &support::count_commands(sent, 100));
        sent += 100;
        wait_for("the job to count", Duration::from_secs(60), || {
            (topic_records(&s, "counts") == sent as u64).then_some(())
        });
        let (st, body) = post_json(&s.url("/api/v1/debug/panic?shard=0"), None, &json!({}));
        assert_eq!(st, 202, "{body}");
        wait_for("health to count the panic", Duration::from_secs(30), || {
            (get(&s.url("/healthz"), None).1["shard_panics"] == panic).then_some(())
        });
        if panic < limit {
            assert_eq!(
                support::job_status(&s, "c")["state"],
                "running",
                "after panic {panic}"
            );
        }
    }
    let j = wait_for("the job to pause", Duration::from_secs(30), || {
        let j = support::job_status(&s, "c");
        (j["state"] == "paused").then_some(j)
    });
    let reason = j["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("panicked {limit} times")) && reason.contains("resume"),
        "{reason}"
    );

    // Resumed, it goes on from its checkpoint, exactly once.
    let (st, body) = post_json(&s.url("/api/v1/jobs/c/resume"), None, &json!({}));
    assert_eq!(st, 200, "{body}");
    support::ingest_json(&s, "cmds", &support::count_commands(sent, 100));
    sent += 100;
    wait_for("the counts after resuming", Duration::from_secs(60), || {
        (support::job_status(&s, "c")["lag"] == 0 && topic_records(&s, "counts") >= sent as u64)
            .then_some(())
    });
    support::assert_counted_exactly_once(&s, "counts", sent);
}
