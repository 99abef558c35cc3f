//! `sluice serve` under a fake systemd: the real binary as a child, its
//! `NOTIFY_SOCKET` a datagram socket bound here, `WATCHDOG_USEC` set where
//! the watchdog matters. READY=1 only after recovery, WATCHDOG=1 withheld
//! while a shard hangs, STOPPING=1 and a clean exit with final checkpoints
//! on SIGTERM, RELOADING=1/READY=1 on SIGHUP with a bad file refused.

mod support;
mod systemd_support;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_gen::nexmark::{NexmarkConfig, NexmarkGenerator};
use support::{get, post_json, send};
use systemd_support::{Daemon, Note, write_config};

const ADMIN: &str = "admin-token-0123456789";
const OTHER_ADMIN: &str = "second-admin-token-9876543210";

/// NDJSON bodies of `n` Nexmark events starting at event `skip`, in chunks.
fn nexmark_ndjson(skip: u64, n: u64, chunk: usize) -> Vec<Vec<u8>> {
    let cfg = NexmarkConfig {
        num_events: skip + n,
        ..NexmarkConfig::default()
    };
    let events = NexmarkGenerator::new(cfg, 0)
        .expect("generator")
        .skip(skip as usize);
    let mut bodies = vec![Vec::new()];
    let (mut scratch, mut in_body) = (Vec::new(), 0);
    for e in events {
        if in_body == chunk {
            bodies.push(Vec::new());
            in_body = 0;
        }
        sluice_gen::encode::write_ndjson(&e, &mut scratch, bodies.last_mut().unwrap())
            .expect("encode");
        in_body += 1;
    }
    bodies
}

fn post(url: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> support::Reply {
    send("POST", url, token, content_type, body)
}

fn ingest(d: &Daemon, topic: &str, skip: u64, n: u64) {
    for body in nexmark_ndjson(skip, n, 25_000) {
        let (st, reply) = post(
            &d.url(&format!("/api/v1/topics/{topic}/records")),
            Some(ADMIN),
            "application/x-ndjson",
            &body,
        );
        assert_eq!(st, 200, "ingest: {reply}");
    }
}

fn create_topic(d: &Daemon, name: &str) {
    let (st, body) = post_json(
        &d.url("/api/v1/topics"),
        Some(ADMIN),
        &json!({"name": name, "partitions": 4, "fsync": "never"}),
    );
    assert_eq!(st, 201, "{body}");
}

/// A q0 job that checkpoints only when told to (or when stopping).
fn create_q0_job(d: &Daemon) {
    let (st, body) = post_json(
        &d.url("/api/v1/jobs"),
        Some(ADMIN),
        &json!({"name": "q0", "sources": [{"topic": "bids"}],
                "checkpoint_interval_ms": 3_600_000,
                "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": "q0"}}],
                "sinks": {"main": {"topic": {"topic": "q0-out"}}}}),
    );
    assert_eq!(st, 201, "{body}");
}

fn job(d: &Daemon) -> Value {
    let (st, body) = get(&d.url("/api/v1/jobs/q0"), Some(ADMIN));
    assert_eq!(st, 200, "{body}");
    body
}

/// Waits until job q0 has read `n` records since it was (re)started and
/// has nothing left to read.
fn wait_caught_up(d: &mut Daemon, n: u64) {
    d.wait_for(&format!("job q0 to read {n} records"), |d| {
        let j = job(d);
        (j["records_in"].as_u64()? >= n && j["lag"].as_u64()? == 0).then_some(())
    });
}

fn has_ready(notes: &[Note]) -> bool {
    notes.iter().any(|n| n.has("READY=1"))
}

