//! The HTTP API on a real server on loopback: topics, ingest in every format,
//! reads, errors, limits, tokens, health, and the OpenAPI document.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, delete, get, post_json, send};

const ADMIN: &str = "admin-token-0123456789";
const INGEST: &str = "ingest-token-0123456789";

fn secured() -> Server {
    Server::start(2, |c| {
        c.auth.admin_token = ADMIN.into();
        c.auth.ingest_token = INGEST.into();
        c.limits.max_body_bytes = 64 * 1024;
        c.limits.max_batch_records = 100;
        c.limits.max_record_bytes = 1024;
    })
}

fn create_topic(s: &Server, name: &str, partitions: u32) {
    let (st, body) = post_json(
        &s.url("/api/v1/topics"),
        Some(ADMIN),
        &json!({"name": name, "partitions": partitions}),
    );
    assert_eq!(st, 201, "{body}");
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn topics_are_created_listed_described_and_deleted() {
    let s = secured();
    create_topic(&s, "orders", 3);
    let (st, body) = get(&s.url("/api/v1/topics"), None);
    assert_eq!(st, 200);
    assert_eq!(body["topics"][0]["name"], "orders");
    let (st, body) = get(&s.url("/api/v1/topics/orders"), None);
    assert_eq!(st, 200);
    assert_eq!(body["partition_info"].as_array().unwrap().len(), 3);
    let (st, body) = post_json(
        &s.url("/api/v1/topics"),
        Some(ADMIN),
        &json!({"name": "orders"}),
    );
    assert_eq!(st, 409, "{body}");
    let (st, body) = post_json(
        &s.url("/api/v1/topics"),
        Some(ADMIN),
        &json!({"name": "../etc", "partitions": 1}),
    );
    assert_eq!(st, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("etc"),
        "{body}"
    );
    let (st, _) = post_json(
        &s.url("/api/v1/topics"),
        Some(ADMIN),
        &json!({"name": "_internal"}),
    );
    assert_eq!(st, 400);
    let (st, _) = delete(&s.url("/api/v1/topics/orders"), Some(ADMIN));
    assert_eq!(st, 204);
    let (st, body) = get(&s.url("/api/v1/topics/orders"), None);
    assert_eq!((st, error_code(&body)), (404, "not_found"));
}

#[test]
fn ingest_accepts_json_ndjson_and_msgpack_and_reads_them_back() {
    let s = secured();
    create_topic(&s, "t", 1);
    let url = s.url("/api/v1/topics/t/records");
    let (st, body) = post_json(
        &url,
        Some(INGEST),
        &json!([
            {"key": "a", "timestamp": 1000, "value": {"n": 1}, "headers": {"source": "test"}},
            {"key": "b", "timestamp": "1970-01-01T00:00:02Z", "value": {"n": 2}}
        ]),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["partitions"][0]["count"], 2);
    assert_eq!(body["durability"], "never");
    let nd = b"{\"id\":\"c\",\"at\":3000,\"n\":3}\n{\"id\":\"d\",\"at\":4000,\"n\":4}\n";
    let (st, body) = send(
        "POST",
        &(url.clone() + "?key_field=id&time_field=at"),
        Some(INGEST),
        "application/x-ndjson",
        nd,
    );
    assert_eq!(st, 200, "{body}");
    let mp = rmp_serde::to_vec_named(&json!([{"key": "e", "timestamp": 5000, "value": {"n": 5}}]))
        .unwrap();
    let (st, body) = send("POST", &url, Some(INGEST), "application/msgpack", &mp);
    assert_eq!(st, 200, "{body}");

    let (st, body) = get(
        &s.url("/api/v1/topics/t/records?partition=0&offset=0&limit=10"),
        None,
    );
    assert_eq!(st, 200, "{body}");
    let recs = body["records"].as_array().unwrap();
    let seen: Vec<(String, i64, i64)> = recs
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["timestamp"].as_i64().unwrap(),
                r["value"]["n"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("a".into(), 1000, 1),
            ("b".into(), 2000, 2),
            ("c".into(), 3000, 3),
            ("d".into(), 4000, 4),
            ("e".into(), 5000, 5)
        ]
    );
    assert_eq!(body["next_offset"], 5);
    assert_eq!(recs[0]["headers"]["source"], "test", "headers are stored");
}

#[test]
fn idempotent_retry_is_acknowledged_with_the_original_offsets() {
    let s = secured();
    create_topic(&s, "t", 1);
    let url = s.url("/api/v1/topics/t/records?producer_id=7&sequence=0");
    let batch = json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}]);
    let (_, first) = post_json(&url, Some(INGEST), &batch);
    let (st, again) = post_json(&url, Some(INGEST), &batch);
    assert_eq!(st, 200, "{again}");
    assert_eq!(
        again["partitions"][0]["base_offset"],
        first["partitions"][0]["base_offset"]
    );
    assert_eq!(again["partitions"][0]["duplicate"], true);
    let (_, body) = get(&s.url("/api/v1/topics/t"), None);
    assert_eq!(body["records"], 2, "nothing written twice");
}

