//! Wasm host micro-benchmark (issue 3): records per CPU-second through `sluice::wasm`
//! (`WasmHost` + the bundled `nexmark` module) for q0, q2 and q7 (single phase) on Nexmark
//! bids, at batch sizes 1 to 10,000, beside the same plugin crate compiled natively and
//! driven through `sluice_sdk::testing::Harness` in the same run.
//!
//! Both sides do the same work per batch: build an ABI v1 batch from pre-encoded records
//! (each tagged with the watermark before it: largest event time so far − 4 s), one
//! `process` call, an `on_watermark` call when a timer the guest asked for is due, and take
//! the outputs. Figures are per CPU-second of the measuring thread (the machine is shared),
//! the median of `SLUICE_BENCH_RUNS` runs (default 5) of `SLUICE_BENCH_RECORDS` bids
//! (default 500,000; batch size 1 uses a fifth of that).
//!
//! The epoch deadline: epoch interruption is always compiled into the host's code, and the
//! host has no switch to turn it off, so the table compares the default host (1 s deadline,
//! 10 ms epoch tick) with one at the longest deadline (1 h) and a 1 s tick — the difference
//! is the ticker's cost, not the compiled-in checks. The per-call overhead shows in the
//! batch-size-1 rows.
//!
//! `cargo bench -p sluice-bench --bench wasm` (a plain program; prints Markdown tables).
//! `SLUICE_BENCH_QUERIES=q0` and `SLUICE_BENCH_BATCHES=1000` narrow it (comma-separated
//! lists), e.g. to profile one case under `perf` with `SLUICE_PERF_MAP=1`.

use std::time::Duration;

use serde_json::json;
use sluice::wasm::{
    Batch, Emitted, HostConfig, InstanceLabel, MAX_CALL_DEADLINE, PluginId, WasmHost,
};
use sluice_gen::RecordBuf;
use sluice_gen::nexmark::{Event, NexmarkConfig, NexmarkGenerator};
use sluice_sdk::testing::{Harness, Input};

/// Watermark delay of the records, as in the Nexmark jobs.
const OUT_OF_ORDERNESS_MS: i64 = 4_000;
const BATCH_SIZES: [usize; 5] = [1, 10, 100, 1_000, 10_000];
const QUERIES: [&str; 3] = ["q0", "q2", "q7"];

/// One pre-encoded bid.
struct Rec {
    key: Vec<u8>,
    timestamp: i64,
    value: Vec<u8>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("{name}={v} is not a whole number; using {default}");
            default
        }),
        Err(_) => default,
    }
}

