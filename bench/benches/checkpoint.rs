//! Checkpoint and recovery micro-benchmark (issue 5), against the real `sluice` binary.
//!
//! 1. `sluice serve --shards 2` on a fresh data dir; a topic `keyed` (4 partitions,
//!    fsync interval(5ms)) and a `window-totals` job over it (one-hour windows, so every
//!    key stays in state until the end) with a 1 s checkpoint interval.
//! 2. `SLUICE_BENCH_LOG_MB` (default 1024) MiB of log written over HTTP as MessagePack
//!    batches of 10,000 records over `SLUICE_BENCH_KEYS` (default 1,000,000) distinct keys,
//!    each value `{"amount": n, "pad": "…"}` so that a record takes ~150 bytes in the log.
//! 3. Once the job has caught up: the last checkpoint's duration and size (job status).
//! 4. SIGKILL, restart on the same dir, and time until `/readyz` answers 200 (the engine's
//!    `is_ready`: the log reopened, every job restored and its replay caught up); the
//!    recovery report's replay figures are printed too. Repeated `SLUICE_BENCH_KILLS`
//!    times (default 3), each time after more records and a fresh catch-up.
//!
//! Throughput with checkpoints every 1 s vs. rarely is measured by `sluice-bench run
//! --checkpoint-interval-ms` (see RESULTS.md). Nothing here asserts a time.
//!
//! Needs the release binary: `cargo build --release -p sluice --bin sluice`, then
//! `cargo bench -p sluice-bench --bench checkpoint` (`SLUICE_BIN` overrides the path).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Records per ingest request.
const PER_REQUEST: usize = 10_000;
/// Padding that brings a record to ~150 bytes in the log.
const PAD: &str = "0123456789012345678901234567890123456789012345678901234567890123456";
/// How long to wait for the job to catch up or the daemon to answer.
const PATIENCE: Duration = Duration::from_secs(600);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(p);
    }
    // target/release/deps/checkpoint-… → target/release/sluice
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the bench runs from target/<profile>/deps");
    dir.join("sluice")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
}

struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    /// Spawns the daemon; returns it and the time until `/readyz` said 200.
    fn start(bin: &Path, dir: &Path) -> (Daemon, Duration) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let started = Instant::now();
        let child = Command::new(bin)
            .args([
                "serve",
                "--shards",
                "2",
                "--log-level",
                "warn",
                "--data-dir",
            ])
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; build it first", bin.display()));
        let d = Daemon { child, port };
        let a = agent();
        loop {
            if let Ok(r) = a.get(&d.url("/readyz")).call()
                && r.status() == 200
            {
                break;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the daemon never became ready"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        (d, started.elapsed())
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> Value {
        let mut r = agent()
            .get(&self.url(path))
            .call()
            .expect("GET reaches the daemon");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default())
            .unwrap_or(Value::Null)
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let mut r = agent()
            .post(&self.url(path))
            .header("Content-Type", content_type)
            .send(body)
            .expect("POST reaches the daemon");
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    fn kill(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request body: `n` records from record number `from`, keys `k{i % keys}`.
fn body(from: u64, n: usize, keys: u64, base_ms: i64, span_ms: i64, total: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(n * 140);
    rmp::encode::write_array_len(&mut b, n as u32).expect("vec write");
    for i in from..from + n as u64 {
        let ts = base_ms + (i as i128 * span_ms as i128 / total.max(1) as i128) as i64;
        rmp::encode::write_map_len(&mut b, 3).expect("vec write");
        rmp::encode::write_str(&mut b, "key").expect("vec write");
        rmp::encode::write_str(&mut b, &format!("k{}", i % keys)).expect("vec write");
        rmp::encode::write_str(&mut b, "timestamp").expect("vec write");
        rmp::encode::write_sint(&mut b, ts).expect("vec write");
        rmp::encode::write_str(&mut b, "value").expect("vec write");
        rmp::encode::write_map_len(&mut b, 2).expect("vec write");
        rmp::encode::write_str(&mut b, "amount").expect("vec write");
        rmp::encode::write_uint(&mut b, i % 1000).expect("vec write");
        rmp::encode::write_str(&mut b, "pad").expect("vec write");
        rmp::encode::write_str(&mut b, PAD).expect("vec write");
    }
    b
}

fn ingest(d: &Daemon, from: u64, to: u64, keys: u64, total: u64) {
    let base = 1_700_000_000_000i64;
    let mut i = from;
    while i < to {
        let n = PER_REQUEST.min((to - i) as usize);
        let b = body(i, n, keys, base, 3_000_000, total);
        loop {
            let (status, text) = d.post("/api/v1/topics/keyed/records", "application/msgpack", &b);
            match status {
                200..=299 => break,
                429 | 503 => std::thread::sleep(Duration::from_millis(5)),
                _ => panic!("ingest answered {status}: {text}"),
            }
        }
        i += n as u64;
    }
}

/// Waits until the job has no lag and has checkpointed after that; returns its status.
fn caught_up(d: &Daemon) -> Value {
    let started = Instant::now();
    let mut seen_zero: Option<u64> = None;
    loop {
        let s = d.get("/api/v1/jobs/totals");
        let lag = s["lag"].as_u64().unwrap_or(u64::MAX);
        let checkpoints = s["checkpoints"].as_u64().unwrap_or(0);
        match seen_zero {
            None if lag == 0 => seen_zero = Some(checkpoints),
            Some(c) if checkpoints > c + 1 => return s,
            _ => {}
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the job did not catch up: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    let log_mb = env_u64("SLUICE_BENCH_LOG_MB", 1024);
    let keys = env_u64("SLUICE_BENCH_KEYS", 1_000_000);
    let kills = env_u64("SLUICE_BENCH_KILLS", 3).max(1);
    let bin = binary();
    let dir = tempfile::Builder::new()
        .prefix("sluice-ckpt-")
        .tempdir()
        .expect("temp dir");
    let (d, first_ready) = Daemon::start(&bin, dir.path());
    println!(
        "fresh start: ready after {:.3} s",
        first_ready.as_secs_f64()
    );
    let (st, text) = d.post(
        "/api/v1/topics",
        "application/json",
        json!({"name": "keyed", "partitions": 4, "fsync": "interval(5ms)"})
            .to_string()
            .as_bytes(),
    );
    assert!(st < 300, "create topic: {st} {text}");
    let job = json!({"name": "totals", "sources": [{"topic": "keyed"}],
        "max_out_of_orderness_ms": 2000, "checkpoint_interval_ms": 1000,
        "operators": [{"plugin": "window-totals@0.1.0", "config": {"window_ms": 3_600_000}}],
        "sinks": {"main": {"topic": {"topic": "totals-out"}}}});
    let (st, text) = d.post(
        "/api/v1/jobs",
        "application/json",
        job.to_string().as_bytes(),
    );
    assert!(st < 300, "create job: {st} {text}");

    // Probe the log bytes per record with a first slice, then fill to the target size.
    let probe = 100_000u64;
    let t = Instant::now();
    ingest(&d, 0, probe, keys, probe * 100);
    let per_record = d.get("/api/v1/topics/keyed")["size_bytes"]
        .as_u64()
        .unwrap_or(150) as f64
        / probe as f64;
    let total = ((log_mb << 20) as f64 / per_record) as u64;
    println!(
        "{per_record:.0} log bytes per record; writing {total} records ({log_mb} MiB) over {keys} keys"
    );
    ingest(&d, probe, total, keys, total);
    let took = t.elapsed().as_secs_f64();
    println!(
        "ingested {total} records over HTTP in {took:.1} s ({:.0} records/s, job running)",
        total as f64 / took
    );
    let mut d = d;
    let mut ready = Vec::new();
    let mut written = total;
    for k in 0..kills {
        let s = caught_up(&d);
        let size = d.get("/api/v1/topics/keyed")["size_bytes"]
            .as_u64()
            .unwrap_or(0);
        println!(
            "kill {}: log {:.0} MiB; last checkpoint took {:.1} ms and wrote {:.1} MiB ({} checkpoints so far)",
            k + 1,
            size as f64 / (1 << 20) as f64,
            s["last_checkpoint_us"].as_f64().unwrap_or(0.0) / 1000.0,
            s["last_checkpoint_bytes"].as_f64().unwrap_or(0.0) / (1 << 20) as f64,
            s["checkpoints"]
        );
        // Half a checkpoint interval of fresh records that the restart must replay.
        ingest(&d, written, written + 200_000, keys, total);
        written += 200_000;
        std::thread::sleep(Duration::from_millis(500));
        d.kill();
        let (again, took) = Daemon::start(&bin, dir.path());
        let r = again.get("/readyz");
        println!(
            "  restart after SIGKILL: ready in {:.3} s (recovery report: replayed {} records in {} ms)",
            took.as_secs_f64(),
            r["recovery"]["replay_records"],
            r["recovery"]["took_ms"]
        );
        ready.push(took.as_secs_f64());
        d = again;
    }
    ready.sort_by(f64::total_cmp);
    println!(
        "median ready time after SIGKILL: {:.3} s over {} kills",
        ready[ready.len() / 2],
        ready.len()
    );
}