#[test]
fn bad_bodies_get_clear_errors_and_change_nothing() {
    let s = secured();
    create_topic(&s, "t", 1);
    let url = s.url("/api/v1/topics/t/records");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"[{\"value\": 1".to_vec(),
            400,
            "JSON array",
        ),
        (
            "application/json",
            b"{\"value\": 1}".to_vec(),
            400,
            "JSON array",
        ),
        (
            "application/json",
            b"[{\"vlue\": 1}]".to_vec(),
            400,
            "record 0",
        ),
        (
            "application/json",
            b"[{\"value\": 1, \"timestamp\": \"yesterday\"}]".to_vec(),
            400,
            "RFC 3339",
        ),
        ("application/msgpack", vec![0x92, 0x01], 400, "MessagePack"),
        ("application/json", b"[]".to_vec(), 400, "no records"),
        (
            "application/json",
            serde_json::to_vec(&vec![json!({"value": 1}); 101]).unwrap(),
            413,
            "max_batch_records",
        ),
        (
            "application/json",
            serde_json::to_vec(&json!([{"value": "x".repeat(2000)}])).unwrap(),
            413,
            "max_record_bytes",
        ),
        (
            "application/json",
            vec![b' '; 70 * 1024],
            413,
            "max_body_bytes",
        ),
    ];
    for (ct, body, status, needle) in cases {
        let (st, reply) = send("POST", &url, Some(INGEST), ct, &body);
        assert_eq!(st, status, "{reply}");
        let msg = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "expected `{needle}` in `{msg}`");
    }
    let (_, body) = get(&s.url("/api/v1/topics/t"), None);
    assert_eq!(body["records"], 0, "no bad request wrote anything");
    let (st, body) = post_json(
        &s.url("/api/v1/topics/nope/records"),
        Some(INGEST),
        &json!([{"value": 1}]),
    );
    assert_eq!((st, error_code(&body)), (404, "not_found"));
}

#[test]
fn every_mutating_route_needs_the_right_token_and_changes_nothing_without_it() {
    let s = secured();
    create_topic(&s, "t", 1);
    let mutating: Vec<(&str, String, Vec<u8>)> = vec![
        ("POST", "/api/v1/topics".into(), br#"{"name":"x"}"#.to_vec()),
        ("DELETE", "/api/v1/topics/t".into(), vec![]),
        (
            "POST",
            "/api/v1/topics/t/records".into(),
            br#"[{"value":1}]"#.to_vec(),
        ),
        (
            "POST",
            "/api/v1/plugins?name=p&version=1".into(),
            b"\0asm\x01\0\0\0".to_vec(),
        ),
        ("DELETE", "/api/v1/plugins/nexmark/0.1.0".into(), vec![]),
        (
            "POST",
            "/api/v1/jobs".into(),
            br#"{"name":"j","sources":[{"topic":"t"}],"operators":[{"plugin":"nexmark@0.1.0"}]}"#
                .to_vec(),
        ),
        ("DELETE", "/api/v1/jobs/j".into(), vec![]),
        ("POST", "/api/v1/jobs/j/stop".into(), vec![]),
        ("POST", "/api/v1/jobs/j/resume".into(), vec![]),
        (
            "POST",
            "/api/v1/jobs/j/upgrade".into(),
            br#"{"plugin":"p","version":"2"}"#.to_vec(),
        ),
        ("POST", "/api/v1/jobs/j/checkpoint".into(), vec![]),
    ];
    let before = (
        get(&s.url("/api/v1/topics"), None).1,
        get(&s.url("/api/v1/plugins"), None).1,
        get(&s.url("/api/v1/jobs"), None).1,
    );
    for (method, path, body) in &mutating {
        for (token, want) in [(None, 401), (Some("wrong-token-0123456789"), 403)] {
            let (st, reply) = match *method {
                "DELETE" => delete(&s.url(path), token),
                _ => send(method, &s.url(path), token, "application/json", body),
            };
            assert_eq!(st, want, "{method} {path} with {token:?}: {reply}");
            assert!(
                reply["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("token"),
                "{reply}"
            );
        }
    }
    // Ingest refuses the admin route's absence of token but takes the admin token.
    let (st, _) = post_json(
        &s.url("/api/v1/topics/t/records"),
        Some(ADMIN),
        &json!([{"value": 1}]),
    );
    assert_eq!(st, 200);
    let after = (
        get(&s.url("/api/v1/topics"), None).1,
        get(&s.url("/api/v1/plugins"), None).1,
        get(&s.url("/api/v1/jobs"), None).1,
    );
    assert_eq!(before.1, after.1, "plugins unchanged");
    assert_eq!(before.2, after.2, "jobs unchanged");
    assert_eq!(
        after.0["topics"].as_array().unwrap().len(),
        1,
        "topics unchanged"
    );
}

#[test]
fn health_readiness_and_metrics_answer() {
    let s = secured();
    let (st, body) = get(&s.url("/healthz"), None);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["shards"], 2);
    support::wait_for("readiness", std::time::Duration::from_secs(10), || {
        (get(&s.url("/readyz"), None).0 == 200).then_some(())
    });
    let text = support::agent()
        .get(&s.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(text.contains("sluice_shard_alive"), "{text}");
    assert!(text.contains("sluice_log_bytes"), "{text}");
}

#[test]
fn openapi_lists_exactly_the_routes_the_server_serves() {
    let s = secured();
    let (st, doc) = get(&s.url("/api/v1/openapi.json"), None);
    assert_eq!(st, 200);
    let paths = doc["paths"].as_object().unwrap();
    let mut listed = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            listed += 1;
            let concrete = path.replace("{name}", "x").replace("{version}", "1");
            let url = s.url(&concrete);
            let streams = path.ends_with("/events") || path.ends_with("/tail");
            let (st, body) = match method.as_str() {
                // Server-sent event streams never end: look at the status only.
                "get" if streams => {
                    let r = support::agent().get(&url).call().unwrap();
                    (r.status().as_u16(), Value::Null)
                }
                "get" => get(&url, Some(ADMIN)),
                "delete" => delete(&url, Some(ADMIN)),
                _ => send("POST", &url, Some(ADMIN), "application/json", b"{}"),
            };
            let fallback = body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("no such route"));
            assert!(
                !fallback && st != 405,
                "{method} {path} is documented but not served ({st} {body})"
            );
        }
    }
    assert!(listed >= 25, "only {listed} operations documented");
    let (st, body) = get(&s.url("/api/v1/not-a-route"), None);
    assert_eq!(st, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openapi")
    );
}

