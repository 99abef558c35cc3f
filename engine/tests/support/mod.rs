//! Shared helpers of the engine's integration tests: a real appliance on a
//! temporary data dir, its HTTP API on a loopback port, and a small client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::config::Config;
use sluice::job::engine::Engine;

/// A running appliance; stops (with final checkpoints) when dropped.
pub struct Server {
    pub engine: Arc<Engine>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Starts on a fresh data dir with `shards` shards and `tweak` applied.
    pub fn start(shards: usize, tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Server::start_in(dir, shards, tweak)
    }

    /// Starts on an existing data dir (restart tests).
    pub fn start_in(
        dir: tempfile::TempDir,
        shards: usize,
        tweak: impl FnOnce(&mut Config),
    ) -> Server {
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            shards,
            ..Config::default()
        };
        config.topic_defaults.fsync = "never".into();
        tweak(&mut config);
        let engine = Engine::start(config).expect("engine starts");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(sluice::api::serve(engine.clone(), listener, async {
            let _ = rx.await;
        }));
        Server {
            engine,
            addr,
            dir,
            rt: Some(rt),
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and returns its data dir (to start again on it).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.shutdown();
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.engine.shutdown();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// Runs a future on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("running").block_on(f)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A blocking HTTP client that never turns statuses into errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// (status, JSON body or Null)
pub type Reply = (u16, Value);

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("request reaches the server");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn get(url: &str, token: Option<&str>) -> Reply {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    reply(req.call())
}

pub fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Reply {
    let a = agent();
    let mut req = match method {
        "POST" => a.post(url),
        "PUT" => a.put(url),
        other => panic!("no body for {other}"),
    };
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    reply(req.header("Content-Type", content_type).send(body))
}

pub fn post_json(url: &str, token: Option<&str>, body: &Value) -> Reply {
    send(
        "POST",
        url,
        token,
        "application/json",
        body.to_string().as_bytes(),
    )
}

pub fn delete(url: &str, token: Option<&str>) -> Reply {
    let mut req = agent().delete(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    reply(req.call())
}

/// Polls `f` until it returns `Some`, or panics after `limit` saying `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The status of job `name` (`GET /api/v1/jobs/{name}`).
pub fn job_status(s: &Server, name: &str) -> Value {
    let (st, body) = get(&s.url(&format!("/api/v1/jobs/{name}")), None);
    assert_eq!(st, 200, "job {name}: {body}");
    body
}

/// Uploads `wasm` as plugin `name@version` through the API.
pub fn upload_plugin(s: &Server, name: &str, version: &str, wasm: &[u8]) {
    let url = s.url(&format!("/api/v1/plugins?name={name}&version={version}"));
    let (st, body) = send("POST", &url, None, "application/wasm", wasm);
    assert_eq!(st, 201, "uploading {name}@{version}: {body}");
}

/// Creates topic `name` with `partitions` partitions through the API.
pub fn create_topic(s: &Server, name: &str, partitions: u32) {
    let spec = serde_json::json!({"name": name, "partitions": partitions});
    let (st, body) = post_json(&s.url("/api/v1/topics"), None, &spec);
    assert_eq!(st, 201, "creating topic {name}: {body}");
}

/// Creates a job from `spec` through the API.
pub fn create_job(s: &Server, spec: &Value) {
    let (st, body) = post_json(&s.url("/api/v1/jobs"), None, spec);
    assert_eq!(st, 201, "creating job {}: {body}", spec["name"]);
}

/// Ingests `records` (`{"key", "timestamp", "value"}` objects) into `topic` as JSON.
pub fn ingest_json(s: &Server, topic: &str, records: &[Value]) {
    let url = s.url(&format!("/api/v1/topics/{topic}/records"));
    let body = Value::Array(records.to_vec()).to_string();
    let (st, answer) = send("POST", &url, None, "application/json", body.as_bytes());
    assert_eq!(st, 200, "ingesting into {topic}: {answer}");
}

/// Records in `topic` (0 if it does not exist).
pub fn topic_records(s: &Server, topic: &str) -> u64 {
    s.engine.log.topic(topic).map_or(0, |t| {
        t.partitions()
            .iter()
            .map(|p| p.end_offset() - p.start_offset())
            .sum()
    })
}

/// Every record of every partition of `topic` (none if it does not exist), partition by
/// partition in offset order: (key, timestamp, value decoded from MessagePack).
pub fn read_all(s: &Server, topic: &str) -> Vec<(String, i64, Value)> {
    let Some(t) = s.engine.log.topic(topic) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in t.partitions() {
        let mut reader = p.reader();
        let mut from = p.start_offset();
        loop {
            let o = reader
                .read(from, 10_000, 16 << 20, |rv| {
                    out.push((
                        String::from_utf8_lossy(rv.key).into_owned(),
                        rv.timestamp,
                        rmp_serde::from_slice::<Value>(rv.value).expect("output is MessagePack"),
                    ))
                })
                .expect("topic reads");
            if o.records == 0 {
                break;
            }
            from = o.next_offset;
        }
    }
    out
}

/// Keys `flush-<i>` (with their `i`), the first that lands in each partition of a
/// `partitions`-partition topic: one record per key reaches every partition (to move
/// every partition's watermark, say).
pub fn one_key_per_partition(partitions: u32) -> Vec<(u64, String)> {
    let mut covered = vec![false; partitions as usize];
    let mut keys = Vec::with_capacity(partitions as usize);
    let mut i = 0u64;
    while keys.len() < partitions as usize {
        let key = format!("flush-{i}");
        let p = sluice::shard::route::partition_of(key.as_bytes(), partitions) as usize;
        if !covered[p] {
            covered[p] = true;
            keys.push((i, key));
        }
        i += 1;
    }
    keys
}

/// The `sdk-selftest` plugin (built to Wasm by build.rs, for tests only).
pub const SELFTEST_WASM: &str = concat!(env!("SLUICE_PLUGIN_WASM_DIR"), "/sdk_selftest.wasm");

/// A server with `shards` shards and `tweak` applied, the `sdk-selftest` plugin
/// uploaded as `selftest@1.0.0`, and a topic `cmds` of `partitions` partitions for its
/// commands.
pub fn with_selftest(shards: usize, partitions: u32, tweak: impl FnOnce(&mut Config)) -> Server {
    let s = Server::start(shards, tweak);
    let wasm = std::fs::read(SELFTEST_WASM).expect("build.rs built sdk-selftest");
    upload_plugin(&s, "selftest", "1.0.0", &wasm);
    create_topic(&s, "cmds", partitions);
    s
}

/// `n` `sdk-selftest` count commands over keys `k0`..`k9`, timestamps from `first`.
pub fn count_commands(first: usize, n: usize) -> Vec<Value> {
    (first..first + n)
        .map(|i| json!({"key": format!("k{}", i % 10), "timestamp": i, "value": {"cmd": "count"}}))
        .collect()
}

/// Checks that `topic` holds, for every key, exactly the counts 1, 2, … up to the number
/// of commands that key was sent (`total` commands of [`count_commands`]): a record lost
/// or processed twice shows as a gap or a repeat.
pub fn assert_counted_exactly_once(s: &Server, topic: &str, total: usize) {
    let mut seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (key, _, count) in read_all(s, topic) {
        let n = count
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {count} is not a count"));
        seen.entry(key).or_default().push(n);
    }
    assert_eq!(seen.len(), 10, "keys counted: {:?}", seen.keys());
    for (key, got) in &seen {
        let k: usize = key[1..].parse().unwrap();
        let sent = (0..total).filter(|i| i % 10 == k).count() as u64;
        let want: Vec<u64> = (1..=sent).collect();
        if *got != want {
            let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "key {key}: {} counts for {sent} commands; first difference at index {first_bad:?} (got {:?}…)",
                got.len(),
                got.iter()
                    .skip(first_bad.unwrap_or(0).saturating_sub(2))
                    .take(6)
                    .collect::<Vec<_>>()
            );
        }
    }
}