/// A comma-separated list from the environment (to profile one query or batch size), else `all`.
fn env_list(name: &str, all: &[String]) -> Vec<String> {
    match std::env::var(name) {
        Ok(v) => v.split(',').map(|s| s.trim().to_owned()).collect(),
        Err(_) => all.to_vec(),
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn bids(n: usize) -> Vec<Rec> {
    let config = NexmarkConfig {
        num_events: (n as u64) * 50 / 46 + 1_000,
        ..NexmarkConfig::default()
    };
    let mut rec = RecordBuf::default();
    let mut out = Vec::with_capacity(n);
    let generator = NexmarkGenerator::new(config, 0).expect("default Nexmark config is valid");
    for e in generator
        .filter(|e| matches!(e.event, Event::Bid(_)))
        .take(n)
    {
        rec.fill(&e).expect("generated events encode");
        out.push(Rec {
            key: rec.key.clone(),
            timestamp: rec.timestamp,
            value: rec.value.clone(),
        });
    }
    out
}

/// Tags: the watermark before each record.
fn tags(records: &[Rec]) -> Vec<i64> {
    let mut max = i64::MIN;
    records
        .iter()
        .map(|r| {
            let tag = max.saturating_sub(OUT_OF_ORDERNESS_MS);
            max = max.max(r.timestamp);
            tag
        })
        .collect()
}

/// Records per CPU-second through the Wasm host; also the outputs seen (to compare sides).
fn wasm_run(host: &WasmHost, query: &str, records: &[Rec], batch_size: usize) -> (f64, u64) {
    let bundled = sluice::bundled::bundled_plugin("nexmark").expect("nexmark is bundled");
    let plugin = host
        .load(PluginId::new(bundled.name, bundled.version), bundled.wasm)
        .expect("the bundled module loads");
    let config = rmp_serde::to_vec_named(&json!({"query": query})).expect("config encodes");
    let mut inst = plugin
        .instantiate(InstanceLabel::new("bench", 0, 0), &config)
        .expect("instantiates");
    let tags = tags(records);
    let mut batch = Batch::new(64 << 20);
    let mut out = Emitted::new();
    let mut outputs = 0u64;
    let started = thread_cpu();
    let mut wm = i64::MIN;
    for (i, part) in records.chunks(batch_size).enumerate() {
        batch.clear();
        batch.set_watermark(wm);
        for (j, r) in part.iter().enumerate() {
            let k = i * batch_size + j;
            batch
                .push(k as u64, r.timestamp, tags[k], 0, 0, &r.key, &r.value)
                .expect("the batch has room");
        }
        out.clear();
        inst.process(&batch, &mut out).expect("process succeeds");
        outputs += out.len() as u64;
        let last = i * batch_size + part.len() - 1;
        wm = wm
            .max(tags[last])
            .max(records[last].timestamp - OUT_OF_ORDERNESS_MS);
        if inst.next_timer().is_some_and(|t| t <= wm) {
            out.clear();
            inst.on_watermark(wm, &mut out)
                .expect("on_watermark succeeds");
            outputs += out.len() as u64;
        }
    }
    let cpu = (thread_cpu() - started).as_secs_f64();
    (records.len() as f64 / cpu, outputs)
}

/// The same through the natively compiled plugin.
fn native_run(query: &str, records: &[Rec], batch_size: usize) -> (f64, u64) {
    let inputs: Vec<Vec<Input>> = records
        .chunks(batch_size)
        .map(|part| {
            part.iter()
                .map(|r| Input::raw(r.timestamp, &r.key, r.value.clone()))
                .collect()
        })
        .collect();
    let mut h = Harness::<nexmark::Nexmark>::new(json!({"query": query}))
        .expect("native init")
        .with_out_of_orderness(OUT_OF_ORDERNESS_MS);
    let mut outputs = 0u64;
    let started = thread_cpu();
    for batch in inputs {
        h.send_batch(batch).expect("native process");
        outputs += h.take("main").len() as u64;
    }
    let cpu = (thread_cpu() - started).as_secs_f64();
    (records.len() as f64 / cpu, outputs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn m(rate: f64) -> String {
    format!("{:.2} M", rate / 1e6)
}

fn main() {
    let runs = env_u64("SLUICE_BENCH_RUNS", 5).max(1) as usize;
    let n = env_u64("SLUICE_BENCH_RECORDS", 500_000) as usize;
    let records = bids(n);
    let default_host = WasmHost::new(HostConfig::default()).expect("host starts");
    let long_host = WasmHost::new(HostConfig {
        call_deadline: MAX_CALL_DEADLINE,
        epoch_tick: Duration::from_secs(1),
        ..HostConfig::default()
    })
    .expect("host starts");
    println!(
        "{} bids per run ({} at batch size 1), median of {runs} runs, records per CPU-second of \
         the measuring thread\n",
        records.len(),
        records.len() / 5
    );
    println!(
        "| query | batch | wasm (1 s deadline) | wasm (1 h deadline, 1 s tick) | native | wasm/native | wasm ns/record | native ns/record |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let queries = env_list("SLUICE_BENCH_QUERIES", &QUERIES.map(String::from));
    let batches = env_list("SLUICE_BENCH_BATCHES", &BATCH_SIZES.map(|b| b.to_string()));
    for query in queries.iter().map(String::as_str) {
        for batch in batches.iter().filter_map(|b| match b.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                eprintln!("SLUICE_BENCH_BATCHES: `{b}` is not a batch size (a whole number above 0); skipping it");
                None
            }
        }) {
            let recs = if batch == 1 {
                &records[..records.len() / 5]
            } else {
                &records[..]
            };
            let (mut w, mut l, mut nat) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (a, out_w) = wasm_run(&default_host, query, recs, batch);
                let (b, _) = wasm_run(&long_host, query, recs, batch);
                let (c, out_n) = native_run(query, recs, batch);
                assert_eq!(
                    out_w, out_n,
                    "{query}/{batch}: wasm and native outputs differ"
                );
                w.push(a);
                l.push(b);
                nat.push(c);
            }
            let (w, l, nat) = (median(w), median(l), median(nat));
            println!(
                "| {query} | {batch} | {} | {} | {} | {:.2} | {:.0} | {:.0} |",
                m(w),
                m(l),
                m(nat),
                w / nat,
                1e9 / w,
                1e9 / nat
            );
        }
    }
}