#[test]
fn ready_is_sent_only_after_recovery_has_replayed_the_log() {
    const BEFORE_CHECKPOINT: u64 = 150_000;
    const AFTER_CHECKPOINT: u64 = 150_000;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!("shards = 2\n[auth]\nadmin_token = \"{ADMIN}\""),
    );
    let mut first = Daemon::start(dir.path(), None);
    first.wait_note("READY=1 on an empty data dir", 0, |n| n.has("READY=1"));
    create_topic(&first, "bids");
    ingest(&first, "bids", 0, BEFORE_CHECKPOINT);
    create_q0_job(&first);
    wait_caught_up(&mut first, BEFORE_CHECKPOINT);
    let (st, body) = post(
        &first.url("/api/v1/jobs/q0/checkpoint"),
        Some(ADMIN),
        "application/json",
        b"",
    );
    assert!(st == 200 || st == 204, "checkpoint: {st} {body}");
    ingest(&first, "bids", BEFORE_CHECKPOINT, AFTER_CHECKPOINT);
    wait_caught_up(&mut first, BEFORE_CHECKPOINT + AFTER_CHECKPOINT);
    // A crash: everything after the checkpoint must be replayed.
    first.kill9();
    drop(first);

    let mut second = Daemon::start(dir.path(), None);
    let mut saw_not_ready = false;
    let ready_at = second.wait_for("READY=1 after recovery", |d| {
        // Datagrams first, then /readyz: a READY seen before the request
        // was sent must find the server ready.
        let ready_sent = has_ready(&d.notes());
        let (st, body) = get(&d.url("/readyz"), None);
        if ready_sent {
            assert_eq!(st, 200, "READY=1 was sent but /readyz says {body}");
            return Some(body);
        }
        if st == 503 {
            saw_not_ready = true;
            assert_eq!(body["ready"], false);
        }
        None
    });
    // When systemd hears READY, the replay is over and clients can connect.
    let recovery = &ready_at["recovery"];
    assert_eq!(recovery["done"], true, "{ready_at}");
    assert_eq!(recovery["jobs"], json!(["q0"]), "{ready_at}");
    assert_eq!(
        recovery["replay_records"], AFTER_CHECKPOINT,
        "replay starts at the checkpoint: {ready_at}"
    );
    let j = job(&second);
    assert!(
        j["records_in"].as_u64().unwrap() >= AFTER_CHECKPOINT && j["lag"] == 0,
        "READY=1 came before the job had replayed the log: {j}"
    );
    std::net::TcpStream::connect(second.addr).expect("the listener accepts once READY=1 is sent");
    // systemd sees recovery progress in STATUS, and READY only once.
    let notes = second.notes();
    let readies: Vec<&Note> = notes.iter().filter(|n| n.has("READY=1")).collect();
    assert_eq!(readies.len(), 1, "{notes:?}");
    let status = readies[0].status().unwrap_or_default();
    assert!(
        status.contains(&format!("replayed {AFTER_CHECKPOINT} records")),
        "{status}"
    );
    for n in notes.iter().take_while(|n| !n.has("READY=1")) {
        let s = n.status().unwrap_or_default();
        assert!(s.starts_with("recovering 1 jobs"), "before READY: {s}");
    }
    eprintln!("(/readyz answered 503 during recovery: {saw_not_ready})");
}