#[test]
fn a_job_that_cannot_start_leaves_no_topics_behind() {
    let s = secured();
    create_topic(&s, "t", 1);
    let spec = json!({"name": "j", "sources": [{"topic": "t"}],
        "operators": [{"plugin": "missing@1.0.0"}], "sinks": {"main": {"topic": {"topic": "j-out"}}}});
    let (st, body) = post_json(&s.url("/api/v1/jobs"), Some(ADMIN), &spec);
    assert_eq!(st, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing@1.0.0"),
        "{body}"
    );
    let (_, topics) = get(&s.url("/api/v1/topics"), None);
    let names: Vec<&str> = topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["t"],
        "no output or dead-letter topic was left behind"
    );
}

#[test]
fn task_status_says_how_long_each_partition_has_been_idle() {
    let s = Server::start(2, |_| {});
    support::create_topic(&s, "pay", 2);
    support::create_job(
        &s,
        &json!({"name": "totals", "sources": [{"topic": "pay"}],
            "operators": [{"plugin": "window-totals@0.1.0", "config": {}}],
            "sinks": {"main": {"topic": {"topic": "totals-out"}}}}),
    );
    // Records with one key: they all reach one partition, and the other's task never
    // reads one.
    let key = "payer-1";
    let (busy, quiet) = match sluice::shard::route::partition_of(key.as_bytes(), 2) {
        0 => (0, 1),
        _ => (1, 0),
    };
    let records: Vec<Value> = (0..20)
        .map(|i| json!({"key": key, "timestamp": i * 100, "value": {"amount": i}}))
        .collect();
    support::ingest_json(&s, "pay", &records);
    let tasks = |s: &Server| -> Vec<Value> {
        let (st, body) = get(&s.url("/api/v1/jobs/totals"), None);
        assert_eq!(st, 200, "{body}");
        body["stages"][0].as_array().unwrap().clone()
    };
    let first = support::wait_for("the records to be read", Duration::from_secs(60), || {
        let t = tasks(&s);
        (t[busy]["records_in"] == 20 && t[busy]["lag"] == 0).then_some(t)
    });
    let idle = first[busy]["idle_ms"]
        .as_u64()
        .expect("a task that read records has idle_ms");
    assert!(
        first[quiet]["idle_ms"].is_null(),
        "a task that read nothing has none: {first:?}"
    );
    let pause = Duration::from_millis(300);
    std::thread::sleep(pause);
    let later = tasks(&s);
    assert!(
        later[busy]["idle_ms"].as_u64().unwrap() >= idle + pause.as_millis() as u64,
        "idle time grows while nothing arrives: {first:?} then {later:?}"
    );
    support::ingest_json(&s, "pay", &records[..1]);
    let again = support::wait_for("the new record to be read", Duration::from_secs(60), || {
        let t = tasks(&s);
        (t[busy]["records_in"] == 21).then_some(t)
    });
    assert!(
        again[busy]["idle_ms"].as_u64().unwrap() < later[busy]["idle_ms"].as_u64().unwrap(),
        "reading a record resets it: {later:?} then {again:?}"
    );
}
