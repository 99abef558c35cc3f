//! Log benchmark: append throughput per fsync policy and batch size, against raw `write`
//! of the same bytes, and sequential read throughput from the maps.
//!
//! Run: `cargo bench -p sluice-bench --bench log` (set `SLUICE_BENCH_DIR` to put the data
//! on another disk; default: the system temp dir; `SLUICE_BENCH_ONLY=never/10000` or `=read`
//! to run one row). Prints medians of `RUNS` runs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice::log::{FsyncPolicy, Log, LogOptions, Record, TopicConfig};

/// Runs per measurement; the median is reported.
const RUNS: usize = 5;
/// Key and value sizes of a Nexmark-bid-sized record (frame = 40 + 8 + 100 = 148 bytes).
const KEY_BYTES: usize = 8;
const VALUE_BYTES: usize = 100;
/// A run stops after this many records or this much time, whichever comes first.
const MAX_RECORDS: usize = 1_000_000;
const MAX_RUN_TIME: Duration = Duration::from_millis(1500);
/// Records written once and read back for the read benchmark.
const READ_RECORDS: usize = 4_000_000;

struct Data {
    keys: Vec<[u8; KEY_BYTES]>,
    values: Vec<[u8; VALUE_BYTES]>,
}

fn data(n: usize) -> Data {
    let mut x = 0x243F_6A88_85A3_08D3u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    Data {
        keys: (0..n)
            .map(|i| {
                let mut k = [b'0'; KEY_BYTES];
                let s = format!("{:08}", i % 100_000_000);
                k.copy_from_slice(s.as_bytes());
                k
            })
            .collect(),
        values: (0..n)
            .map(|_| {
                let mut v = [0u8; VALUE_BYTES];
                for c in v.chunks_mut(8) {
                    let r = next().to_le_bytes();
                    c.copy_from_slice(&r[..c.len()]);
                }
                v
            })
            .collect(),
    }
}

/// All records of the data set, built once; batches are slices of it (the data set's size
/// is a multiple of every batch size), so the benchmark allocates nothing per batch.
fn all_records(d: &Data) -> Vec<Record<'_>> {
    (0..d.keys.len())
        .map(|i| Record {
            timestamp: 1_700_000_000_000 + i as i64,
            key: &d.keys[i],
            value: &d.values[i],
            headers: &[],
        })
        .collect()
}

