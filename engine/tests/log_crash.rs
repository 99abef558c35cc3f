//! Crash test: a child process (this test binary, re-executed) appends with
//! `fsync = always` and prints every acknowledged offset range; the parent SIGKILLs it at
//! random moments, reopens the log, and checks that every acknowledged record is present
//! and intact and that every record below the recovered end is whole (nothing torn is
//! served). Rolls happen constantly (smallest segments), so kills land inside them too.

mod log_common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log_common::*;
use sluice::log::{FsyncPolicy, limits};

const CHILD_ENV: &str = "SLUICE_LOG_CRASH_CHILD_DIR";
const ROUNDS: u64 = 40;
const PARTITIONS: u32 = 2;

/// Tiny deterministic PRNG (xorshift64*), so a failing round can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
#[ignore = "helper: run by acknowledged_records_survive_sigkill in a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        panic!("crash_child runs only as the child of acknowledged_records_survive_sigkill");
    };
    let log = open(std::path::Path::new(&dir));
    let t = log.topic("crash").expect("parent created the topic");
    let out = Arc::new(Mutex::new(std::io::stdout()));
    std::thread::scope(|s| {
        for p in t.partitions() {
            let out = out.clone();
            s.spawn(move || {
                let mut w = p.writer().unwrap();
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ ((p.id() as u64 + 1) * std::process::id() as u64));
                loop {
                    let base = p.end_offset();
                    let big = rng.below(4) == 0;
                    let n = 1 + rng.below(if big { 400 } else { 20 });
                    let o = owned(base, n, |i| i as i64);
                    let ack = w.append_durable(&records(&o), None).unwrap();
                    assert_eq!(ack.base_offset, base);
                    let mut g = out.lock().unwrap();
                    writeln!(g, "ack {} {} {}", p.id(), ack.base_offset, ack.count).unwrap();
                    g.flush().unwrap();
                }
            });
        }
    });
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(cfg(
            "crash",
            PARTITIONS,
            limits::MIN_SEGMENT_BYTES,
            FsyncPolicy::Always,
        ))
        .unwrap();
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let mut acked_end: HashMap<u32, u64> = HashMap::new();
    let mut total_acks = 0u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 4 && f[0] == "ack" {
                    let n = |i: usize| f[i].parse::<u64>().unwrap();
                    acks.push((n(1) as u32, n(2), n(3)));
                }
            }
            acks
        });
        // Let it start and run a random while (it opens the log and recovers first).
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(30 + rng.below(250)));
        child.kill().expect("SIGKILL child");
        let status = child.wait().unwrap();
        assert!(!status.success(), "child must have been killed, not exited");
        let acks = reader.join().unwrap();
        total_acks += acks.len() as u64;
        for (p, base, count) in acks {
            let e = acked_end.entry(p).or_default();
            *e = (*e).max(base + count);
        }

        let log = open(dir.path());
        let t = log.topic("crash").unwrap();
        for p in t.partitions() {
            let want = acked_end.get(&p.id()).copied().unwrap_or(0);
            let end = p.end_offset();
            assert!(
                end >= want,
                "round {round} (seed {seed}, ran {:?}): partition {} recovered to {end} but {want} were acknowledged",
                started.elapsed(),
                p.id()
            );
            assert!(
                p.damage().is_empty(),
                "round {round}: damage {:?}",
                p.damage()
            );
            // Every record below the recovered end is whole and has the content written
            // for its offset (whichever round wrote it).
            assert_records(&read_from(p, 0), 0, end);
        }
    }
    assert!(
        total_acks > ROUNDS,
        "the child acknowledged too little to test anything: {total_acks}"
    );
    eprintln!("crash test: {ROUNDS} rounds, {total_acks} acknowledged batches, ends {acked_end:?}");
}