#[test]
fn watchdog_pings_stop_while_a_shard_hangs_and_resume_after() {
    const WATCHDOG: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "shards = 2\n[auth]\nadmin_token = \"{ADMIN}\"\n[testing]\nfault_injection = true"
        ),
    );
    let mut d = Daemon::start(dir.path(), Some(WATCHDOG));
    let ready = d.wait_note("READY=1", 0, |n| n.has("READY=1"));
    let mut seen = ready;
    for _ in 0..3 {
        seen = d.wait_note("steady watchdog pings", seen + 1, |n| n.has("WATCHDOG=1"));
    }
    let (st, body) = post(
        &d.url("/api/v1/debug/hang?shard=1&ms=6000"),
        None,
        "application/json",
        b"",
    );
    assert_eq!(
        st, 401,
        "fault injection still needs the admin token: {body}"
    );
    let before_hang = d.notes().len();
    let (st, body) = post(
        &d.url("/api/v1/debug/hang?shard=1&ms=6000"),
        Some(ADMIN),
        "application/json",
        b"",
    );
    assert_eq!(st, 202, "{body}");
    let stuck = d.wait_note("STATUS naming the stuck shard", before_hang, |n| {
        n.status().is_some_and(|s| s.contains("shard 1 stuck"))
    });
    let notes = d.notes();
    assert!(
        !notes[stuck].has("WATCHDOG=1"),
        "a ping went out with the stuck status: {:?}",
        notes[stuck]
    );
    let resumed = d.wait_note("watchdog pings to resume after the hang", stuck, |n| {
        n.has("WATCHDOG=1")
    });
    let notes = d.notes();
    // The pings bracketing the hang are further apart than WatchdogSec:
    // systemd would have killed and restarted the service.
    let last_before = notes[..stuck]
        .iter()
        .rev()
        .find(|n| n.has("WATCHDOG=1"))
        .expect("pings before the hang");
    let gap = notes[resumed].at - last_before.at;
    assert!(
        gap > WATCHDOG,
        "pings only {gap:?} apart across a 6 s hang; systemd would not have noticed"
    );
    // No ping went out while STATUS said a shard was stuck.
    for n in &notes[stuck..resumed] {
        assert!(!n.has("WATCHDOG=1"), "ping while stuck: {n:?}");
    }
    let log = d.log();
    assert!(
        log.contains("withholding the systemd watchdog ping"),
        "{log}"
    );
    d.wait_for("the log to say pings resume", |d| {
        d.log().contains("watchdog pings resume").then_some(())
    });
}

#[test]
fn sigterm_sends_stopping_and_exits_cleanly_after_final_checkpoints() {
    const RECORDS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!("shards = 2\n[auth]\nadmin_token = \"{ADMIN}\""),
    );
    let mut d = Daemon::start(dir.path(), Some(Duration::from_secs(10)));
    d.wait_note("READY=1", 0, |n| n.has("READY=1"));
    create_topic(&d, "bids");
    ingest(&d, "bids", 0, RECORDS);
    create_q0_job(&d);
    wait_caught_up(&mut d, RECORDS);
    // An open dashboard stream must not hold the stop up.
    let events = agent_stream(&d.url("/api/v1/events"));
    let before = d.notes().len();
    d.signal(libc::SIGTERM);
    let stopping = d.wait_note("STOPPING=1", before, |n| n.has("STOPPING=1"));
    let status = d.exit_status();
    assert!(status.success(), "exit {status}; log:\n{}", d.log());
    let notes = d.notes();
    for n in &notes[stopping..] {
        assert!(
            !n.has("WATCHDOG=1") && !n.has("READY=1"),
            "sent after STOPPING=1: {n:?}"
        );
    }
    let log = d.log();
    assert!(
        log.contains("final checkpoints") && log.contains("stopped cleanly"),
        "{log}"
    );
    // The job's newest checkpoint covers every record: the only other one
    // was taken at offset 0 when the job started.
    let loaded = sluice::state::checkpoint::load(&d.data_dir, "q0");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let read: u64 = loaded
        .tasks()
        .iter()
        .filter(|t| t.stage == 0)
        .flat_map(|t| t.inputs.iter().map(|i| i.offset))
        .sum();
    assert_eq!(read, RECORDS, "the final checkpoint is missing or stale");
    drop(events);
}

/// Opens a server-sent event stream and keeps reading it on a thread.
fn agent_stream(url: &str) -> std::thread::JoinHandle<()> {
    let mut resp = support::agent()
        .get(url)
        .call()
        .expect("event stream opens");
    assert_eq!(resp.status().as_u16(), 200);
    std::thread::spawn(move || {
        let mut r = resp.body_mut().as_reader();
        let mut buf = [0u8; 4096];
        while matches!(std::io::Read::read(&mut r, &mut buf), Ok(n) if n > 0) {}
    })
}