fn batch<'a>(all: &'a [Record<'a>], from: usize, n: usize) -> &'a [Record<'a>] {
    let at = from % all.len();
    &all[at..at + n]
}

struct Run {
    records: usize,
    bytes: u64,
    secs: f64,
}

impl Run {
    fn rps(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fresh_dir(root: &Path, tag: &str) -> PathBuf {
    let d = root.join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create bench dir");
    d
}

/// Appends batches of `batch_size` with `append_durable` (one writer) until the limits.
fn log_append(
    root: &Path,
    d: &[Record<'_>],
    policy: FsyncPolicy,
    batch_size: usize,
    writers: u32,
) -> Run {
    let dir = fresh_dir(root, "log");
    let log = Log::open(&dir, LogOptions::default()).expect("open log");
    let t = log
        .create_topic(TopicConfig {
            fsync: policy,
            segment_bytes: std::env::var("SLUICE_BENCH_SEGMENT_BYTES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(sluice::log::limits::DEFAULT_SEGMENT_BYTES),
            ..TopicConfig::new("bench", writers)
        })
        .expect("create topic");
    let start = Instant::now();
    let per_writer: Vec<(usize, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = t
            .partitions()
            .iter()
            .map(|p| {
                let p = p.clone();
                s.spawn(move || {
                    let mut w = p.writer().expect("writer");
                    let mut n = 0;
                    while n < MAX_RECORDS / writers as usize && start.elapsed() < MAX_RUN_TIME {
                        w.append_durable(batch(d, n, batch_size), None)
                            .expect("append");
                        n += batch_size;
                    }
                    (n, p.size_bytes())
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    drop(t);
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        records: per_writer.iter().map(|x| x.0).sum(),
        bytes: per_writer.iter().map(|x| x.1).sum(),
        secs,
    }
}

/// Writes `total` bytes with `write` calls of `chunk` bytes into a fresh file, optionally
/// fdatasyncing after each call.
fn raw_write(root: &Path, total: u64, chunk: usize, sync_each: bool) -> f64 {
    let dir = fresh_dir(root, "raw");
    let path = dir.join("raw.bin");
    let mut f: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .expect("open raw file");
    let buf = vec![0x5Au8; chunk];
    let start = Instant::now();
    let mut done = 0u64;
    while done < total {
        let n = chunk.min((total - done) as usize);
        f.write_all(&buf[..n]).expect("write");
        if sync_each {
            f.sync_data().expect("fdatasync");
        }
        done += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
    total as f64 / secs / 1e6
}

fn read_bench(root: &Path, d: &[Record<'_>]) -> (f64, f64) {
    let dir = fresh_dir(root, "read");
    let log = Log::open(&dir, LogOptions::default()).expect("open log");
    let t = log
        .create_topic(TopicConfig {
            fsync: FsyncPolicy::Never,
            ..TopicConfig::new("read", 1)
        })
        .expect("create topic");
    let p = t.partition(0).clone();
    let mut w = p.writer().expect("writer");
    let mut n = 0;
    while n < READ_RECORDS {
        w.append(batch(d, n, 10_000), None).expect("append");
        n += 10_000;
    }
    let bytes = p.size_bytes();
    let mut rps = Vec::new();
    let mut mbps = Vec::new();
    for _ in 0..RUNS {
        let mut r = p.reader();
        let mut sum = 0u64;
        let start = Instant::now();
        let mut at = 0;
        while at < p.end_offset() {
            let o = r
                .read(at, 10_000, usize::MAX, |v| {
                    sum += v.value.len() as u64 + v.key[0] as u64
                })
                .expect("read");
            at = o.next_offset;
        }
        let secs = start.elapsed().as_secs_f64();
        assert!(sum > 0);
        rps.push(n as f64 / secs);
        mbps.push(bytes as f64 / secs / 1e6);
    }
    drop(w);
    drop(p);
    drop(t);
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
    (median(rps), median(mbps))
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let root = std::env::var_os("SLUICE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("sluice-log-bench-{}", std::process::id()));
    let data = data(100_000);
    let d = all_records(&data);
    let frame = 40 + KEY_BYTES + VALUE_BYTES;
    println!(
        "log benchmark: records of {frame} bytes framed (key {KEY_BYTES}, value {VALUE_BYTES}); data in {}",
        root.display()
    );
    println!("median of {RUNS} runs; each run <= {MAX_RECORDS} records or ~{MAX_RUN_TIME:?}");
    println!();
    println!("| fsync | writers | batch | log records/s | log MB/s | raw write MB/s | log/raw |");
    println!("|---|---|---|---|---|---|---|");
    let policies = [
        FsyncPolicy::Never,
        FsyncPolicy::Interval { ms: 5 },
        FsyncPolicy::Always,
    ];
    let mut cases: Vec<(FsyncPolicy, usize, u32)> = Vec::new();
    for p in policies {
        for b in [1, 100, 10_000] {
            cases.push((p, b, 1));
        }
    }
    cases.push((FsyncPolicy::Always, 100, 4));
    // `SLUICE_BENCH_ONLY=never/10000` (policy/batch) runs just the matching rows, for profiling.
    let only = std::env::var("SLUICE_BENCH_ONLY").ok();
    cases.retain(|(p, b, _)| only.as_ref().is_none_or(|o| *o == format!("{p}/{b}")));
    for (policy, b, writers) in cases {
        let mut rps = Vec::new();
        let mut mbps = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..RUNS {
            let r = log_append(&root, &d, policy, b, writers);
            // Raw comparison: the same bytes in `write` calls of one batch each, with an
            // fdatasync per call when the log's policy waits for one per batch.
            let raw_total = r.bytes.max(1);
            let chunk = (b * frame).max(1);
            let sync_each = policy == FsyncPolicy::Always;
            raw.push(raw_write(&root, raw_total, chunk, sync_each));
            rps.push(r.rps());
            mbps.push(r.mbps());
        }
        let (rps, mbps, raw) = (median(rps), median(mbps), median(raw));
        println!(
            "| {policy} | {writers} | {b} | {rps:.0} | {mbps:.1} | {raw:.1}{} | {:.2} |",
            if policy == FsyncPolicy::Always {
                " (+fdatasync each)"
            } else {
                ""
            },
            mbps / raw
        );
    }
    if only.as_ref().is_some_and(|o| o != "read") {
        let _ = std::fs::remove_dir_all(&root);
        return;
    }
    let (rps, mbps) = read_bench(&root, &d);
    println!();
    println!("| sequential read from maps | records/s | MB/s |");
    println!("|---|---|---|");
    println!("| {READ_RECORDS} records, 1 reader, batches of 10000 | {rps:.0} | {mbps:.0} |");
    let _ = std::fs::remove_dir_all(&root);
}
