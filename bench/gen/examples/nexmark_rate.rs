//! Measures Nexmark generation speed on one core: events into a reused MessagePack
//! [`RecordBuf`], and into reused NDJSON lines.
//!
//! `cargo run --release -p sluice-gen --example nexmark_rate [events]`

use std::time::Instant;

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
    let start = Instant::now();
    while generator.next_record(&mut rec)? {
        bytes += rec.value.len() as u64;
        checksum =
            checksum.wrapping_add(rec.timestamp as u64 ^ rec.value[rec.value.len() / 2] as u64);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "msgpack: {events} events in {secs:.3} s = {:.2} M events/s, {:.1} MB/s, avg value {:.1} B (checksum {checksum:x})",
        events as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        bytes as f64 / events as f64
    );

    let mut generator = NexmarkGenerator::new(config, 0)?;
    let mut out = Vec::with_capacity(1 << 20);
    let mut bytes = 0u64;
    let start = Instant::now();
    while generator.next_ndjson(&mut out)? {
        if out.len() > 1 << 19 {
            bytes += out.len() as u64;
            out.clear();
        }
    }
    bytes += out.len() as u64;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ndjson:  {events} events in {secs:.3} s = {:.2} M events/s, {:.1} MB/s",
        events as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
