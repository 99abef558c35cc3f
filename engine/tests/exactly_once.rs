//! Exactly-once across crashes: the real `sluice` binary runs a job mix over a
//! fixed input while the test kills it with SIGKILL at random moments and
//! restarts it, dozens of times; the output topics and views must end up
//! byte-identical to those of an uninterrupted run.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_gen::nexmark::{NexmarkConfig, NexmarkGenerator};
use support::{get, post_json};

const PARTITIONS: u32 = 4;
const EVENTS: u64 = 200_000;

/// The longest the whole kill-and-restart phase may take before the test
/// gives up with a diagnosis (it takes well under a minute normally).
const KILL_PHASE_LIMIT: Duration = Duration::from_secs(400);
/// The longest a graceful stop may take.
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// A `sluice serve` child process; killed when dropped.
struct Daemon {
    child: Child,
    port: u16,
    /// Where its stderr goes (appended over restarts).
    log: std::path::PathBuf,
}

/// The last lines of a daemon's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Daemon {
    fn start(dir: &Path, port: u16) -> Daemon {
        let log_path = dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        // Small segments: outputs and exchanges roll often, and consumed
        // exchange segments are removed while the kills go on.
        let config = dir.with_extension("toml");
        std::fs::write(&config, "[topic_defaults]\nsegment_bytes = 65536\n").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--shards", "2", "--log-level", "info"])
            .arg("--config")
            .arg(&config)
            // Not the test runner's service manager's business.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("SLUICE_CONFIG")
            .env_remove("SLUICE_ADMIN_TOKEN")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sluice starts");
        let mut d = Daemon {
            child,
            port,
            log: log_path,
        };
        let started = Instant::now();
        loop {
            let ready = support::agent()
                .get(&d.url("/readyz"))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!(
                    "the daemon exited with {status} before it was ready; its log ends:\n{}",
                    log_tail(&d.log)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the daemon was not ready after 60 s; its log ends:\n{}",
                log_tail(&d.log)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        // SIGTERM: graceful, with final checkpoints.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let asked = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                asked.elapsed() < STOP_LIMIT,
                "no exit {STOP_LIMIT:?} after SIGTERM; the log ends:\n{}",
                log_tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            status.success(),
            "graceful stop exits 0, got {status}; the log ends:\n{}",
            log_tail(&self.log)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The job mix: windowed aggregation with re-keying (q5), session windows
/// (q11), a window join (q8), and a tumbling max into a view (q7).
fn jobs() -> Vec<Value> {
    let two_phase = |name: &str, q: &str, sinks: Value| {
        json!({"name": name, "sources": [{"topic": "nexmark"}], "max_out_of_orderness_ms": 4000,
               "checkpoint_interval_ms": 200, "batch_max_records": 200,
               "operators": [
                   {"plugin": "nexmark@0.1.0", "config": {"query": q, "phase": "partial"}},
                   {"plugin": "nexmark@0.1.0", "config": {"query": q, "phase": "final"}, "partition_by_key": true}],
               "sinks": sinks})
    };
    vec![
        two_phase(
            "hot",
            "q5",
            json!({"main": {"topic": {"topic": "out-hot"}}}),
        ),
        two_phase(
            "sessions",
            "q11",
            json!({"main": {"topic": {"topic": "out-sessions"}}}),
        ),
        two_phase(
            "newusers",
            "q8",
            json!({"main": {"topic": {"topic": "out-newusers"}}}),
        ),
        two_phase(
            "highest",
            "q7",
            json!({"main": {"view": {"view": "highest"}}}),
        ),
    ]
}

/// The fixed input, as NDJSON ingest bodies, ending with one far-future
/// person per partition so every window closes.
fn input() -> Vec<Vec<u8>> {
    let cfg = NexmarkConfig {
        num_events: EVENTS,
        ..NexmarkConfig::default()
    };
    let mut generator = NexmarkGenerator::new(cfg, 0).unwrap();
    let mut bodies = Vec::new();
    let mut body = Vec::new();
    let mut n = 0;
    let mut last = 0;
    while generator.next_ndjson(&mut body).unwrap() {
        n += 1;
        if n % 1_000 == 0 {
            bodies.push(std::mem::take(&mut body));
        }
    }
    if !body.is_empty() {
        bodies.push(body);
    }
    for b in &bodies {
        for line in b.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).unwrap();
            last = last.max(v["timestamp"].as_i64().unwrap());
        }
    }
    let mut flush = Vec::new();
    for (i, key) in support::one_key_per_partition(PARTITIONS) {
        let ts = last + 3_600_000;
        let line = json!({"key": key, "timestamp": ts, "value": {"person": {"id": 9_000_000 + i,
            "name": "Flush", "email_address": "f@x", "credit_card": "0", "city": "Bend", "state": "OR",
            "date_time": ts, "extra": ""}}});
        flush.extend_from_slice(line.to_string().as_bytes());
        flush.push(b'\n');
    }
    bodies.push(flush);
    bodies
}

fn setup(d: &Daemon) {
    let topic = json!({"name": "nexmark", "partitions": PARTITIONS, "fsync": "always"});
    let (st, body) = post_json(&d.url("/api/v1/topics"), None, &topic);
    assert_eq!(st, 201, "{body}");
    for job in jobs() {
        let (st, body) = post_json(&d.url("/api/v1/jobs"), None, &job);
        assert_eq!(st, 201, "{body}");
    }
}

/// How far the producer got, and the last refusal or error it met.
#[derive(Default)]
struct Produced {
    acked: AtomicUsize,
    last_failure: std::sync::Mutex<String>,
}

impl Produced {
    fn describe(&self, batches: usize) -> String {
        format!(
            "the producer has {} of {batches} batches acknowledged; its last failure: {}",
            self.acked.load(Ordering::Acquire),
            self.last_failure.lock().unwrap()
        )
    }
}

fn producer_agent() -> ureq::Agent {
    // A producer gives up on an answer after a while and retries.
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// An idempotent producer: batch `i` carries sequence `i`; a batch is resent
/// until acknowledged (the server may be down). With `flaky`, it also
/// "crashes" after some sends, before reading the answer, and resends the
/// batch after its restart, as a real producer must.
fn produce(port: u16, input: &[Vec<u8>], flaky: bool, progress: &Produced) -> u64 {
    let mut agent = producer_agent();
    let mut resent = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for (seq, body) in input.iter().enumerate() {
        let url = format!(
            "http://127.0.0.1:{port}/api/v1/topics/nexmark/records?producer_id=7&sequence={seq}"
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        if flaky && rng.is_multiple_of(4) {
            let _ = agent
                .post(&url)
                .header("Content-Type", "application/x-ndjson")
                .send(&body[..]);
            resent += 1;
        }
        let mut failing_since = None::<Instant>;
        loop {
            let t0 = Instant::now();
            let r = agent
                .post(&url)
                .header("Content-Type", "application/x-ndjson")
                .send(&body[..]);
            if t0.elapsed() > Duration::from_secs(5) {
                let st = r
                    .as_ref()
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string());
                eprintln!("batch {seq}: slow answer after {:?}: {st:?}", t0.elapsed());
            }
            let failure = match r {
                Ok(r) if r.status() == 200 => break,
                Ok(mut r) if r.status() == 429 || r.status() == 503 => format!(
                    "batch {seq}: {} {}",
                    r.status(),
                    r.body_mut().read_to_string().unwrap_or_default()
                ),
                Ok(mut r) => panic!(
                    "batch {seq} refused: {} {}",
                    r.status(),
                    r.body_mut().read_to_string().unwrap_or_default()
                ),
                Err(e) => format!("batch {seq}: {e}"), // the server is down: retry
            };
            *progress.last_failure.lock().unwrap() = failure;
            // Failing for long with the server up: start over with new connections.
            if failing_since.get_or_insert(t0).elapsed() > Duration::from_secs(20) {
                agent = producer_agent();
                failing_since = None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        progress.acked.store(seq + 1, Ordering::Release);
        // Paced, so the server gets killed while batches are still coming.
        std::thread::sleep(Duration::from_millis(if flaky { 30 } else { 0 }));
    }
    resent
}

/// Waits until every job has read everything and its outputs stopped changing.
fn settle(d: &Daemon) {
    let mut last = Value::Null;
    let mut stable = 0;
    let start = Instant::now();
    loop {
        let (_, jobs) = get(&d.url("/api/v1/jobs"), None);
        let list = jobs["jobs"].as_array().cloned().unwrap_or_default();
        let idle = list
            .iter()
            .all(|j| j["lag"] == 0 && j["state"] == "running");
        let now = json!(
            list.iter()
                .map(|j| j["records_out"].clone())
                .collect::<Vec<_>>()
        );
        stable = if idle && now == last { stable + 1 } else { 0 };
        last = now;
        if stable >= 10 {
            return;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let detail: Vec<Value> = list
                .iter()
                .map(|j| {
                    let (_, full) = get(&d.url(&format!("/api/v1/jobs/{}", j["name"].as_str().unwrap())), None);
                    let lags: Vec<Vec<Value>> = full["stages"].as_array().cloned().unwrap_or_default().iter()
                        .map(|st| st.as_array().cloned().unwrap_or_default().iter().map(|t| json!([t["lag"], t["watermark"]])).collect())
                        .collect();
                    json!({"name": j["name"], "state": j["state"], "lag": j["lag"], "stage_lag_wm": lags,
                           "out": j["records_out"], "errors": full["recent_errors"], "reason": j["reason"]})
                })
                .collect();
            panic!(
                "jobs did not settle in 120 s: {}",
                serde_json::to_string(&detail).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything the jobs produced: output topic bytes per partition, and views;
/// and how many exchanged records were removed once consumed.
fn results(d: Daemon, dir: &Path) -> (BTreeMap<(String, u32), Vec<u8>>, Value, u64) {
    let (_, view) = get(&d.url("/api/v1/views/highest?limit=10000"), None);
    d.stop();
    let log = sluice::log::Log::open(dir, sluice::log::LogOptions::default()).unwrap();
    let mut out = BTreeMap::new();
    for topic in ["out-hot", "out-sessions", "out-newusers"] {
        let t = log.topic(topic).unwrap();
        for p in t.partitions() {
            let mut b = Vec::new();
            p.reader()
                .read(0, usize::MAX, usize::MAX, |rv| {
                    b.extend_from_slice(&rv.offset.to_le_bytes());
                    b.extend_from_slice(&rv.timestamp.to_le_bytes());
                    b.extend_from_slice(rv.key);
                    b.extend_from_slice(rv.value);
                })
                .unwrap();
            out.insert((topic.to_owned(), p.id()), b);
        }
    }
    let removed = log
        .topics()
        .iter()
        .filter(|t| t.name().starts_with("_x."))
        .flat_map(|t| t.partitions().iter().map(|p| p.start_offset()))
        .sum();
    (out, view["rows"].clone(), removed)
}

#[test]
fn outputs_are_byte_identical_after_dozens_of_kill_9s_and_producer_retries() {
    let input = input();

    // The uninterrupted run.
    let clean_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = Daemon::start(clean_dir.path(), port);
    setup(&d);
    produce(port, &input, false, &Produced::default());
    settle(&d);
    let (clean, clean_view, _) = results(d, clean_dir.path());
    assert!(
        clean.values().filter(|b| !b.is_empty()).count() >= 6,
        "the jobs produced output"
    );
    assert!(
        clean_view.as_array().is_some_and(|v| !v.is_empty()),
        "the view has rows"
    );

    // The same, while the server is killed with SIGKILL at random moments
    // and restarted, and the producer crashes and resends now and then.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut d = Daemon::start(dir.path(), port);
    setup(&d);
    let progress = Arc::new(Produced::default());
    let producer = {
        let input = input.clone();
        let progress = progress.clone();
        std::thread::spawn(move || produce(port, &input, true, &progress))
    };
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let started = Instant::now();
    let (mut kills, mut mid_flight) = (0, 0);
    // At least 30 kills, and more while the producer is still sending, up
    // to 60: on a slow machine the producer then finishes with the server
    // up instead of every restart replaying more than the last one.
    while kills < 30 || (!producer.is_finished() && kills < 60) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(20 + rng % 300));
        let (_, jobs) = get(&d.url("/api/v1/jobs"), None);
        let lag: u64 = jobs["jobs"].as_array().map_or(0, |js| {
            js.iter().map(|j| j["lag"].as_u64().unwrap_or(0)).sum()
        });
        if lag > 0 || !producer.is_finished() {
            mid_flight += 1;
        }
        d.kill();
        kills += 1;
        d = Daemon::start(dir.path(), port);
        assert!(
            started.elapsed() < KILL_PHASE_LIMIT,
            "after {kills} kills in {:?} {}; the log ends:\n{}",
            started.elapsed(),
            progress.describe(input.len()),
            log_tail(&d.log)
        );
    }
    while !producer.is_finished() {
        assert!(
            started.elapsed() < KILL_PHASE_LIMIT,
            "after {:?} {}; the server says {}; the log ends:\n{}",
            started.elapsed(),
            progress.describe(input.len()),
            get(&d.url("/api/v1/status"), None).1,
            log_tail(&d.log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let resent = producer.join().unwrap();
    assert!(
        mid_flight >= 10,
        "only {mid_flight} of {kills} kills hit the jobs or the producer while working"
    );
    assert!(resent > 0, "the producer never resent a batch");
    let (_, topic) = get(&d.url("/api/v1/topics/nexmark"), None);
    let expected: u64 = input
        .iter()
        .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count() as u64)
        .sum();
    assert_eq!(
        topic["records"], expected,
        "input records: nothing lost, nothing doubled"
    );
    settle(&d);
    let (crashed, crashed_view, removed) = results(d, dir.path());
    eprintln!(
        "{kills} kills ({mid_flight} mid-flight), {resent} resent batches, {removed} consumed \
         exchange records removed, in {:?}",
        started.elapsed()
    );
    assert!(removed > 0, "consumed exchange segments were removed");
    assert_eq!(
        clean.keys().collect::<Vec<_>>(),
        crashed.keys().collect::<Vec<_>>()
    );
    for (k, v) in &clean {
        assert!(
            crashed[k] == *v,
            "output {k:?} differs after crashes ({} vs {} bytes)",
            v.len(),
            crashed[k].len()
        );
    }
    assert_eq!(clean_view, crashed_view, "view differs after crashes");
    for d in [clean_dir.path(), dir.path()] {
        let _ = std::fs::remove_file(d.with_extension("log"));
    }
}
