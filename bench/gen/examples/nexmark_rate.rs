//! Measures Nexmark generation speed on one core: events into a reused MessagePack
//! [`RecordBuf`], and into reused NDJSON lines.
//!
//! `cargo run --release -p sluice-gen --example nexmark_rate [events]`
//!
//! Besides wall-clock time it reports the thread's on-CPU time (Linux
//! `/proc/thread-self/schedstat`), so the per-core rate stays meaningful on a busy machine.

use std::time::Instant;

/// Nanoseconds this thread has spent on a CPU, if the kernel says.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Prints one measurement: wall rate and on-CPU rate.
fn report(what: &str, events: u64, bytes: u64, start: Instant, cpu_start: Option<u64>) {
    let wall = start.elapsed().as_secs_f64();
    let cpu = match (cpu_start, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => wall,
    };
    println!(
        "{what}: {events} events, {:.1} B/event; wall {wall:.3} s = {:.2} M events/s; on-CPU {cpu:.3} s = {:.2} M events/s per core",
        bytes as f64 / events as f64,
        events as f64 / wall / 1e6,
        events as f64 / cpu / 1e6,
    );
}

use sluice_gen::RecordBuf;
use sluice_gen::nexmark::{NexmarkConfig, NexmarkGenerator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| format!("events count `{arg}`: {e}"))?,
        None => 10_000_000,
    };
    let config = NexmarkConfig {
        num_events: events,
        ..NexmarkConfig::default()
    };

    let mut generator = NexmarkGenerator::new(config.clone(), 0)?;
    let mut rec = RecordBuf::default();
    let (mut bytes, mut checksum) = (0u64, 0u64);
    let (start, cpu_start) = (Instant::now(), cpu_ns());
    while generator.next_record(&mut rec)? {
        bytes += rec.value.len() as u64;
        checksum =
            checksum.wrapping_add(rec.timestamp as u64 ^ rec.value[rec.value.len() / 2] as u64);
    }
    report("msgpack", events, bytes, start, cpu_start);
    println!("(checksum {checksum:x})");

    let mut generator = NexmarkGenerator::new(config, 0)?;
    let mut out = Vec::with_capacity(1 << 20);
    let mut bytes = 0u64;
    let (start, cpu_start) = (Instant::now(), cpu_ns());
    while generator.next_ndjson(&mut out)? {
        if out.len() > 1 << 19 {
            bytes += out.len() as u64;
            out.clear();
        }
    }
    bytes += out.len() as u64;
    report("ndjson", events, bytes, start, cpu_start);
    Ok(())
}