#[test]
fn sighup_with_a_bad_config_keeps_the_running_one_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let good = format!("shards = 1\n[auth]\nadmin_token = \"{ADMIN}\"");
    let config = write_config(dir.path(), &good);
    // data_dir and listen: kept by every rewrite below.
    let base = std::fs::read_to_string(&config)
        .unwrap()
        .split("shards = 1")
        .next()
        .unwrap()
        .to_owned();
    let mut d = Daemon::start(dir.path(), None);
    d.wait_note("READY=1", 0, |n| n.has("READY=1"));

    for (bad, why) in [
        (
            "log_level = \"[[[not-a-filter\"\nshards = 1".to_owned(),
            "log_level",
        ),
        (
            "shards = 1\n[auth]\nadmin_token = \"short\"".to_owned(),
            "16",
        ),
        ("shards = 1\nno_such_key = 3".to_owned(), "no_such_key"),
    ] {
        std::fs::write(&config, format!("{base}{bad}\n")).unwrap();
        let before = d.notes().len();
        d.signal(libc::SIGHUP);
        let reloading = d.wait_note("RELOADING=1", before, |n| n.has("RELOADING=1"));
        assert!(
            d.notes()[reloading]
                .lines
                .iter()
                .any(|l| l.starts_with("MONOTONIC_USEC=")),
            "RELOADING=1 needs MONOTONIC_USEC beside it"
        );
        let ready = d.wait_note("READY=1 after the reload", reloading + 1, |n| {
            n.has("READY=1")
        });
        let status = d.notes()[ready].status().unwrap_or_default().to_owned();
        assert!(
            status.contains("reload refused") && status.contains(why),
            "{status}"
        );
        d.wait_for("the refusal in the log", |d| {
            d.log()
                .lines()
                .any(|l| l.contains("refused") && l.contains(why))
                .then_some(())
        });
        assert!(d.child.try_wait().unwrap().is_none(), "sluice exited");
        // Still serving, with the old token.
        let (st, _) = get(&d.url("/healthz"), None);
        assert_eq!(st, 200);
        let (st, body) = post_json(
            &d.url("/api/v1/topics"),
            Some(ADMIN),
            &json!({"name": format!("t-{}", before), "partitions": 1}),
        );
        assert_eq!(st, 201, "the running token stopped working: {body}");
    }
    // The refusal stays visible in `systemctl status` until a reload works.
    let n = d.notes().len();
    let later = d.wait_note("a periodic STATUS", n, |n| n.status().is_some());
    assert!(
        d.notes()[later]
            .status()
            .unwrap()
            .contains("reload refused"),
        "{:?}",
        d.notes()[later]
    );

    // A good file: the new token works, the old one no longer does, and
    // keys that need a restart are named.
    std::fs::write(
        &config,
        format!("{base}shards = 3\n[auth]\nadmin_token = \"{OTHER_ADMIN}\"\n"),
    )
    .unwrap();
    let before = d.notes().len();
    d.signal(libc::SIGHUP);
    let reloading = d.wait_note("RELOADING=1", before, |n| n.has("RELOADING=1"));
    let ready = d.wait_note("READY=1", reloading + 1, |n| n.has("READY=1"));
    assert_eq!(
        d.notes()[ready].status(),
        Some("configuration reloaded"),
        "{:?}",
        d.notes()[ready]
    );
    let (st, body) = post_json(
        &d.url("/api/v1/topics"),
        Some(OTHER_ADMIN),
        &json!({"name": "after-reload", "partitions": 1}),
    );
    assert_eq!(st, 201, "{body}");
    let (st, _) = post_json(
        &d.url("/api/v1/topics"),
        Some(ADMIN),
        &json!({"name": "old-token", "partitions": 1}),
    );
    assert_eq!(st, 403);
    d.wait_for("the restart-only keys in the log", |d| {
        d.log()
            .contains("changes to shards apply only after a restart")
            .then_some(())
    });
}
