//! Measurements of the host's per-call overhead and instantiate time.
//! Ignored by default; they print numbers and assert nothing about time:
//! `cargo test -p sluice --release --test wasm_measure -- --ignored --nocapture`.

mod wasm_support;

use std::time::Duration;

use sluice::wasm::{Batch, Emitted};
use wasm_support::*;

/// CPU time of this thread: the machine may be shared, so wall time would
/// count other processes' work.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn per_call(label: &str, calls: u32, mut f: impl FnMut()) {
    for _ in 0..calls / 10 {
        f();
    }
    let start = thread_cpu_time();
    for _ in 0..calls {
        f();
    }
    let each = (thread_cpu_time() - start) / calls;
    println!("{label}: {each:?} CPU per call");
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn measure_call_overhead_and_instantiate_time() {
    let host = test_host();
    let noop = host.load(id("noop"), &Guest::default().wasm()).unwrap();
    let good = host.load(id("passthrough"), &good_guest()).unwrap();

    let mut inst = noop.instantiate(label("m"), &[]).unwrap();
    let empty = Batch::default();
    let mut out = Emitted::new();
    per_call("process(empty batch), no-op guest", 200_000, || {
        inst.process(&empty, &mut out).unwrap()
    });
    per_call("on_watermark, no-op guest", 200_000, || {
        inst.on_watermark(1, &mut out).unwrap()
    });

    let mut inst = good.instantiate(label("m"), &[]).unwrap();
    let mut b = Batch::default();
    let value = [0xa5u8; 100];
    for i in 0..1000 {
        b.push(i, i as i64, i as i64 - 1, 0, 0, b"key-0001", &value)
            .unwrap();
    }
    per_call(
        "process(1000 x 100-byte records), pass-through guest emitting 2000",
        2_000,
        || {
            out.clear();
            inst.process(&b, &mut out).unwrap();
        },
    );

    per_call("instantiate no-op guest (2 pages)", 2_000, || {
        drop(noop.instantiate(label("m"), &[]).unwrap())
    });
    per_call(
        "instantiate pass-through guest (32 pages, data)",
        2_000,
        || drop(good.instantiate(label("m"), &[]).unwrap()),
    );
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn measure_raw_wasmtime_typed_call() {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let module = wasmtime::Module::new(&engine, Guest::default().wasm()).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance
        .get_typed_func::<i64, i32>(&mut store, "sluice_on_watermark")
        .unwrap();
    per_call(
        "raw typed call, epoch deadline set per call",
        200_000,
        || {
            store.set_epoch_deadline(100);
            f.call(&mut store, 1).unwrap();
        },
    );
    per_call("raw typed call", 200_000, || {
        f.call(&mut store, 1).unwrap();
    });
}
