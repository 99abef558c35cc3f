//! Machine benchmark: how much this machine gives a second thread, for the kinds of work
//! the engine does. Each kind runs on one thread, then on two at once (each thread doing
//! the same work as the single one), and the scaling is `2 × wall(1) / wall(2)`: 2.0 means
//! the second core adds a whole core; 1.0 means it adds nothing.
//!
//! - `alu`: integer arithmetic in registers (no memory traffic).
//! - `copy 256 KiB`: copies between two buffers that stay in a core's L2 cache.
//! - `copy 8 MiB`: copies between buffers that live in the shared L3 cache.
//! - `copy 256 MiB`: copies through main memory (the log map → batch → guest path).
//! - `read 256 MiB`: sums a buffer in main memory (reading a segment map).
//!
//! It bounds what the engine's own scaling from one shard to two can be on the same
//! machine. Run: `cargo bench -p sluice-bench --bench machine`. Prints medians of `RUNS`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

/// Runs per measurement; the median is reported.
const RUNS: usize = 5;

/// One kind of work: its name, the bytes of each of its two buffers, and its loop.
struct Kind {
    name: &'static str,
    bytes: usize,
    work: fn(&[u8], &mut [u8]),
}

fn alu(_: &[u8], _: &mut [u8]) {
    let (mut x, mut y) = (1u64, 3u64);
    for _ in 0..400_000_000u64 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(y);
        y ^= x >> 17;
    }
    black_box((x, y));
}

/// Copies `src` into `dst` `passes` times.
fn copy(src: &[u8], dst: &mut [u8], passes: usize) {
    for i in 0..passes {
        dst.copy_from_slice(black_box(src));
        black_box(&mut *dst)[i % src.len()] ^= 1;
    }
}

/// Sums `src` as words `passes` times.
fn read(src: &[u8], passes: usize) {
    let mut sum = 0u64;
    for _ in 0..passes {
        sum = black_box(src).chunks_exact(8).fold(sum, |s, w| {
            s.wrapping_add(u64::from_le_bytes(w.try_into().unwrap()))
        });
    }
    black_box(sum);
}

/// Wall seconds of `threads` threads each running `kind` once on buffers of its own
/// (allocated and touched before the clock starts), median of `RUNS`.
fn wall(threads: usize, kind: &Kind) -> f64 {
    let mut walls: Vec<f64> = (0..RUNS)
        .map(|_| {
            let ready = Barrier::new(threads);
            std::thread::scope(|s| {
                let running: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            let src = vec![1u8; kind.bytes];
                            let mut dst = vec![2u8; kind.bytes];
                            ready.wait();
                            let started = Instant::now();
                            (kind.work)(&src, &mut dst);
                            started.elapsed().as_secs_f64()
                        })
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|t| t.join().expect("worker"))
                    .fold(0.0, f64::max)
            })
        })
        .collect();
    walls.sort_by(f64::total_cmp);
    walls[RUNS / 2]
}

fn main() {
    let kinds = [
        Kind {
            name: "alu",
            bytes: 0,
            work: alu,
        },
        Kind {
            name: "copy 256 KiB",
            bytes: 256 << 10,
            work: |s, d| copy(s, d, 20_000),
        },
        Kind {
            name: "copy 8 MiB",
            bytes: 8 << 20,
            work: |s, d| copy(s, d, 400),
        },
        Kind {
            name: "copy 256 MiB",
            bytes: 256 << 20,
            work: |s, d| copy(s, d, 8),
        },
        Kind {
            name: "read 256 MiB",
            bytes: 256 << 20,
            work: |s, _| read(s, 8),
        },
    ];
    println!("| work | 1 thread, s | 2 threads, s | scaling |");
    println!("|---|---|---|---|");
    for kind in &kinds {
        let one = wall(1, kind);
        let two = wall(2, kind);
        println!(
            "| {} | {one:.3} | {two:.3} | {:.2} |",
            kind.name,
            2.0 * one / two
        );
    }
}
